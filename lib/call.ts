/**
 * Progress and cancellation of one long call, the same for every call that has them: a
 * reverse loop run directly, or a restore that waits in the engine's queue.
 *
 * The native layer gets a progress callback that never throws and a cancel token. When the
 * caller's onStep throws, or its AbortSignal fires, the token is set and the call stops at
 * its next step; it then rejects with what onStep threw, or with an AbortError carrying the
 * signal's reason.
 */
import { AbortError, DifFaceError, fromNative } from './errors';
import { NativeCancelToken, native } from './native';
import { optionalFunction, optionalSignal } from './validate';

/** One finished reverse step. */
export interface StepProgress {
  /** Steps done so far, from 1. */
  step: number;
  /** Steps in this loop (the start step). */
  total: number;
  /** The training timestep the UNet was just called with. */
  timestep: number;
}

export type OnStep = (progress: StepProgress) => void;

export class CallControl {
  readonly token: NativeCancelToken;
  readonly signal: AbortSignal | undefined;
  #onStep: OnStep | undefined;
  #thrown: { value: unknown } | undefined;
  #hooks: (() => void)[] = [];
  #detach: (() => void) | undefined;

  /** Checks both options; throws EARG naming the one that is wrong. */
  constructor(onStep: unknown, signal: unknown) {
    this.#onStep = optionalFunction(onStep as OnStep | undefined, 'onStep');
    this.signal = optionalSignal(signal);
    this.token = new (native().NativeCancelToken)();
  }

  /** Whether the call should not start at all. */
  get aborted(): boolean {
    return this.signal?.aborted === true;
  }

  /** Listens to the signal until detach(); `hook` runs too when the call is cancelled. */
  attach(hook?: () => void): void {
    if (hook !== undefined) this.#hooks.push(hook);
    if (this.signal === undefined || this.#detach !== undefined) return;
    const signal = this.signal;
    const onAbort = (): void => this.cancel();
    signal.addEventListener('abort', onAbort, { once: true });
    this.#detach = () => signal.removeEventListener('abort', onAbort);
  }

  detach(): void {
    this.#detach?.();
    this.#detach = undefined;
    this.#hooks = [];
  }

  /** What the native layer calls after each step; a throw from onStep cancels this call only. */
  readonly report = (step: number, total: number, timestep: number): void => {
    if (this.#onStep === undefined || this.#thrown !== undefined) return;
    try {
      this.#onStep({ step, total, timestep });
    } catch (error) {
      this.#thrown = { value: error };
      this.cancel();
    }
  };

  /** The callback to hand the native layer: none when there is no onStep, so no progress is sent. */
  get progress(): ((step: number, total: number, timestep: number) => void) | undefined {
    return this.#onStep === undefined ? undefined : this.report;
  }

  /** Whether onStep threw, so the call must reject with that. */
  get failed(): boolean {
    return this.#thrown !== undefined;
  }

  cancel(): void {
    this.token.cancel();
    for (const hook of this.#hooks) hook();
  }

  /**
   * What the call rejects with, given what stopped it: what onStep threw, else an AbortError
   * with the signal's reason (or saying the engine went away), else the native failure.
   */
  failure(error: unknown, engineDisposed = false): unknown {
    if (this.#thrown !== undefined) return this.#thrown.value;
    const failure: DifFaceError = fromNative(error);
    if (failure.code !== 'EABORT') return failure;
    if (this.signal?.aborted === true) return new AbortError('the operation was aborted', { cause: this.signal.reason });
    if (engineDisposed) return new AbortError('the engine was disposed while this call was running', { cause: error });
    return failure;
  }
}
