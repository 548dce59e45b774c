/**
 * The engine's request queue: concurrent restore calls wait here, and those that can share
 * the networks (same input size and start step) go through them together, up to maxBatch
 * faces. Each request keeps its own seed and eta, so its result is what it would get alone.
 * A request aborted while it waits leaves at once; one aborted while it runs leaves the
 * batch at the next step, and the rest of the batch goes on. A batch that fails natively
 * fails its own requests only; the queue goes on with the next.
 */
import { CallControl } from './call';
import { AbortError, DifFaceError, fromNative } from './errors';
import { NativeEngine, NativeRequest, NativeRequestResult } from './native';

export interface QueueLimits {
  /** Most faces that go through the networks together. */
  maxBatch: number;
  /** Most requests that may wait; past it, calls reject at once with EQUEUEFULL. */
  maxQueue: number;
}

/** What engine.stats() reports. */
export interface EngineStats {
  /** Requests waiting now. */
  waiting: number;
  /** Faces in the batch running now. */
  running: number;
  completed: number;
  failed: number;
  aborted: number;
  /** Requests refused because the queue was full. */
  rejected: number;
  batches: number;
  /** How many batches had each number of faces. */
  batchSizes: Record<number, number>;
  /** Seconds from a call to its result, over the last 1024 completed requests. */
  latency: Quantiles;
  /** Seconds requests waited before their batch started, likewise. */
  wait: Quantiles;
}

export interface Quantiles {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
}

export interface QueuedRequest {
  /** The native request, made (and its faces taken) when the call was made. */
  request: NativeRequest;
  faces: number;
  /** The size the faces go through the networks at. */
  height: number;
  width: number;
  startStep: number;
  control: CallControl;
}

interface Entry extends QueuedRequest {
  key: string;
  resolve(result: NativeRequestResult): void;
  reject(error: unknown): void;
  enqueued: number;
}

const WINDOW = 1024;

function quantiles(samples: number[]): Quantiles {
  if (samples.length === 0) return { count: 0, mean: 0, p50: 0, p90: 0, p99: 0 };
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
  return { count: samples.length, mean: sorted.reduce((a, b) => a + b, 0) / sorted.length, p50: at(0.5), p90: at(0.9), p99: at(0.99) };
}

function disposeResult(result: NativeRequestResult): void {
  for (const tensor of [...result.restored, ...result.estimates]) tensor.dispose();
}

export class BatchQueue {
  private readonly waiting: Entry[] = [];
  private runningFaces = 0;
  private busy = false;
  private scheduled = false;
  private closed = false;
  private readonly counts = { completed: 0, failed: 0, aborted: 0, rejected: 0, batches: 0 };
  private readonly batchSizes: Record<number, number> = {};
  private readonly latencies: number[] = [];
  private readonly waits: number[] = [];
  private readonly batchListeners = new Set<(faces: number) => void>();

  constructor(private readonly engine: NativeEngine, private readonly limits: QueueLimits) {}

  /** Queues a request; resolves when its batch has run. */
  submit(queued: QueuedRequest): Promise<NativeRequestResult> {
    if (this.closed) return Promise.reject(new DifFaceError('EDISPOSED', 'this engine was disposed; load a new one'));
    if (queued.control.aborted) {
      this.counts.aborted++;
      return Promise.reject(queued.control.failure(new AbortError()));
    }
    if (this.waiting.length >= this.limits.maxQueue) {
      this.counts.rejected++;
      return Promise.reject(new DifFaceError('EQUEUEFULL',
        `the engine's queue is full (${this.limits.maxQueue} requests waiting); try again later, or load the engine with a larger maxQueue`));
    }
    return new Promise<NativeRequestResult>((resolve, reject) => {
      const key = `${queued.height}x${queued.width}@${queued.startStep}`;
      const entry: Entry = { ...queued, key, resolve, reject, enqueued: performance.now() };
      entry.control.attach(() => this.leaveIfWaiting(entry));
      this.waiting.push(entry);
      this.schedule();
    });
  }

  /** Calls `listener` with the number of faces of every batch that starts; returns how to stop. */
  onBatch(listener: (faces: number) => void): () => void {
    this.batchListeners.add(listener);
    return () => this.batchListeners.delete(listener);
  }

  stats(): EngineStats {
    return {
      waiting: this.waiting.length,
      running: this.runningFaces,
      ...this.counts,
      batchSizes: { ...this.batchSizes },
      latency: quantiles(this.latencies),
      wait: quantiles(this.waits),
    };
  }

  /** Refuses new requests and rejects the waiting ones; the running batch is stopped by the engine. */
  close(): void {
    this.closed = true;
    for (const entry of this.waiting.splice(0)) {
      entry.control.detach();
      this.counts.aborted++;
      entry.reject(new AbortError('the engine was disposed before this call started'));
    }
  }

  /** A cancelled request that has not started leaves the queue now; a running one stops at its next step. */
  private leaveIfWaiting(entry: Entry): void {
    const index = this.waiting.indexOf(entry);
    if (index < 0) return;
    this.waiting.splice(index, 1);
    entry.control.detach();
    if (entry.control.failed) this.counts.failed++;
    else this.counts.aborted++;
    entry.reject(entry.control.failure(new AbortError()));
  }

  /** The next batch: the oldest request, and the later ones that fit beside it. */
  private takeBatch(): Entry[] {
    const first = this.waiting.shift() as Entry;
    const batch = [first];
    let faces = first.faces;
    for (let i = 0; i < this.waiting.length && faces < this.limits.maxBatch;) {
      const entry = this.waiting[i] as Entry;
      if (entry.key === first.key && faces + entry.faces <= this.limits.maxBatch) {
        batch.push(entry);
        faces += entry.faces;
        this.waiting.splice(i, 1);
      } else {
        i++;
      }
    }
    return batch;
  }

  /** Pumps on the next turn of the event loop, so that calls made together batch together. */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    if (this.busy || this.closed || this.waiting.length === 0) return;
    this.busy = true;
    const batch = this.takeBatch();
    const started = performance.now();
    const faces = batch.reduce((n, e) => n + e.faces, 0);
    this.runningFaces = faces;
    this.counts.batches++;
    this.batchSizes[faces] = (this.batchSizes[faces] ?? 0) + 1;
    for (const listener of this.batchListeners) listener(faces);
    for (const entry of batch) this.waits.push((started - entry.enqueued) / 1000);
    const onStep = (step: number, total: number, timestep: number, index: number): void => {
      batch[index]?.control.report(step, total, timestep);
    };
    const first = batch[0] as Entry;
    let running: Promise<NativeRequestResult[]>;
    try {
      running = this.engine.restoreBatch(batch.map((entry) => entry.request), first.height, first.width, first.startStep, onStep);
    } catch (error) {
      running = Promise.reject(error);
    }
    running.then((results) => {
      batch.forEach((entry, i) => this.settle(entry, results[i] as NativeRequestResult));
    }, (error: unknown) => {
      for (const entry of batch) this.fail(entry, fromNative(error));
    }).finally(() => {
      this.busy = false;
      this.runningFaces = 0;
      this.schedule();
    });
  }

  private settle(entry: Entry, result: NativeRequestResult): void {
    this.finish(entry);
    if (entry.control.failed || result.aborted) {
      disposeResult(result);
      if (entry.control.failed) this.counts.failed++;
      else this.counts.aborted++;
      entry.reject(entry.control.failure(new AbortError(), this.closed));
      return;
    }
    this.counts.completed++;
    entry.resolve(result);
  }

  private fail(entry: Entry, error: DifFaceError): void {
    this.finish(entry);
    if (error.code === 'EABORT' && !entry.control.failed) this.counts.aborted++;
    else this.counts.failed++;
    entry.reject(entry.control.failure(error, this.closed));
  }

  private finish(entry: Entry): void {
    entry.control.detach();
    this.latencies.push((performance.now() - entry.enqueued) / 1000);
    if (this.latencies.length > WINDOW) this.latencies.shift();
    if (this.waits.length > WINDOW) this.waits.splice(0, this.waits.length - WINDOW);
  }
}
