/**
 * What the image commands (restore, inpaint) share: their common flags, their inputs (files
 * and folders expanded into image files), and a failed input as one line of the summary.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { DifFaceError } from './errors';
import { UsageError, numericFlag, textFlag } from './cli-options';
import { DEFAULT_MAX_PIXELS } from './image';
import * as is from './validate';

/** The options every image command (restore, inpaint) takes, as parsed from its flags. */
export interface ImageCommandArgs {
  inputs: string[];
  output: string;
  models?: string;
  eta?: number;
  startStep?: number;
  seed?: number;
  device: is.Device;
  batch?: number;
  format?: is.OutputFormat;
  quality: number;
  maxPixels: number;
  compare: boolean;
  json: boolean;
}

/** The flags every image command takes, for node:util's parseArgs. */
export const IMAGE_COMMAND_OPTIONS = {
  output: { type: 'string', short: 'o' },
  models: { type: 'string' },
  eta: { type: 'string' },
  'start-step': { type: 'string' },
  seed: { type: 'string' },
  device: { type: 'string', default: 'cpu' },
  batch: { type: 'string' },
  format: { type: 'string' },
  quality: { type: 'string' },
  'max-pixels': { type: 'string' },
  compare: { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
} as const;

interface ImageCommandValues {
  output?: string | undefined;
  models?: string | undefined;
  eta?: string | undefined;
  'start-step'?: string | undefined;
  seed?: string | undefined;
  device: string;
  batch?: string | undefined;
  format?: string | undefined;
  quality?: string | undefined;
  'max-pixels'?: string | undefined;
  compare: boolean;
  json: boolean;
}

/** The common flags checked by the rules of validate.ts; a usage error names the flag. */
export function imageCommandArgs(command: string, values: ImageCommandValues, positionals: string[]): ImageCommandArgs {
  if (positionals.length === 0) throw new UsageError(`${command} needs at least one input file or folder`);
  if (values.output === undefined || values.output === '') throw new UsageError(`${command} needs an output folder: -o OUT`);
  const args: ImageCommandArgs = {
    inputs: positionals,
    output: values.output,
    device: textFlag(values.device, 'device', is.device),
    quality: numericFlag(values.quality, 'quality', is.quality) ?? 95,
    maxPixels: numericFlag(values['max-pixels'], 'max-pixels', is.maxPixels) ?? DEFAULT_MAX_PIXELS,
    compare: values.compare,
    json: values.json,
  };
  const optional = {
    models: values.models,
    eta: numericFlag(values.eta, 'eta', is.eta),
    startStep: numericFlag(values['start-step'], 'start-step', (value, name) => is.integer(value, name, 1)),
    seed: numericFlag(values.seed, 'seed', (value, name) => Number(is.seed(value, name))),
    batch: numericFlag(values.batch, 'batch', is.batchSize),
    format: values.format === undefined ? undefined : textFlag(values.format.toLowerCase(), 'format', is.outputFormat),
  };
  for (const [key, value] of Object.entries(optional)) {
    if (value !== undefined) (args as unknown as Record<string, unknown>)[key] = value;
  }
  return args;
}

/** What an image command reports of one input. */
export interface InputOutcome {
  input: string;
  output?: string;
  compare?: string;
  seconds?: number;
  error?: { code: string; message: string };
}

export const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp', '.tif', '.tiff', '.avif']);

export function isImageFile(name: string): boolean {
  return IMAGE_EXTENSIONS.has(path.extname(name).toLowerCase());
}

/** An input that could not be used, with the code and message the summary prints. */
export interface FailedInput {
  input: string;
  error: { code: string; message: string };
}

/** Files and the images inside folders, in order; what cannot be used is a failed input. */
export function expandInputs(inputs: string[], failures: { push(failed: FailedInput): unknown }): string[] {
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
    const images = fs.readdirSync(input).filter(isImageFile).sort().map((name) => path.join(input, name));
    if (images.length === 0) {
      failures.push({ input, error: { code: 'EIMAGE', message: `${input}: the folder holds no images (png, jpg, webp, tif, avif)` } });
    }
    files.push(...images);
  }
  return files;
}

/** A thrown error as a failed input: a DifFaceError keeps its code, anything else is ETORCH. */
export function failure(input: string, error: unknown): FailedInput {
  const known = error instanceof DifFaceError;
  const message = known ? error.message : String((error as Error)?.message ?? error);
  return { input, error: { code: known ? error.code : 'ETORCH', message } };
}
