/**
 * `difface restore`: aligned faces (--aligned) or whole photos from files and folders,
 * restored into an output folder.
 * Every good input is restored and written even when others fail; each failure is one line
 * naming the input. Exit code 0 when all were restored, 1 when some failed, 2 for usage,
 * 130 when interrupted (what was restored by then is written).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import { StepProgress } from './call';
import { IMAGE_COMMAND_OPTIONS, ImageCommandArgs, InputOutcome, expandInputs, failure, imageCommandArgs } from './cli-inputs';
import { UsageError, numericFlag, textFlag, usage } from './cli-options';
import { checkNotInput, outputStems, prepareOutputFolder, writeAtomically, writeResult } from './cli-output';
import { ItemDone, Progress } from './cli-progress';
import { DifFace } from './engine';
import { DifFaceError } from './errors';
import { faceFindingAvailable } from './faces';
import { DecodedImage, decodeImage, defaultOutputFormat, extensionOf } from './image';
import { PHOTO_NETWORKS } from './photo-networks';
import { DEMO_NOTICE, resolveModels } from './models';
import { RestoredFace, randomSeed } from './restore';
import { defaultBatchSize, encodeRestored } from './restore-images';
import * as is from './validate';

interface RestoreArgs extends ImageCommandArgs {
  aligned: boolean;
  upscale: number;
  onlyCenterFace: boolean;
  minFace: number;
  drawBox: boolean;
  background?: is.BackgroundKind;
  detector?: is.DetectorKind;
  paste?: is.PasteKind;
  publishedQuirks: boolean;
  dtype: is.DType;
}

interface Outcome extends InputOutcome {
  /** Whole photos: the faces found, with their boxes in input pixels and where each restored face went. */
  faces?: { box: [number, number, number, number]; output: string }[];
  /** Whole photos: which path ran (face finder, paste mask, background). */
  path?: { detector: string; paste: string; background: string };
}

export function parseRestoreArgs(argv: string[]): RestoreArgs {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      ...IMAGE_COMMAND_OPTIONS,
      aligned: { type: 'boolean', default: false },
      dtype: { type: 'string', default: 'float32' },
      upscale: { type: 'string' },
      'only-center-face': { type: 'boolean', default: false },
      'min-face': { type: 'string' },
      'draw-box': { type: 'boolean', default: false },
      background: { type: 'string' },
      detector: { type: 'string' },
      paste: { type: 'string' },
      'published-quirks': { type: 'boolean', default: false },
    },
  });
  if (values.aligned) {
    for (const flag of ['upscale', 'only-center-face', 'min-face', 'draw-box', 'background', 'detector', 'paste', 'published-quirks'] as const) {
      if (values[flag] !== undefined && values[flag] !== false) throw new UsageError(`--${flag} is for whole photos; leave out --aligned`);
    }
  } else if (values.compare) {
    throw new UsageError('--compare is for aligned faces (--aligned); whole photos write each restored face to OUT/faces/');
  }
  return {
    ...imageCommandArgs('restore', values, positionals),
    aligned: values.aligned,
    upscale: numericFlag(values.upscale, 'upscale', is.upscale) ?? 2,
    onlyCenterFace: values['only-center-face'],
    minFace: numericFlag(values['min-face'], 'min-face', is.minFace) ?? 0,
    drawBox: values['draw-box'],
    ...(values.background !== undefined ? { background: textFlag(values.background, 'background', is.background) } : {}),
    ...(values.detector !== undefined ? { detector: textFlag(values.detector, 'detector', is.detector) } : {}),
    ...(values.paste !== undefined ? { paste: textFlag(values.paste, 'paste', is.paste) } : {}),
    publishedQuirks: values['published-quirks'],
    dtype: textFlag(values.dtype, 'dtype', is.dtype),
  };
}

function report(outcome: Outcome): void {
  if (outcome.error) process.stderr.write(`difface: ${outcome.error.message} [${outcome.error.code}]\n`);
}

function itemOf(outcome: Outcome): ItemDone {
  return {
    input: outcome.input,
    ...(outcome.output !== undefined ? { output: outcome.output } : {}),
    ...(outcome.seconds !== undefined ? { seconds: outcome.seconds } : {}),
    ...(outcome.faces !== undefined ? { faces: outcome.faces.length } : {}),
  };
}

/** What every unit of work is restored with. */
interface RunContext {
  engine: DifFace;
  args: RestoreArgs;
  seed: bigint;
  stems: Map<string, string>;
  signal: AbortSignal;
  onStep: (progress: StepProgress) => void;
}

/** Inputs that go through the networks together, and how their results are written. */
interface Unit {
  inputs: string[];
  run(context: RunContext): Promise<Outcome[]>;
}

function sampling(args: RestoreArgs): { eta?: number; startStep?: number } {
  return { ...(args.eta !== undefined ? { eta: args.eta } : {}), ...(args.startStep !== undefined ? { startStep: args.startStep } : {}) };
}

/** Aligned faces, --batch at a time; each is written at its own size in its own format. */
function alignedUnit(batch: DecodedImage[]): Unit {
  return {
    inputs: batch.map((image) => image.name),
    async run({ engine, args, seed, stems, signal, onStep }) {
      const faces = await engine.restoreDecoded(batch, { seed, estimates: args.compare, signal, onStep, ...sampling(args) });
      return Promise.all(batch.map(async (image, i) => {
        const outcome: Outcome = { input: image.name };
        try {
          const format = args.format ?? defaultOutputFormat(image.format);
          const restored = await encodeRestored(image, faces[i] as RestoredFace, { format, quality: args.quality, compare: args.compare }, seed);
          writeResult(outcome, image.name, stems.get(image.name) as string, extensionOf(format), restored);
          return outcome;
        } catch (error) {
          return failure(image.name, error);
        }
      }));
    },
  };
}

/** One whole photo: its faces go through the networks together; each restored face is written to OUT/faces/. */
function photoUnit(file: string): Unit {
  return {
    inputs: [file],
    async run({ engine, args, seed, stems, signal, onStep }) {
      const photo = await engine.restorePhoto(file, {
        upscale: args.upscale, onlyCenterFace: args.onlyCenterFace, minFace: args.minFace, drawBox: args.drawBox,
        ...(args.background !== undefined ? { background: args.background } : {}),
        ...(args.detector !== undefined ? { detector: args.detector } : {}),
        ...(args.paste !== undefined ? { paste: args.paste } : {}),
        publishedQuirks: args.publishedQuirks,
        quality: args.quality, maxPixels: args.maxPixels, seed, signal, onStep, ...sampling(args),
        ...(args.format !== undefined ? { format: args.format } : {}),
      });
      const stem = stems.get(file) as string;
      const output = `${stem}.${extensionOf(photo.info.format)}`;
      checkNotInput(output, file);
      writeAtomically(output, photo.image);
      const facesFolder = path.join(args.output, 'faces');
      if (photo.faces.length > 0) fs.mkdirSync(facesFolder, { recursive: true });
      const faces = photo.faces.map((face, i) => {
        const faceFile = path.join(facesFolder, `${path.basename(stem)}_${String(i).padStart(2, '0')}.png`);
        writeAtomically(faceFile, face.restored);
        return { box: face.box.map((v) => Math.round(v * 10) / 10) as [number, number, number, number], output: faceFile };
      });
      const { detector, paste, background } = photo.info;
      return [{ input: file, output, faces, path: { detector, paste, background } }];
    },
  };
}

/** The units to run; inputs that cannot be used are failed outcomes instead. */
async function unitsOf(files: string[], args: RestoreArgs, engine: DifFace, outcomes: Outcome[]): Promise<Unit[]> {
  const device = engine.device;
  if (!args.aligned) {
    const finding = faceFindingAvailable();
    // RetinaFace runs in the engine, so it needs no dlib.
    const retinaFace = args.detector !== 'dlib' && engine.detectorAvailable;
    if (finding.available || retinaFace) return files.map(photoUnit);
    for (const file of files) {
      outcomes.push(failure(file, new DifFaceError('EDETECT', `${file}: ${finding.reason ?? 'faces cannot be found here'}`)));
      report(outcomes[outcomes.length - 1] as Outcome);
    }
    return [];
  }
  const decoded: DecodedImage[] = [];
  for (const file of files) {
    try {
      decoded.push(await decodeImage(file, { maxPixels: args.maxPixels }));
    } catch (error) {
      outcomes.push(failure(file, error));
      report(outcomes[outcomes.length - 1] as Outcome);
    }
  }
  const batchSize = args.batch ?? defaultBatchSize(device);
  const units: Unit[] = [];
  for (let start = 0; start < decoded.length; start += batchSize) units.push(alignedUnit(decoded.slice(start, start + batchSize)));
  return units;
}

/** Which whole-photo path runs, and how to get the published one where it falls back. */
function photoPathLine(engine: DifFace, args: RestoreArgs): string {
  const detector = args.detector ?? (engine.detectorAvailable ? 'retinaface' : 'dlib');
  const background = args.background ?? (engine.backgroundAvailable ? 'realesrgan' : 'lanczos');
  const paste = args.paste ?? (engine.parserAvailable ? 'parse' : 'square');
  const line = `whole photos: ${detector === 'retinaface' ? 'RetinaFace' : 'dlib'} faces, ` +
    `${paste === 'parse' ? 'face-parsing' : 'square'} mask, ${background === 'realesrgan' ? 'Real-ESRGAN' : 'Lanczos'} background` +
    (args.publishedQuirks ? ', the published quirks' : '');
  const missing = [
    ...(detector === 'dlib' && !engine.detectorAvailable ? [PHOTO_NETWORKS.detector.checkpoint] : []),
    ...(paste === 'square' && !engine.parserAvailable ? [PHOTO_NETWORKS.parser.checkpoint] : []),
    ...(background === 'lanczos' && !engine.backgroundAvailable ? [PHOTO_NETWORKS.background.checkpoint] : []),
  ];
  if (missing.length === 0) return line;
  const named = missing.length < 3 ? missing.join(' and ') : `${missing.slice(0, -1).join(', ')} and ${missing[missing.length - 1]}`;
  return `${line} (${named} not in ${engine.modelDir}; \`difface models fetch --only photos --dir ${engine.modelDir}\` gets ${missing.length === 1 ? 'it' : 'them'})`;
}

export async function restoreCommand(argv: string[]): Promise<number> {
  const args = parseRestoreArgs(argv);
  const outcomes: Outcome[] = [];
  const files = expandInputs(args.inputs, outcomes);
  outcomes.forEach(report);
  const models = resolveModels(args.models);
  if (models.source === 'demo') process.stderr.write(`difface: ${DEMO_NOTICE}\n`);
  prepareOutputFolder(args.output);

  const engine = await DifFace.load(models.dir, { device: args.device, dtype: args.dtype });
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  process.once('SIGINT', stop);
  try {
    if (args.startStep !== undefined) usage(() => is.startStep(args.startStep, engine.timesteps.length - 1, '--start-step'));
    const seed = BigInt(args.seed ?? randomSeed());
    const units = await unitsOf(files, args, engine, outcomes);
    if (!args.aligned && units.length > 0) process.stderr.write(`difface: ${photoPathLine(engine, args)}\n`);
    const inputs = units.flatMap((unit) => unit.inputs);
    const progress = new Progress(inputs.length, args.aligned ? 'faces' : 'photos');
    const context: RunContext = {
      engine, args, seed, stems: outputStems(inputs, args.output), signal: controller.signal,
      onStep: ({ step, total }) => progress.step(step, total),
    };
    for (const unit of units) {
      if (controller.signal.aborted) break;
      const began = Date.now();
      let results: Outcome[];
      try {
        results = await unit.run(context);
      } catch (error) {
        results = unit.inputs.map((input) => failure(input, error));
      }
      const seconds = (Date.now() - began) / 1000 / unit.inputs.length;
      for (const outcome of results) {
        if (outcome.error) report(outcome);
        else outcome.seconds = seconds;
        outcomes.push(outcome);
        progress.itemDone(itemOf(outcome));
      }
    }
    progress.finish();
    if (controller.signal.aborted) process.stderr.write('difface: interrupted; what was restored so far was written\n');
    if (args.json) {
      process.stdout.write(JSON.stringify({
        models: engine.modelDir, demo: models.source === 'demo', device: engine.device, dtype: engine.dtype, seed: String(seed),
        results: outcomes,
      }) + '\n');
    }
    if (controller.signal.aborted) return 130;
    return outcomes.some((o) => o.error) ? 1 : 0;
  } finally {
    process.removeListener('SIGINT', stop);
    engine.dispose();
  }
}
