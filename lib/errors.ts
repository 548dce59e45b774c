/**
 * Every error difface raises is a {@link DifFaceError} with a stable `code`: branch on the
 * code, show the message (it names what was wrong and what to do).
 */

/** The stable error codes, each with what it means. The one list: the type, the native layer's mapping and the docs follow it. */
export const ERROR_CODES = {
  EARG: 'an argument or option is missing, of the wrong type, or out of range',
  EMODELDIR: 'a model directory is missing, incomplete, corrupt, or does not match its model card',
  ECHECKPOINT: 'a checkpoint cannot be read (damaged, not written by torch.save, or holding something other than tensors and containers) or does not fit the network it is for',
  ECONFIG: 'a configuration given to convert is malformed or unsupported',
  ECONVERT: "the converter's own self-check failed",
  ECOMPILE: "compiling the UNet ahead of time (AOTInductor, 'difface compile') failed; the TorchScript export still runs",
  EOUTPUT: 'an output location cannot be created or written',
  EPYTHON: 'Python with PyTorch, needed only to convert other configurations, was not found',
  EDEVICE: 'the requested device cannot be used (no CUDA in this libtorch, no such GPU)',
  EDISPOSED: 'a tensor or engine was used after dispose()',
  EABORT: 'the call was aborted through its AbortSignal, or its engine was disposed while it ran',
  ETORCH: 'libtorch failed while running a network',
  EOOM: 'the device or the host ran out of memory',
  ENATIVE: 'the native addon could not be loaded',
  EIMAGE: 'an image cannot be read, is not a supported format, or is too large',
  EQUEUEFULL: "the engine's queue is full (maxQueue calls waiting)",
  EDETECT: 'finding faces in a photo is not available here (no dlib), or failed',
  EFETCH: 'a model file could not be downloaded or imported (network, server, time-out, missing file)',
  ECHECKSUM: "a downloaded or imported file's size or sha256 differs from the manifest's (the file was removed)",
  EQUEUE: 'the job queue failed: Redis cannot be reached, or a job, its image or its result is no longer there',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class DifFaceError extends Error {
  readonly code: ErrorCode;
  /** A longer account when there is one, such as the TorchScript traceback of a failed network call. */
  detail?: string;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DifFaceError';
    this.code = code;
  }
}

/** Raised when a call is stopped through its `AbortSignal` (or the engine is disposed mid-call). */
export class AbortError extends DifFaceError {
  constructor(message = 'the operation was aborted', options?: { cause?: unknown }) {
    super('EABORT', message, options);
    this.name = 'AbortError';
  }
}

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(ERROR_CODES, code);
}

/** Turns whatever the native layer threw into a DifFaceError, keeping its code and message. */
export function fromNative(error: unknown): DifFaceError {
  if (error instanceof DifFaceError) return error;
  const raw = error as { code?: unknown; message?: unknown; detail?: unknown } | undefined;
  const message = typeof raw?.message === 'string' ? raw.message : String(error);
  const code = isErrorCode(raw?.code) ? raw.code : 'ETORCH';
  const converted = code === 'EABORT' ? new AbortError(message, { cause: error }) : new DifFaceError(code, message, { cause: error });
  if (typeof raw?.detail === 'string') converted.detail = raw.detail;
  return converted;
}

export function argumentError(message: string): DifFaceError {
  return new DifFaceError('EARG', message);
}
