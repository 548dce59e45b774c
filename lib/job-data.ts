/**
 * What a restore job carries through Redis, written once for both sides: the client
 * (restore-queue.ts) writes it, the worker (worker.ts) reads it. The job's options are the
 * local API's, checked by the same rules (validate.ts) when the job is added and again when a
 * worker takes it, since anything that can write to Redis can add a job. Also here: the
 * names of the job's own Redis keys, what a finished job returns, and how a failure's code
 * travels in BullMQ's failedReason.
 */
import { AbortError, DifFaceError, ErrorCode, isErrorCode } from './errors';
import { OutputFormat } from './image';
import { seedOf } from './restore';
import * as is from './validate';

/** The options of one queued restore: those of engine.restoreImage() that travel as JSON. */
export interface QueuedRestoreOptions {
  /** Seeds the job's generator, as torch.manual_seed(seed). Default: random, chosen when the job is added. */
  seed?: number | bigint;
  /** DDIM eta in [0, 1]. Default from the worker's model card. */
  eta?: number;
  /** Index N the estimate is diffused to; the upper bound is checked by the worker against its models. */
  startStep?: number;
  /** Output format. Default: the input's own when it is PNG, JPEG or WebP, else PNG. */
  format?: OutputFormat;
  /** JPEG and WebP quality, 1 to 100. Default 95. */
  quality?: number;
  /** Inputs with more pixels are refused from their header. Default 50 million. */
  maxPixels?: number;
  /**
   * Write the restored image to this absolute path on the worker's machine (shared storage)
   * instead of keeping its bytes in Redis.
   */
  output?: string;
  /** Seconds the result stays in Redis after the job completes. Default: the queue's (3600). */
  resultTtl?: number;
}

/** The job's data in Redis: the options as they travel, with the seed chosen and the TTL settled. */
export interface JobData extends Omit<QueuedRestoreOptions, 'seed' | 'resultTtl'> {
  version: 1;
  /** The seed as decimal text: JSON has no bigints. */
  seed: string;
  resultTtl: number;
}

/** What a completed job returns (BullMQ's returnvalue): where its image is, and what it is. */
export interface JobOutcome {
  where: 'redis' | 'file';
  /** The key of the image's bytes ('redis') or the file written ('file'). */
  location: string;
  bytes: number;
  sha256: string;
  format: OutputFormat;
  width: number;
  height: number;
  seed: string;
  /** The name of the worker that restored it. */
  worker: string;
}

export const JOB_NAME = 'restore';

const KNOWN = new Set(['seed', 'eta', 'startStep', 'format', 'quality', 'maxPixels', 'output', 'resultTtl']);

/** A number of seconds for a TTL: a whole, positive number (Redis takes whole seconds). */
export function ttlSeconds(value: unknown, name: string): number {
  return is.integer(value, name, 1);
}

/**
 * Checks a job's options and makes its data; throws EARG naming the option at fault. A
 * seed is chosen here when none is given, so every try of the job draws the same noise.
 */
export function jobData(options: QueuedRestoreOptions, defaultResultTtl: number): JobData {
  if (typeof options !== 'object' || options === null) throw is.invalidParameterError('options', 'an object', options);
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) {
      throw new DifFaceError('EARG', `unknown option '${key}' for a queued restore; use ${[...KNOWN].join(', ')}`);
    }
  }
  const data: JobData = {
    version: 1,
    seed: String(seedOf(options.seed)),
    resultTtl: options.resultTtl === undefined ? defaultResultTtl : ttlSeconds(options.resultTtl, 'resultTtl'),
  };
  if (options.eta !== undefined) data.eta = is.eta(options.eta);
  if (options.startStep !== undefined) data.startStep = is.integer(options.startStep, 'startStep', 1);
  if (options.format !== undefined) data.format = is.outputFormat(options.format);
  if (options.quality !== undefined) data.quality = is.quality(options.quality);
  if (options.maxPixels !== undefined) data.maxPixels = is.maxPixels(options.maxPixels);
  if (options.output !== undefined) data.output = absolutePath(options.output);
  return data;
}

function absolutePath(value: unknown): string {
  if (typeof value !== 'string' || !value.startsWith('/') || value.includes('\0')) {
    throw is.invalidParameterError('output', "an absolute path on the worker's machine", value);
  }
  return value;
}

/** A job's data as a worker reads it back: checked again, by the same rules. */
export function readJobData(raw: unknown): JobData {
  const data = raw as Partial<JobData> | null;
  if (typeof data !== 'object' || data === null || data.version !== 1 || typeof data.seed !== 'string' || !/^\d+$/.test(data.seed)) {
    throw new DifFaceError('EARG', 'the job was not added by a difface RestoreQueue of this version (its data has no version 1 seed); add it with RestoreQueue.add()');
  }
  const { version: _version, seed, ...rest } = data;
  return { ...jobData({ ...rest, seed: BigInt(seed) }, ttlSeconds(data.resultTtl, 'resultTtl')), seed };
}

/** The names of a job's own keys beside BullMQ's, under the same prefix and queue name. */
export class JobKeys {
  private readonly base: string;

  constructor(prefix: string, queue: string) {
    this.base = `${prefix}:${queue}:difface`;
  }

  /** The image to restore, set when the job is added, deleted when it completes. */
  input(id: string): string {
    return `${this.base}:input:${id}`;
  }

  /** The restored image's bytes, written once (SET NX) with the job's TTL. */
  result(id: string): string {
    return `${this.base}:result:${id}`;
  }

  /** The file a job wrote, recorded before it is written, so that a second run knows it as its own. */
  file(id: string): string {
    return `${this.base}:file:${id}`;
  }

  /** Set when a client cancels a job, for the worker that takes it next. */
  cancel(id: string): string {
    return `${this.base}:cancel:${id}`;
  }

  /** Where cancellations are published to the workers running the jobs. */
  get cancelChannel(): string {
    return `${this.base}:cancel`;
  }
}

/**
 * Codes a job fails with at once, without another try: the same input and options would fail
 * the same way again. Every other failure (EOOM, EDEVICE, ETORCH, EQUEUE, ...) is tried again
 * after a backoff.
 */
export const PERMANENT_CODES: readonly ErrorCode[] = ['EARG', 'EIMAGE', 'EABORT', 'EOUTPUT'];

export function isPermanent(code: ErrorCode): boolean {
  return PERMANENT_CODES.includes(code);
}

/** BullMQ keeps a failure's message only: the code travels at its start. */
export function failureReason(error: DifFaceError): string {
  return `${error.code}: ${error.message}`;
}

/** The error a failed job's reason stands for. */
export function errorFromReason(reason: string | undefined, id: string): DifFaceError {
  const match = /^(E[A-Z]+): ([\s\S]*)$/.exec(reason ?? '');
  const code = match?.[1];
  if (match !== null && isErrorCode(code)) {
    const message = `job ${id}: ${match[2] as string}`;
    return code === 'EABORT' ? new AbortError(message) : new DifFaceError(code, message);
  }
  return new DifFaceError('ETORCH', `job ${id} failed: ${reason ?? 'no reason was recorded'}`);
}
