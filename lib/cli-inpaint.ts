/**
 * `difface inpaint`: holes in aligned faces filled, from files and folders into an output
 * folder. The holes are a mask image's white pixels (--mask for every input, --masks DIR for
 * one mask per input, found by the input's name) or, without either, each input's exactly
 * black pixels, as the published tool takes them.
 * Every good input is written even when others fail; each failure is one line naming the
 * input. Exit code 0 when all were inpainted, 1 when some failed, 2 for usage, 130 when
 * interrupted.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import { UsageError, numericFlag, textFlag, usage } from './cli-options';
import { checkNotInput, outputStems, prepareOutputFolder, writeAtomically } from './cli-output';
import { Progress } from './cli-progress';
import { DifFace } from './engine';
import { DifFaceError } from './errors';
import { DEFAULT_MAX_PIXELS, extensionOf } from './image';
import { checkInpaintInput } from './inpaint';
import { MODEL_CARD } from './modelcard';
import { userModelsDir } from './models';
import { randomSeed } from './restore';
import { defaultBatchSize } from './restore-images';
import * as is from './validate';

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp', '.tif', '.tiff', '.avif']);

interface InpaintArgs {
  inputs: string[];
  output: string;
  mask?: string;
  masks?: string;
  models?: string;
  eta?: number;
  startStep?: number;
  gamma?: number;
  seed?: number;
  device: is.Device;
  batch?: number;
  format?: is.OutputFormat;
  quality: number;
  maxPixels: number;
  compare: boolean;
  json: boolean;
}

interface Outcome {
  input: string;
  mask?: string;
  output?: string;
  compare?: string;
  seconds?: number;
  holes?: { pixels: number; fraction: number };
  warnings?: string[];
  error?: { code: string; message: string };
}

export function parseInpaintArgs(argv: string[]): InpaintArgs {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      output: { type: 'string', short: 'o' },
      mask: { type: 'string' },
      masks: { type: 'string' },
      models: { type: 'string' },
      eta: { type: 'string' },
      'start-step': { type: 'string' },
      gamma: { type: 'string' },
      seed: { type: 'string' },
      device: { type: 'string', default: 'cpu' },
      batch: { type: 'string' },
      format: { type: 'string' },
      quality: { type: 'string' },
      'max-pixels': { type: 'string' },
      compare: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  if (positionals.length === 0) throw new UsageError('inpaint needs at least one input file or folder');
  if (values.output === undefined || values.output === '') throw new UsageError('inpaint needs an output folder: -o OUT');
  if (values.mask !== undefined && values.masks !== undefined) {
    throw new UsageError('give either --mask (one mask for every input) or --masks (a folder of masks named as the inputs), not both');
  }
  const args: InpaintArgs = {
    inputs: positionals,
    output: values.output,
    device: textFlag(values.device, 'device', is.device),
    quality: numericFlag(values.quality, 'quality', is.quality) ?? 95,
    maxPixels: numericFlag(values['max-pixels'], 'max-pixels', is.maxPixels) ?? DEFAULT_MAX_PIXELS,
    compare: values.compare,
    json: values.json,
  };
  const optional = {
    mask: values.mask,
    masks: values.masks,
    models: values.models,
    eta: numericFlag(values.eta, 'eta', is.eta),
    startStep: numericFlag(values['start-step'], 'start-step', (value, name) => is.integer(value, name, 1)),
    gamma: numericFlag(values.gamma, 'gamma', is.gamma),
    seed: numericFlag(values.seed, 'seed', (value, name) => Number(is.seed(value, name))),
    batch: numericFlag(values.batch, 'batch', is.batchSize),
    format: values.format === undefined ? undefined : textFlag(values.format.toLowerCase(), 'format', is.outputFormat),
  };
  for (const [key, value] of Object.entries(optional)) {
    if (value !== undefined) (args as unknown as Record<string, unknown>)[key] = value;
  }
  return args;
}

/** Where inpainting models are looked for without --models: DIFFACE_INPAINTING_MODELS, then the user cache. */
export function inpaintingModelsDir(given: string | undefined): string {
  const dir = given ?? process.env.DIFFACE_INPAINTING_MODELS ?? path.join(userModelsDir(), 'inpainting');
  if (given === undefined && !fs.existsSync(path.join(dir, MODEL_CARD))) {
    throw new DifFaceError('EMODELDIR', `no inpainting models in '${dir}'; get the published ones with 'difface models fetch ` +
      "--only inpainting', or give --models DIR, a model directory made by 'difface convert --config C' with an inpainting " +
      'configuration (such as the published difface_inpainting_lama256.yaml)');
  }
  return dir;
}

function failure(input: string, error: unknown): Outcome {
  const known = error instanceof DifFaceError;
  return { input, error: { code: known ? error.code : 'ETORCH', message: known ? error.message : String((error as Error)?.message ?? error) } };
}

function report(outcome: Outcome): void {
  if (outcome.error) process.stderr.write(`difface: ${outcome.error.message} [${outcome.error.code}]\n`);
  for (const warning of outcome.warnings ?? []) process.stderr.write(`difface: warning: ${outcome.input}: ${warning}\n`);
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

/** The mask of one input: --mask, or the image in --masks named as the input (any image extension). */
function maskFor(file: string, args: InpaintArgs): string | undefined {
  if (args.mask !== undefined) return args.mask;
  if (args.masks === undefined) return undefined;
  const stem = path.basename(file, path.extname(file));
  const candidates = fs.existsSync(args.masks) ? fs.readdirSync(args.masks) : [];
  const found = candidates.find((name) => path.basename(name, path.extname(name)) === stem &&
    IMAGE_EXTENSIONS.has(path.extname(name).toLowerCase()));
  if (found === undefined) {
    throw new DifFaceError('EARG', `${file}: ${args.masks} holds no mask named ${stem} (${stem}.png or another image type)`);
  }
  return path.join(args.masks, found);
}

interface Job {
  input: string;
  mask: string | undefined;
}

/** Each input with its mask, checked alone (readable, same size, a hole), so that one bad input fails only itself. */
async function checkedJobs(files: string[], args: InpaintArgs, outcomes: Outcome[]): Promise<Job[]> {
  const jobs: Job[] = [];
  for (const input of files) {
    try {
      const mask = maskFor(input, args);
      await checkInpaintInput(input, mask, args.maxPixels);
      jobs.push({ input, mask });
    } catch (error) {
      outcomes.push(failure(input, error));
      report(outcomes[outcomes.length - 1] as Outcome);
    }
  }
  return jobs;
}

async function runBatch(engine: DifFace, batch: Job[], args: InpaintArgs, seed: bigint, stems: Map<string, string>,
  signal: AbortSignal, progress: Progress): Promise<Outcome[]> {
  const inpainted = await engine.inpaintImages(batch.map((job) => job.input), {
    masks: batch.map((job) => job.mask), seed, signal, compare: args.compare, quality: args.quality, maxPixels: args.maxPixels,
    batchSize: batch.length, onStep: ({ step, total }) => progress.step(step, total),
    ...(args.format !== undefined ? { format: args.format } : {}),
    ...(args.eta !== undefined ? { eta: args.eta } : {}),
    ...(args.startStep !== undefined ? { startStep: args.startStep } : {}),
    ...(args.gamma !== undefined ? { gamma: args.gamma } : {}),
  });
  return batch.map((job, i) => {
    const result = inpainted[i] as (typeof inpainted)[number];
    const outcome: Outcome = {
      input: job.input, ...(job.mask !== undefined ? { mask: job.mask } : {}), holes: result.holes, warnings: result.warnings,
    };
    try {
      const stem = stems.get(job.input) as string;
      const output = `${stem}.${extensionOf(result.info.format)}`;
      checkNotInput(output, job.input);
      writeAtomically(output, result.image);
      outcome.output = output;
      if (result.compare) {
        outcome.compare = `${stem}.compare.png`;
        writeAtomically(outcome.compare, result.compare);
      }
      return outcome;
    } catch (error) {
      return failure(job.input, error);
    }
  });
}

export async function inpaintCommand(argv: string[]): Promise<number> {
  const args = parseInpaintArgs(argv);
  const outcomes: Outcome[] = [];
  const files = expandInputs(args.inputs, outcomes);
  outcomes.forEach(report);
  if (args.masks !== undefined && !fs.existsSync(args.masks)) throw new UsageError(`--masks ${args.masks}: no such folder`);
  const modelDir = inpaintingModelsDir(args.models);
  prepareOutputFolder(args.output);
  const engine = await DifFace.load(modelDir, { device: args.device });
  if (engine.card.task !== 'inpainting') {
    engine.dispose();
    throw new DifFaceError('EMODELDIR', `'${modelDir}' holds networks for ${engine.card.task}, not inpainting; give --models ` +
      "an inpainting model directory ('difface models fetch --only inpainting' makes one)");
  }
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  process.once('SIGINT', stop);
  try {
    if (args.startStep !== undefined) usage(() => is.startStep(args.startStep, engine.timesteps.length - 1, '--start-step'));
    const seed = BigInt(args.seed ?? randomSeed());
    const jobs = await checkedJobs(files, args, outcomes);
    const stems = outputStems(jobs.map((job) => job.input), args.output);
    const progress = new Progress(jobs.length, 'faces', 'inpainted');
    const batchSize = args.batch ?? defaultBatchSize(engine.device);
    for (let start = 0; start < jobs.length && !controller.signal.aborted; start += batchSize) {
      const batch = jobs.slice(start, start + batchSize);
      const began = Date.now();
      let results: Outcome[];
      try {
        results = await runBatch(engine, batch, args, seed, stems, controller.signal, progress);
      } catch (error) {
        results = batch.map((job) => failure(job.input, error));
      }
      const seconds = (Date.now() - began) / 1000 / batch.length;
      for (const outcome of results) {
        if (!outcome.error) outcome.seconds = seconds;
        report(outcome);
        outcomes.push(outcome);
        progress.itemDone({
          input: outcome.input, ...(outcome.output !== undefined ? { output: outcome.output } : {}),
          ...(outcome.seconds !== undefined ? { seconds: outcome.seconds } : {}),
        });
      }
    }
    progress.finish();
    if (controller.signal.aborted) process.stderr.write('difface: interrupted; what was inpainted so far was written\n');
    if (args.json) {
      process.stdout.write(JSON.stringify({ models: engine.modelDir, device: engine.device, seed: String(seed), results: outcomes }) + '\n');
    }
    if (controller.signal.aborted) return 130;
    return outcomes.some((o) => o.error) ? 1 : 0;
  } finally {
    process.removeListener('SIGINT', stop);
    engine.dispose();
  }
}
