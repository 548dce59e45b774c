/**
 * Every rule an option must follow, written once and used by the API, the command line and
 * the HTTP server. Each rule takes the value and the name the caller knows it by ('eta',
 * '--eta' or 'start_step') and returns the checked value or throws EARG naming both.
 */
import { DifFaceError } from './errors';

/** What was given, for a message: its value and, when that could mislead, its type. */
function shown(actual: unknown): string {
  if (typeof actual === 'string') return JSON.stringify(actual);
  if (typeof actual === 'bigint') return `${actual}n`;
  if (actual === null || actual === undefined || typeof actual === 'number' || typeof actual === 'boolean') return String(actual);
  if (Array.isArray(actual)) {
    return actual.length <= 8 && actual.every((v) => typeof v === 'number') ? `[${actual.join(', ')}]` : `an array of ${actual.length}`;
  }
  return `a value of type ${typeof actual}`;
}

/** The EARG error for an option that breaks its rule. */
export function invalidParameterError(name: string, expected: string, actual: unknown): DifFaceError {
  return new DifFaceError('EARG', `${name} must be ${expected}, got ${shown(actual)}`);
}

export function integer(value: unknown, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`;
    throw invalidParameterError(name, `an integer ${range}`, value);
  }
  return value;
}

export function numberInRange(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !(value >= min && value <= max)) {
    throw invalidParameterError(name, max === Infinity ? `a number of at least ${min}` : `a number from ${min} to ${max}`, value);
  }
  return value;
}

export function oneOf<T extends string>(value: unknown, name: string, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw invalidParameterError(name, `one of ${allowed.join(', ')}`, value);
  }
  return value as T;
}

export function nonEmptyString(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length === 0) throw invalidParameterError(name, 'a non-empty string', value);
  return value;
}

export function optionalFunction<F>(value: F | undefined, name: string): F | undefined {
  if (value !== undefined && typeof value !== 'function') throw invalidParameterError(name, 'a function', value);
  return value;
}

export function optionalSignal(value: unknown, name = 'signal'): AbortSignal | undefined {
  if (value !== undefined && !(value instanceof AbortSignal)) throw invalidParameterError(name, 'an AbortSignal', value);
  return value;
}

// The options themselves.

export type Device = 'cpu' | 'cuda' | `cuda:${number}`;
export type DType = 'float32' | 'float16' | 'bfloat16';
export type OutputFormat = 'png' | 'jpeg' | 'webp';

export const DTYPES: readonly DType[] = ['float32', 'float16', 'bfloat16'];
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['png', 'jpeg', 'webp'];

export function device(value: unknown, name = 'device'): Device {
  if (typeof value !== 'string' || !/^(cpu|cuda|cuda:\d+)$/.test(value)) {
    throw invalidParameterError(name, "'cpu', 'cuda' or 'cuda:N'", value);
  }
  return value as Device;
}

export function dtype(value: unknown, name = 'dtype'): DType {
  return oneOf(value, name, DTYPES);
}

/** Seeds as torch.manual_seed takes them: below 2^64. */
export function seed(value: unknown, name = 'seed'): number | bigint {
  if (typeof value === 'bigint' && value >= 0n && value < 1n << 64n) return value;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  throw invalidParameterError(name, 'a non-negative safe integer or a bigint below 2^64', value);
}

export function eta(value: unknown, name = 'eta'): number {
  return numberInRange(value, name, 0, 1);
}

/** The weight of inpainting's masking regularizer: 0 (none) to 1; published 0.5. */
export function gamma(value: unknown, name = 'gamma'): number {
  return numberInRange(value, name, 0, 1);
}

/** Index N of the respaced chain that the estimate is diffused to: 1 to the last index. */
export function startStep(value: unknown, last: number, name = 'startStep'): number {
  return integer(value, name, 1, last);
}

/** An index of the respaced chain. */
export function stepIndex(value: unknown, last: number, name = 'index'): number {
  return integer(value, name, 0, last);
}

export function quality(value: unknown, name = 'quality'): number {
  return integer(value, name, 1, 100);
}

/** An output format; 'jpg' is taken for 'jpeg', as file names spell it. */
export function outputFormat(value: unknown, name = 'format'): OutputFormat {
  return oneOf(value === 'jpg' ? 'jpeg' : value, name, OUTPUT_FORMATS);
}

export function maxPixels(value: unknown, name = 'maxPixels'): number {
  return integer(value, name, 1);
}

export function threads(value: unknown, name = 'threads'): number {
  return integer(value, name, 1, 1024);
}

export function maxBatch(value: unknown, name = 'maxBatch'): number {
  return integer(value, name, 1);
}

/** Batch sizes to compile the UNet for: a non-empty list from 1 to 64, sorted, each once. */
export function compileBatches(value: unknown, name = 'batches'): number[] {
  if (!Array.isArray(value) || value.length === 0 ||
      value.some((b) => !Number.isInteger(b) || (b as number) < 1 || (b as number) > 64)) {
    throw invalidParameterError(name, 'a list of batch sizes from 1 to 64, like 1,8', value);
  }
  return [...new Set(value as number[])].sort((a, b) => a - b);
}

/** An image size to compile the UNet for: [height, width] in whole pixels of at least 8. */
export function compileSize(value: unknown, name = 'size'): [number, number] {
  const pair = Array.isArray(value) && value.length === 2 ? (value as unknown[]) : [];
  const [height, width] = pair;
  if (!Number.isInteger(height) || !Number.isInteger(width) || (height as number) < 8 || (width as number) < 8) {
    throw invalidParameterError(name, 'a height and width (H or HxW) in whole pixels of at least 8', value);
  }
  return [height as number, width as number];
}

export function maxQueue(value: unknown, name = 'maxQueue'): number {
  return integer(value, name, 0);
}

export function batchSize(value: unknown, name = 'batchSize'): number {
  return integer(value, name, 1);
}

export function upscale(value: unknown, name = 'upscale'): number {
  return integer(value, name, 1, 8);
}

export function minFace(value: unknown, name = 'minFace'): number {
  return numberInRange(value, name, 0, Infinity);
}

/** A time limit in seconds: positive, fractions allowed. */
export function positiveSeconds(value: unknown, name = 'timeout'): number {
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) throw invalidParameterError(name, 'a positive number of seconds', value);
  return value;
}

export function port(value: unknown, name = 'port'): number {
  return integer(value, name, 0, 65535);
}

/** A number written as text (a command-line flag, a query parameter), before its own rule. */
export function numberFromText(text: string, name: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value)) throw invalidParameterError(name, 'a number', text);
  return value;
}

export const BACKGROUNDS = ['realesrgan', 'lanczos'] as const;
export type BackgroundKind = (typeof BACKGROUNDS)[number];

/** How a whole photo's background is upscaled. */
export function background(value: unknown, name = 'background'): BackgroundKind {
  return oneOf(value, name, BACKGROUNDS);
}

/** A tile side or tile pad of the background network, in input pixels: even (the network folds 2 x 2 cells). */
export function evenPixels(value: unknown, name: string): number {
  const pixels = integer(value, name, 0, 1 << 16);
  if (pixels % 2 !== 0) throw invalidParameterError(name, 'an even number of pixels', value);
  return pixels;
}

export const DETECTORS = ['retinaface', 'dlib'] as const;
export type DetectorKind = (typeof DETECTORS)[number];

/** How a whole photo's faces are found. */
export function detector(value: unknown, name = 'detector'): DetectorKind {
  return oneOf(value, name, DETECTORS);
}

export const PASTES = ['parse', 'square'] as const;
export type PasteKind = (typeof PASTES)[number];

/** Under which mask a whole photo's restored faces are pasted back. */
export function paste(value: unknown, name = 'paste'): PasteKind {
  return oneOf(value, name, PASTES);
}

export function boolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw invalidParameterError(name, 'true or false', value);
  return value;
}
