/**
 * Every error difface raises is a {@link DifFaceError} with a stable `code`: branch on the
 * code, show the message (it names what was wrong and what to do).
 */

/** The stable error codes. */
export type ErrorCode =
  /** An argument or option is missing, of the wrong type, or out of range. */
  | 'EARG'
  /** A model directory is missing, incomplete, corrupt, or does not match its model card. */
  | 'EMODELDIR'
  /**
   * A checkpoint cannot be read (damaged, not written by torch.save, or holding something
   * other than tensors and containers) or does not fit the network it is for.
   */
  | 'ECHECKPOINT'
  /** A configuration given to `convert` is malformed or unsupported. */
  | 'ECONFIG'
  /** The converter's own self-check failed. */
  | 'ECONVERT'
  /** An output location cannot be created or written. */
  | 'EOUTPUT'
  /** Python with PyTorch, needed only by `convert`, was not found. */
  | 'EPYTHON'
  /** The requested device cannot be used (no CUDA in this libtorch, no such GPU). */
  | 'EDEVICE'
  /** A tensor or engine was used after `dispose()`. */
  | 'EDISPOSED'
  /** The call was aborted through its `AbortSignal`. */
  | 'EABORT'
  /** libtorch failed while running a network. */
  | 'ETORCH'
  /** The device or the host ran out of memory. */
  | 'EOOM'
  /** The native addon could not be loaded. */
  | 'ENATIVE'
  /** An image cannot be read, is not a supported format, or is too large. */
  | 'EIMAGE'
  /** The engine's queue is full (maxQueue calls waiting). */
  | 'EQUEUEFULL'
  /** Finding faces in a photo is not available here (no dlib), or failed. */
  | 'EDETECT'
  /** A model file could not be downloaded or imported (network, server, time-out, missing file). */
  | 'EFETCH'
  /** A downloaded or imported file's size or sha256 differs from the manifest's (the file was removed). */
  | 'ECHECKSUM';

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

const KNOWN_CODES = new Set<string>([
  'EARG', 'EMODELDIR', 'ECHECKPOINT', 'ECONFIG', 'ECONVERT', 'EOUTPUT', 'EPYTHON', 'EDEVICE',
  'EDISPOSED', 'EABORT', 'ETORCH', 'EOOM', 'ENATIVE', 'EIMAGE', 'EQUEUEFULL', 'EDETECT', 'EFETCH', 'ECHECKSUM',
]);

/** Turns whatever the native layer threw into a DifFaceError, keeping its code and message. */
export function fromNative(error: unknown): DifFaceError {
  if (error instanceof DifFaceError) return error;
  const raw = error as { code?: unknown; message?: unknown; detail?: unknown } | undefined;
  const message = typeof raw?.message === 'string' ? raw.message : String(error);
  const code = typeof raw?.code === 'string' && KNOWN_CODES.has(raw.code) ? (raw.code as ErrorCode) : 'ETORCH';
  const converted = code === 'EABORT' ? new AbortError(message, { cause: error }) : new DifFaceError(code, message, { cause: error });
  if (typeof raw?.detail === 'string') converted.detail = raw.detail;
  return converted;
}

export function argumentError(message: string): DifFaceError {
  return new DifFaceError('EARG', message);
}
