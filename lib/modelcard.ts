/**
 * The model card (`difface.json`) of a model directory, and the checks that the directory is
 * complete and matches its card. Two kinds of directory have one:
 * - version 1: TorchScript exports with their weights (the Python converter, the demo models);
 * - version 2: the published checkpoints themselves beside weight-less architectures that the
 *   engine fills from them at load (`difface models fetch`, and `difface convert` without Python).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { DifFaceError } from './errors';

export const MODEL_CARD = 'difface.json';
const CARD_FORMAT = 'difface-model';
const EXPORT_VERSION = 1;
const CHECKPOINT_VERSION = 2;

export interface NetworkEntry {
  /** File name inside the model directory: a TorchScript export (version 1) or a published checkpoint (version 2). */
  file: string;
  bytes: number;
  sha256: string;
  parameters: number;
  /** The published configuration keys the network was built from. */
  config: Record<string, unknown>;
  /** The checkpoint it was converted from, when there was one. */
  source?: { file: string; sha256: string };
  /** Version 2: the weight-less TorchScript architecture that `file` fills at load. */
  architecture?: { file: string; bytes: number; sha256: string };
  /** Version 2: where the weights are inside `file`, as the published loader finds them. */
  checkpoint?: { unwrap: string[]; stripPrefix: string };
}

export interface ScheduleSettings {
  steps: number;
  noiseSchedule: 'linear' | 'cosine';
  /** 'ddimK', comma-separated section counts, or '' for no respacing. */
  respacing: string;
  rescaleTimesteps: boolean;
}

export interface SamplingDefaults {
  startStep: number;
  eta: number;
  imageSize: number;
  /** Inpainting: the weight of the masking regularizer (published 0.5). */
  gamma?: number;
}

/** What a model directory's networks do: restore degraded faces, or fill holes in faces. */
export type Task = 'restoration' | 'inpainting';
export const TASKS: readonly Task[] = ['restoration', 'inpainting'];

export interface ModelCard {
  format: typeof CARD_FORMAT;
  version: number;
  /** Absent in cards written before inpainting: 'restoration'. */
  task: Task;
  /** 'converted' (TorchScript exports), 'published' (checkpoints filled at load), or 'demo'. */
  kind: string;
  description: string;
  unet: NetworkEntry;
  backbone: NetworkEntry;
  diffusion: Record<string, unknown>;
  schedule: ScheduleSettings;
  sampling: SamplingDefaults;
  export: { torch: string; python: string; converter: string; createdAt: string };
}

function fail(dir: string, problem: string): never {
  throw new DifFaceError('EMODELDIR', `model directory '${dir}': ${problem}`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkFile(dir: string, key: string, file: string, bytes: number, what: string): void {
  if (path.basename(file) !== file) fail(dir, `${MODEL_CARD} names a ${key} file outside the directory`);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(path.join(dir, file));
  } catch {
    fail(dir, `the ${key} ${what} ${file} named in ${MODEL_CARD} is missing; fetch or convert the checkpoints again`);
  }
  if (stat.size !== bytes) {
    fail(dir, `the ${key} ${what} ${file} has ${stat.size} bytes but ${MODEL_CARD} says ${bytes}: ` +
      'the file is truncated or belongs to another conversion; fetch or convert the checkpoints again');
  }
}

function checkNetwork(dir: string, card: Record<string, unknown>, key: 'unet' | 'backbone'): NetworkEntry {
  const entry = card[key];
  if (!isObject(entry) || typeof entry.file !== 'string' || typeof entry.bytes !== 'number' ||
      typeof entry.sha256 !== 'string' || !isObject(entry.config)) {
    fail(dir, `${MODEL_CARD} has no valid '${key}' entry; convert the checkpoints again with 'difface convert'`);
  }
  const filled = card.version === CHECKPOINT_VERSION;
  checkFile(dir, key, entry.file, entry.bytes, filled ? 'checkpoint' : 'file');
  if (filled) {
    const architecture = entry.architecture;
    const rules = entry.checkpoint;
    if (!isObject(architecture) || typeof architecture.file !== 'string' || typeof architecture.bytes !== 'number' ||
        !isObject(rules) || !Array.isArray(rules.unwrap) || typeof rules.stripPrefix !== 'string') {
      fail(dir, `${MODEL_CARD} gives the ${key} no architecture and checkpoint rules; fetch or convert the checkpoints again`);
    }
    checkFile(dir, key, architecture.file, architecture.bytes, 'architecture');
  }
  return entry as unknown as NetworkEntry;
}

function checkSchedule(dir: string, value: unknown): ScheduleSettings {
  if (!isObject(value) || !Number.isInteger(value.steps) || (value.steps as number) < 2 ||
      (value.noiseSchedule !== 'linear' && value.noiseSchedule !== 'cosine') || typeof value.respacing !== 'string') {
    fail(dir, `${MODEL_CARD} has no valid 'schedule' (steps, noiseSchedule, respacing)`);
  }
  return { rescaleTimesteps: false, ...value } as unknown as ScheduleSettings;
}

function checkSampling(dir: string, value: unknown): SamplingDefaults {
  if (!isObject(value) || !Number.isInteger(value.startStep) || typeof value.eta !== 'number' ||
      !Number.isInteger(value.imageSize)) {
    fail(dir, `${MODEL_CARD} has no valid 'sampling' defaults (startStep, eta, imageSize)`);
  }
  if (value.gamma !== undefined && !(typeof value.gamma === 'number' && value.gamma >= 0 && value.gamma <= 1)) {
    fail(dir, `${MODEL_CARD} has a sampling gamma outside [0, 1]`);
  }
  return value as unknown as SamplingDefaults;
}

function checkTask(dir: string, value: unknown): Task {
  if (value === undefined) return 'restoration';
  if (!TASKS.includes(value as Task)) {
    fail(dir, `${MODEL_CARD} has task ${JSON.stringify(value)}; this difface knows ${TASKS.join(' and ')}`);
  }
  return value as Task;
}

const PUBLISHED_UNET = 'iddpm_ffhq512_ema500000.pth';
const PUBLISHED_BACKBONE = 'swinir_restoration512_L1.pth';

/** What to run when a folder has no card: it may hold the published files, downloaded by hand. */
function missingCardAdvice(dir: string): string {
  const has = (name: string) => fs.existsSync(path.join(dir, name));
  if (has(PUBLISHED_UNET) && has(PUBLISHED_BACKBONE)) {
    return `it holds the published checkpoints: make it a model directory in place with 'difface convert --unet ` +
      `${path.join(dir, PUBLISHED_UNET)} --backbone ${path.join(dir, PUBLISHED_BACKBONE)} --out ${dir}' (no Python needed)`;
  }
  return "it is not a model directory; make one with 'difface models fetch' or 'difface convert'";
}

/** Reads and checks a model directory's card; throws EMODELDIR naming what is wrong. */
export function readModelCard(dir: string): ModelCard {
  if (typeof dir !== 'string' || dir.length === 0) {
    throw new DifFaceError('EARG', 'the model directory must be a non-empty path');
  }
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch {
    fail(dir, 'it does not exist; create it with `difface convert --unet U.pth --backbone B.pth --out DIR`');
  }
  if (!stat.isDirectory()) fail(dir, 'it is not a directory');
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, MODEL_CARD), 'utf8');
  } catch {
    fail(dir, `${MODEL_CARD} is missing; ${missingCardAdvice(dir)}`);
  }
  let card: unknown;
  try {
    card = JSON.parse(text);
  } catch (error) {
    fail(dir, `${MODEL_CARD} is not valid JSON (${(error as Error).message}); convert the checkpoints again`);
  }
  if (!isObject(card) || card.format !== CARD_FORMAT) fail(dir, `${MODEL_CARD} is not a difface model card`);
  if (card.version !== EXPORT_VERSION && card.version !== CHECKPOINT_VERSION) {
    fail(dir, `${MODEL_CARD} has version ${String(card.version)}, this difface reads versions ${EXPORT_VERSION} and ` +
      `${CHECKPOINT_VERSION}; fetch or convert the checkpoints again with this version`);
  }
  return {
    ...(card as unknown as ModelCard),
    task: checkTask(dir, card.task),
    unet: checkNetwork(dir, card, 'unet'),
    backbone: checkNetwork(dir, card, 'backbone'),
    schedule: checkSchedule(dir, card.schedule),
    sampling: checkSampling(dir, card.sampling),
  };
}

/** Writes a model card through a temporary name, so a reader never sees half of one. */
export function writeModelCard(dir: string, card: ModelCard): void {
  const target = path.join(dir, MODEL_CARD);
  const temporary = path.join(dir, `.${MODEL_CARD}.${process.pid}.tmp`);
  fs.writeFileSync(temporary, JSON.stringify(card, null, 2) + '\n');
  fs.renameSync(temporary, target);
}
