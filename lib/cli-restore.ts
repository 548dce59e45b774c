/**
 * `difface restore`: aligned faces (--aligned) or whole photos from files and folders,
 * restored into an output folder.
 * Every good input is restored and written even when others fail; each failure is one line
 * naming the input. Exit code 0 when all were restored, 1 when some failed, 2 for usage.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import { DifFace, RestoredFace, RestoredImage, encodeRestored, randomSeed } from './engine';
import { DifFaceError } from './errors';
import { DEFAULT_MAX_PIXELS, DecodedImage, OutputFormat, decodeImage, defaultOutputFormat, extensionOf } from './image';
import { DEMO_NOTICE, resolveModels } from './models';
import { faceFindingAvailable } from './faces';

export class UsageError extends Error {}

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp', '.tif', '.tiff', '.avif']);

interface RestoreArgs {
  inputs: string[];
  aligned: boolean;
  upscale: number;
  onlyCenterFace: boolean;
  minFace: number;
  drawBox: boolean;
  output: string;
  models?: string;
  eta?: number;
  startStep?: number;
  seed?: number;
  device: string;
  dtype: 'float32' | 'float16' | 'bfloat16';
  batch?: number;
  format?: OutputFormat;
  quality: number;
  maxPixels: number;
  compare: boolean;
  json: boolean;
}

interface Outcome {
  input: string;
  output?: string;
  compare?: string;
  seconds?: number;
  /** Whole photos: the faces found, with their boxes in input pixels and where each restored face went. */
  faces?: { box: [number, number, number, number]; output: string }[];
  error?: { code: string; message: string };
}

function numberOption(value: string | undefined, name: string, check: (n: number) => boolean, rule: string): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isFinite(parsed) || !check(parsed)) {
    throw new UsageError(`--${name} must be ${rule}, got '${value}'`);
  }
  return parsed;
}

export function parseRestoreArgs(argv: string[]): RestoreArgs {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      output: { type: 'string', short: 'o' },
      aligned: { type: 'boolean', default: false },
      models: { type: 'string' },
      eta: { type: 'string' },
      'start-step': { type: 'string' },
      seed: { type: 'string' },
      device: { type: 'string', default: 'cpu' },
      dtype: { type: 'string', default: 'float32' },
      batch: { type: 'string' },
      format: { type: 'string' },
      quality: { type: 'string' },
      'max-pixels': { type: 'string' },
      compare: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      upscale: { type: 'string' },
      'only-center-face': { type: 'boolean', default: false },
      'min-face': { type: 'string' },
      'draw-box': { type: 'boolean', default: false },
    },
  });
  if (values.aligned) {
    for (const flag of ['upscale', 'only-center-face', 'min-face', 'draw-box'] as const) {
      if (values[flag] !== undefined && values[flag] !== false) throw new UsageError(`--${flag} is for whole photos; leave out --aligned`);
    }
  } else if (values.compare) {
    throw new UsageError('--compare is for aligned faces (--aligned); whole photos write each restored face to OUT/faces/');
  }
  if (positionals.length === 0) throw new UsageError('restore needs at least one input file or folder');
  if (values.output === undefined || values.output === '') throw new UsageError('restore needs an output folder: -o OUT');
  const isInteger = (n: number) => Number.isInteger(n);
  let format: OutputFormat | undefined;
  if (values.format !== undefined) {
    const named = values.format.toLowerCase();
    if (!['png', 'jpg', 'jpeg', 'webp'].includes(named)) throw new UsageError(`--format must be png, jpg or webp, got '${values.format}'`);
    format = named === 'jpg' ? 'jpeg' : (named as OutputFormat);
  }
  if (!/^(cpu|cuda|cuda:\d+)$/.test(values.device)) throw new UsageError(`--device must be cpu, cuda or cuda:N, got '${values.device}'`);
  if (!['float32', 'float16', 'bfloat16'].includes(values.dtype)) {
    throw new UsageError(`--dtype must be float32, float16 or bfloat16, got '${values.dtype}'`);
  }
  const args: RestoreArgs = {
    inputs: positionals,
    aligned: values.aligned,
    upscale: numberOption(values.upscale, 'upscale', (n) => isInteger(n) && n >= 1 && n <= 8, 'an integer from 1 to 8') ?? 2,
    onlyCenterFace: values['only-center-face'],
    minFace: numberOption(values['min-face'], 'min-face', (n) => n >= 0, 'a non-negative number of pixels') ?? 0,
    drawBox: values['draw-box'],
    output: values.output,
    device: values.device,
    dtype: values.dtype as RestoreArgs['dtype'],
    quality: numberOption(values.quality, 'quality', (n) => isInteger(n) && n >= 1 && n <= 100, 'an integer from 1 to 100') ?? 95,
    maxPixels: numberOption(values['max-pixels'], 'max-pixels', (n) => isInteger(n) && n >= 1, 'a positive integer') ?? DEFAULT_MAX_PIXELS,
    compare: values.compare,
    json: values.json,
  };
  const optional = {
    eta: numberOption(values.eta, 'eta', (n) => n >= 0 && n <= 1, 'a number from 0 to 1'),
    startStep: numberOption(values['start-step'], 'start-step', (n) => isInteger(n) && n >= 1, 'a positive integer'),
    seed: numberOption(values.seed, 'seed', (n) => Number.isSafeInteger(n) && n >= 0, 'a non-negative integer'),
    batch: numberOption(values.batch, 'batch', (n) => isInteger(n) && n >= 1, 'an integer of at least 1'),
  };
  for (const [key, value] of Object.entries(optional)) {
    if (value !== undefined) (args as unknown as Record<string, unknown>)[key] = value;
  }
  if (values.models !== undefined) args.models = values.models;
  if (format !== undefined) args.format = format;
  return args;
}

/** Files and the images inside folders, in order; what cannot be used is a failed outcome. */
function expandInputs(inputs: string[], failures: Outcome[]): string[] {
  const files: string[] = [];
  for (const input of inputs) {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(input);
    } catch {
      failures.push({ input, error: { code: 'EIMAGE', message: `${input}: cannot be read (no such file or folder)` } });
      continue;
    }
    if (!stat.isDirectory()) {
      files.push(input);
      continue;
    }
    const images = fs.readdirSync(input).filter((name) => IMAGE_EXTENSIONS.has(path.extname(name).toLowerCase()))
      .sort().map((name) => path.join(input, name));
    if (images.length === 0) {
      failures.push({ input, error: { code: 'EIMAGE', message: `${input}: the folder holds no images (png, jpg, webp, tif, avif)` } });
    }
    files.push(...images);
  }
  return files;
}

function prepareOutputFolder(folder: string): void {
  try {
    fs.mkdirSync(folder, { recursive: true });
    const probe = path.join(folder, `.difface-write-test-${process.pid}`);
    fs.writeFileSync(probe, '');
    fs.rmSync(probe);
  } catch (error) {
    throw new DifFaceError('EOUTPUT', `${folder}: the output folder cannot be written (${(error as Error).message})`, { cause: error });
  }
}

/** Writes through a temporary name and a rename, so an interrupted run leaves no half-written image. */
function writeAtomically(file: string, bytes: Buffer): void {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    fs.writeFileSync(temporary, bytes);
    fs.renameSync(temporary, file);
  } catch (error) {
    fs.rmSync(temporary, { force: true });
    throw new DifFaceError('EOUTPUT', `${file}: cannot be written (${(error as Error).message})`, { cause: error });
  }
}

/** Refuses an output path that is the input itself: inputs are never overwritten. */
function checkNotInput(output: string, input: string): void {
  if (path.resolve(output) === path.resolve(input)) {
    throw new DifFaceError('EOUTPUT', `${input}: the output would overwrite the input; choose another output folder`);
  }
}

/** One output name per input: OUT/X.<ext>, with -2, -3... when two inputs share a name. */
function outputNames(files: string[], folder: string, format: (file: string) => OutputFormat): Map<string, string> {
  const taken = new Set<string>();
  const names = new Map<string, string>();
  for (const file of files) {
    const stem = path.basename(file, path.extname(file));
    const extension = extensionOf(format(file));
    let candidate = path.join(folder, `${stem}.${extension}`);
    for (let n = 2; taken.has(candidate); n++) candidate = path.join(folder, `${stem}-${n}.${extension}`);
    taken.add(candidate);
    names.set(file, candidate);
  }
  return names;
}

class Progress {
  private readonly started = Date.now();
  private lastDone = Date.now();
  private facesDone = 0;
  private step = 0;
  private steps = 0;
  private readonly live: boolean;

  constructor(private readonly total: number, private readonly noun = 'faces') {
    this.live = process.stderr.isTTY === true;
  }

  onStep(step: number, steps: number): void {
    this.step = step;
    this.steps = steps;
    if (this.live) this.draw();
  }

  faceDone(outcome: Outcome): void {
    this.facesDone++;
    this.lastDone = Date.now();
    if (this.live) {
      this.draw();
    } else if (outcome.output !== undefined) {
      const faces = outcome.faces === undefined ? '' : `, ${outcome.faces.length} face${outcome.faces.length === 1 ? '' : 's'}`;
      process.stderr.write(`restored ${outcome.input} -> ${outcome.output} (${outcome.seconds?.toFixed(1)} s${faces})\n`);
    }
  }

  finish(): void {
    if (this.live) process.stderr.write('\n');
  }

  private draw(): void {
    const width = 24;
    const fraction = this.total === 0 ? 1 : this.facesDone / this.total;
    const filled = Math.round(width * fraction);
    // Seconds per face from the faces finished; the ETA counts down within the current one.
    const perFace = this.facesDone > 0 ? (this.lastDone - this.started) / 1000 / this.facesDone : 0;
    const sinceLast = (Date.now() - this.lastDone) / 1000;
    const eta = perFace > 0 ? Math.max(0, Math.round(perFace * (this.total - this.facesDone) - sinceLast)) : 0;
    const clock = `${Math.floor(eta / 60)}:${String(eta % 60).padStart(2, '0')}`;
    const line = `[${'='.repeat(filled)}${' '.repeat(width - filled)}] ${this.facesDone}/${this.total} ${this.noun}` +
      ` | step ${this.step}/${this.steps}` + (perFace > 0 ? ` | ${perFace.toFixed(1)} s/face | ETA ${clock}` : '');
    process.stderr.write(`\r${line}\x1b[K`);
  }
}

function failure(input: string, error: unknown): Outcome {
  const known = error instanceof DifFaceError;
  const message = known ? error.message : String((error as Error)?.message ?? error);
  return { input, error: { code: known ? error.code : 'ETORCH', message } };
}

function report(outcome: Outcome): void {
  if (outcome.error) process.stderr.write(`difface: ${outcome.error.message} [${outcome.error.code}]\n`);
}

export async function restoreCommand(argv: string[]): Promise<number> {
  const args = parseRestoreArgs(argv);
  const outcomes: Outcome[] = [];
  const files = expandInputs(args.inputs, outcomes);
  outcomes.forEach(report);
  const models = resolveModels(args.models);
  if (models.source === 'demo') process.stderr.write(`difface: ${DEMO_NOTICE}\n`);
  prepareOutputFolder(args.output);

  const engine = await DifFace.load(models.dir, { device: args.device as 'cpu', dtype: args.dtype });
  if (!args.aligned) {
    try {
      return await restorePhotos(engine, files, args, outcomes, models.source === 'demo');
    } finally {
      engine.dispose();
    }
  }
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  process.once('SIGINT', stop);
  try {
    const last = engine.timesteps.length - 1;
    if (args.startStep !== undefined && args.startStep > last) {
      throw new UsageError(`--start-step must be at most ${last} for these models, got ${args.startStep}`);
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
    const formatOf = new Map(decoded.map((d) => [d.name, args.format ?? defaultOutputFormat(d.format)] as const));
    const names = outputNames(decoded.map((d) => d.name), args.output, (file) => formatOf.get(file) as OutputFormat);
    const progress = new Progress(decoded.length);
    const batchSize = args.batch ?? (engine.device === 'cpu' ? 1 : 4);
    const seed = BigInt(args.seed ?? randomSeed());
    for (let start = 0; start < decoded.length && !controller.signal.aborted; start += batchSize) {
      const batch = decoded.slice(start, start + batchSize);
      const began = Date.now();
      let faces: RestoredFace[];
      try {
        faces = await engine.restoreDecoded(batch, {
          seed, estimates: args.compare, signal: controller.signal,
          onStep: (p) => progress.onStep(p.step, p.total),
          ...(args.eta !== undefined ? { eta: args.eta } : {}),
          ...(args.startStep !== undefined ? { startStep: args.startStep } : {}),
        });
      } catch (error) {
        for (const image of batch) {
          const outcome = failure(image.name, error);
          outcomes.push(outcome);
          report(outcome);
          progress.faceDone(outcome);
        }
        continue;
      }
      const seconds = (Date.now() - began) / 1000 / batch.length;
      for (let i = 0; i < batch.length; i++) {
        const image = batch[i] as DecodedImage;
        const output = names.get(image.name) as string;
        const outcome: Outcome = { input: image.name };
        try {
          checkNotInput(output, image.name);
          const restored: RestoredImage = await encodeRestored(image, faces[i] as RestoredFace, {
            format: formatOf.get(image.name) as OutputFormat, quality: args.quality, compare: args.compare,
          }, seed);
          writeAtomically(output, restored.image);
          outcome.output = output;
          if (restored.compare) {
            const compare = path.join(args.output, `${path.basename(output, path.extname(output))}.compare.png`);
            writeAtomically(compare, restored.compare);
            outcome.compare = compare;
          }
          outcome.seconds = seconds;
        } catch (error) {
          Object.assign(outcome, failure(image.name, error));
          report(outcome);
        }
        outcomes.push(outcome);
        progress.faceDone(outcome);
      }
    }
    progress.finish();
    if (controller.signal.aborted) {
      process.stderr.write('difface: interrupted; the faces restored so far were written\n');
    }
    const status = finish(engine, args, outcomes, models.source === 'demo', seed);
    return controller.signal.aborted ? 130 : status;
  } finally {
    process.removeListener('SIGINT', stop);
    engine.dispose();
  }
}

/** Whole photos, one at a time: their faces go through the networks together. */
async function restorePhotos(engine: DifFace, files: string[], args: RestoreArgs, outcomes: Outcome[], demo: boolean): Promise<number> {
  const finding = faceFindingAvailable();
  if (!finding.available) {
    for (const file of files) {
      const outcome = failure(file, new DifFaceError('EDETECT', `${file}: ${finding.reason ?? 'faces cannot be found here'}`));
      outcomes.push(outcome);
      report(outcome);
    }
    return finish(engine, args, outcomes, demo, 0n);
  }
  // A photo's output format is known once it is decoded; the name's extension follows it below.
  const names = outputNames(files, args.output, () => args.format ?? 'png');
  const facesFolder = path.join(args.output, 'faces');
  const progress = new Progress(files.length, 'photos');
  const seed = BigInt(args.seed ?? randomSeed());
  for (const file of files) {
    const began = Date.now();
    const outcome: Outcome = { input: file };
    try {
      const photo = await engine.restorePhoto(file, {
        upscale: args.upscale, onlyCenterFace: args.onlyCenterFace, minFace: args.minFace, drawBox: args.drawBox,
        quality: args.quality, maxPixels: args.maxPixels, seed, onStep: (p) => progress.onStep(p.step, p.total),
        ...(args.format !== undefined ? { format: args.format } : {}),
        ...(args.eta !== undefined ? { eta: args.eta } : {}),
        ...(args.startStep !== undefined ? { startStep: args.startStep } : {}),
      });
      let output = names.get(file) as string;
      output = path.join(path.dirname(output), `${path.basename(output, path.extname(output))}.${extensionOf(photo.info.format)}`);
      checkNotInput(output, file);
      writeAtomically(output, photo.image);
      outcome.output = output;
      outcome.faces = [];
      if (photo.faces.length > 0) fs.mkdirSync(facesFolder, { recursive: true });
      const stem = path.basename(output, path.extname(output));
      photo.faces.forEach((face, i) => {
        const faceFile = path.join(facesFolder, `${stem}_${String(i).padStart(2, '0')}.png`);
        writeAtomically(faceFile, face.restored);
        outcome.faces?.push({ box: face.box.map((v) => Math.round(v * 10) / 10) as [number, number, number, number], output: faceFile });
      });
      outcome.seconds = (Date.now() - began) / 1000;
    } catch (error) {
      Object.assign(outcome, failure(file, error));
      report(outcome);
    }
    outcomes.push(outcome);
    progress.faceDone(outcome);
  }
  progress.finish();
  return finish(engine, args, outcomes, demo, seed);
}

/** Prints the --json summary; the exit status: 1 when any input failed. */
function finish(engine: DifFace, args: RestoreArgs, outcomes: Outcome[], demo: boolean, seed: bigint): number {
  if (args.json) {
    process.stdout.write(JSON.stringify({
      models: engine.modelDir, demo, device: engine.device, dtype: engine.dtype, seed: String(seed), results: outcomes,
    }) + '\n');
  }
  return outcomes.some((o) => o.error) ? 1 : 0;
}
