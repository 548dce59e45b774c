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

import { IMAGE_COMMAND_OPTIONS, ImageCommandArgs, InputOutcome, expandInputs, failure, imageCommandArgs, isImageFile } from './cli-inputs';
import { UsageError, numericFlag, usage } from './cli-options';
import { outputStems, prepareOutputFolder, writeResult } from './cli-output';
import { Progress } from './cli-progress';
import { DifFace } from './engine';
import { DifFaceError } from './errors';
import { extensionOf } from './image';
import { checkInpaintInput } from './inpaint';
import { MODEL_CARD } from './modelcard';
import { userModelsDir } from './models';
import { randomSeed } from './restore';
import { defaultBatchSize } from './restore-images';
import * as is from './validate';

interface InpaintArgs extends ImageCommandArgs {
  mask?: string;
  masks?: string;
  gamma?: number;
}

interface Outcome extends InputOutcome {
  mask?: string;
  holes?: { pixels: number; fraction: number };
  warnings?: string[];
}

export function parseInpaintArgs(argv: string[]): InpaintArgs {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      ...IMAGE_COMMAND_OPTIONS,
      mask: { type: 'string' },
      masks: { type: 'string' },
      gamma: { type: 'string' },
    },
  });
  const args: InpaintArgs = imageCommandArgs('inpaint', values, positionals);
  if (values.mask !== undefined && values.masks !== undefined) {
    throw new UsageError('give either --mask (one mask for every input) or --masks (a folder of masks named as the inputs), not both');
  }
  if (values.mask !== undefined) args.mask = values.mask;
  if (values.masks !== undefined) args.masks = values.masks;
  const gamma = numericFlag(values.gamma, 'gamma', is.gamma);
  if (gamma !== undefined) args.gamma = gamma;
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

function report(outcome: Outcome): void {
  if (outcome.error) process.stderr.write(`difface: ${outcome.error.message} [${outcome.error.code}]\n`);
  for (const warning of outcome.warnings ?? []) process.stderr.write(`difface: warning: ${outcome.input}: ${warning}\n`);
}

/** The mask of one input: --mask, or the image in --masks named as the input (any image extension). */
function maskFor(file: string, args: InpaintArgs): string | undefined {
  if (args.mask !== undefined) return args.mask;
  if (args.masks === undefined) return undefined;
  const stem = path.basename(file, path.extname(file));
  const candidates = fs.existsSync(args.masks) ? fs.readdirSync(args.masks) : [];
  const found = candidates.find((name) => path.basename(name, path.extname(name)) === stem &&
    isImageFile(name));
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
      writeResult(outcome, job.input, stems.get(job.input) as string, extensionOf(result.info.format), result);
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
