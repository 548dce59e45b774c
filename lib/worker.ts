/**
 * A queue worker: one engine taking restore jobs from a BullMQ queue on Redis, so that
 * restoration scales out over processes and machines (`difface worker`, or startWorker()).
 *
 * The worker holds up to `concurrency` jobs at a time (default: maxBatch). Each job reads its
 * image from Redis and decodes it; the jobs taken together then go into the engine together
 * (batch-gate.ts), so that the engine's queue runs them as one batch, each with its own seed,
 * exactly as concurrent local calls are run. Each step is reported to the job's progress, and
 * the result is written once, keyed by the job's id (job-result.ts).
 *
 * What BullMQ does for it: a lock on each job, renewed while the job runs; a job whose
 * worker died is found stalled and put back to wait for another worker; failed jobs are
 * tried again with backoff, except those whose error says that trying again cannot help
 * (job-data.ts, PERMANENT_CODES), which fail at once as UnrecoverableError; close() takes
 * nothing new and waits for the jobs held. A client's cancellation reaches the worker that
 * runs the job through Redis pub/sub and stops it at its next step, as an AbortSignal stops
 * a local call; a job whose lock was lost (another worker now runs it) is stopped the same way.
 */
import * as os from 'node:os';
import type { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';

import { BatchGate } from './batch-gate';
import { OnStep, StepProgress } from './call';
import { DifFace } from './engine';
import { DifFaceError, ErrorCode, fromNative } from './errors';
import { decodeImage } from './image';
import { JobData, JobKeys, JobOutcome, errorFromReason, failureReason, isPermanent, readJobData } from './job-data';
import { existingResult, storeResult } from './job-result';
import { LoadOptions } from './load';
import { bullmq } from './queue-modules';
import { RedisConnection, bullConnection, checkConnection, describeConnection, redisClient, withRedis } from './redis';
import { encodeRestored } from './restore-images';
import * as is from './validate';
import { DepthState, WorkerMetrics, serveMetrics } from './worker-metrics';

export interface WorkerOptions extends LoadOptions {
  /** Where Redis is: a redis:// URL, or its parts { host, port, db, username, password, tls }. */
  connection: RedisConnection;
  /** The queue's name, as clients name it in RestoreQueue. */
  queue: string;
  /** The model directory. */
  models: string;
  /** BullMQ's key prefix. Default 'bull'. */
  prefix?: string;
  /** Jobs held at once: those in the running batch and those gathered for the next. Default: maxBatch. */
  concurrency?: number;
  /** This worker's name, recorded on the jobs it runs. Default: host name and process id. */
  name?: string;
  /** How long a job's lock lasts without renewal; a worker silent that long loses its jobs. Default 30 s. */
  lockDurationMs?: number;
  /** How often this worker looks for stalled jobs (whose worker died). Default 30 s. */
  stalledIntervalMs?: number;
  /** Serve GET /metrics and GET /healthz on this port (0: any free one). Default: none. */
  metricsPort?: number;
  /** Where the metrics listen. Default 127.0.0.1. */
  metricsHost?: string;
  /** Told of what the worker does: batches, completed and failed jobs, connection errors. */
  onEvent?: (event: WorkerEvent) => void;
}

export type WorkerEvent =
  | { type: 'ready' }
  | { type: 'batch'; jobs: string[] }
  | { type: 'completed'; job: string; seconds: number }
  | { type: 'failed'; job: string; code: ErrorCode; message: string; retry: boolean }
  | { type: 'lost'; job: string }
  | { type: 'error'; message: string };

export interface RunningWorker {
  readonly name: string;
  readonly engine: DifFace;
  readonly metrics: WorkerMetrics;
  /** http://host:port of the metrics, when asked for. */
  readonly metricsUrl: string | undefined;
  /** Takes no new job, finishes the jobs held, then frees the engine and closes the connections. */
  close(): Promise<void>;
}

/** How long the first job of a batch waits for the others taken with it. */
const GATHER_MS = 25;

interface Checked {
  connection: RedisConnection;
  queue: string;
  prefix: string;
  maxBatch: number;
  concurrency: number;
  name: string;
  lockDurationMs: number;
  stalledIntervalMs: number;
}

function checkWorkerOptions(options: WorkerOptions): Checked {
  if (typeof options !== 'object' || options === null) throw is.invalidParameterError('options', 'an object', options);
  const maxBatch = is.maxBatch(options.maxBatch ?? 8);
  return {
    connection: checkConnection(options.connection),
    queue: is.nonEmptyString(options.queue, 'queue'),
    prefix: is.nonEmptyString(options.prefix ?? 'bull', 'prefix'),
    maxBatch,
    concurrency: is.integer(options.concurrency ?? maxBatch, 'concurrency', 1),
    name: is.nonEmptyString(options.name ?? `${os.hostname()}:${process.pid}`, 'name'),
    lockDurationMs: is.integer(options.lockDurationMs ?? 30_000, 'lockDurationMs', 100),
    stalledIntervalMs: is.integer(options.stalledIntervalMs ?? 30_000, 'stalledIntervalMs', 100),
  };
}

/**
 * Sends each step to the job's progress, one update in flight at a time: a step that comes
 * while one is being sent replaces any other waiting, so a slow Redis never holds the engine.
 */
function progressReporter(job: Job): { onStep: OnStep; flush(): Promise<void> } {
  let sending: Promise<void> | undefined;
  let next: StepProgress | undefined;
  const send = (progress: StepProgress): void => {
    sending = job.updateProgress({ ...progress }).catch(() => {}).then(() => {
      sending = undefined;
      const waiting = next;
      next = undefined;
      if (waiting !== undefined) send(waiting);
    });
  };
  return {
    onStep: (progress) => {
      if (sending === undefined) send(progress);
      else next = progress;
    },
    async flush() {
      while (sending !== undefined) await sending;
    },
  };
}

/** What BullMQ records for a failure: the code in its message, and UnrecoverableError when trying again cannot help. */
function jobError(error: unknown): Error {
  const failure = error instanceof DifFaceError ? error : fromNative(error);
  const reason = failureReason(failure);
  return isPermanent(failure.code) ? new (bullmq().UnrecoverableError)(reason) : new Error(reason);
}

class JobRunner {
  constructor(private readonly engine: DifFace, private readonly redis: Redis, private readonly keys: JobKeys,
    private readonly gate: BatchGate, private readonly settings: Checked) {}

  /** One job: its image from Redis, restored in a batch with the jobs taken with it, its result written once. */
  async run(job: Job, signal: AbortSignal | undefined): Promise<JobOutcome> {
    const id = job.id as string;
    const doing = `job ${id}`;
    const { connection } = this.settings;
    if ((await withRedis(doing, connection, () => this.redis.exists(this.keys.cancel(id)))) === 1) {
      throw new DifFaceError('EABORT', 'cancelled by a client before it started');
    }
    const data = readJobData(job.data);
    const earlier = await withRedis(doing, connection, () => existingResult(this.redis, this.keys, id, data, this.settings.name));
    if (earlier !== undefined) return earlier;
    const bytes = await withRedis(doing, connection, () => this.redis.getBuffer(this.keys.input(id)));
    if (bytes === null) {
      throw new DifFaceError('EIMAGE', 'its image is no longer in Redis (it outlived the queue\'s inputTtl, or was removed); add the job again');
    }
    const decoded = await decodeImage(bytes, data.maxPixels === undefined ? {} : { maxPixels: data.maxPixels });
    const image = await this.restore(job, data, decoded, signal);
    return withRedis(doing, connection, () => storeResult(this.redis, this.keys, id, data, image, this.settings.name));
  }

  private async restore(job: Job, data: JobData, decoded: Awaited<ReturnType<typeof decodeImage>>,
    signal: AbortSignal | undefined): Promise<Buffer> {
    const seed = BigInt(data.seed);
    const progress = progressReporter(job);
    await this.gate.enter(job.id as string);
    const [face] = await this.engine.restoreDecoded([decoded], {
      seed, onStep: progress.onStep,
      ...(data.eta !== undefined ? { eta: data.eta } : {}),
      ...(data.startStep !== undefined ? { startStep: data.startStep } : {}),
      ...(signal !== undefined ? { signal } : {}),
    });
    await progress.flush();
    const restored = await encodeRestored(decoded, face as NonNullable<typeof face>, {
      ...(data.format !== undefined ? { format: data.format } : {}),
      ...(data.quality !== undefined ? { quality: data.quality } : {}),
    }, seed);
    return restored.image;
  }
}

/** Loads the engine, connects to Redis and starts taking jobs. */
export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  const settings = checkWorkerOptions(options);
  const onEvent = options.onEvent ?? (() => {});
  const where = describeConnection(settings.connection);
  const reportError = (error: Error): void => onEvent({ type: 'error', message: `Redis at ${where}: ${error.message}` });
  const engine = await DifFace.load(options.models, { ...options, maxBatch: settings.maxBatch });
  const keys = new JobKeys(settings.prefix, settings.queue);
  const redis = redisClient(settings.connection, { waitForever: true, onError: reportError });
  const subscriber = redisClient(settings.connection, { waitForever: true, onError: reportError });
  const gate = new BatchGate(Math.min(settings.maxBatch, settings.concurrency), GATHER_MS, (jobs) => onEvent({ type: 'batch', jobs }));
  const runner = new JobRunner(engine, redis, keys, gate, settings);
  let depthQueue: Queue | undefined;
  const metrics = new WorkerMetrics(async () => {
    depthQueue ??= new (bullmq().Queue)(settings.queue, { connection: bullConnection(settings.connection, { waitForever: false, closed: () => closing !== undefined }), prefix: settings.prefix });
    return await depthQueue.getJobCounts(...(['waiting', 'active', 'delayed', 'prioritized'] satisfies DepthState[])) as Partial<Record<DepthState, number>>;
  });
  const stopCounting = engine.onBatch((faces) => metrics.batch(faces));
  let closing: Promise<void> | undefined;

  const worker = new (bullmq().Worker)(settings.queue, async (job: Job, _token?: string, signal?: AbortSignal) => {
    try {
      return await runner.run(job, signal);
    } catch (error) {
      throw jobError(error);
    }
  }, {
    connection: bullConnection(settings.connection, { waitForever: true }),
    prefix: settings.prefix,
    name: settings.name,
    concurrency: settings.concurrency,
    lockDuration: settings.lockDurationMs,
    stalledInterval: settings.stalledIntervalMs,
    maxStalledCount: 1,
    autorun: false,
  });
  worker.on('error', reportError);
  worker.on('completed', (job: Job) => {
    const seconds = (Date.now() - job.timestamp) / 1000;
    metrics.jobCompleted(seconds);
    onEvent({ type: 'completed', job: job.id as string, seconds });
    redis.del(keys.input(job.id as string)).catch(() => {});
  });
  worker.on('failed', (job: Job | undefined, error: Error) => {
    const id = job?.id ?? 'unknown';
    const failure = errorFromReason(error.message, id);
    const retry = job !== undefined && error.name !== 'UnrecoverableError' && job.attemptsMade < (job.opts.attempts ?? 1);
    metrics.jobFailed(failure.code, retry);
    onEvent({ type: 'failed', job: id, code: failure.code, message: failure.message, retry });
  });
  worker.on('lockRenewalFailed', (ids: string[]) => {
    for (const id of ids) {
      worker.cancelJob(id, 'this worker lost the job\'s lock; another worker runs it now');
      onEvent({ type: 'lost', job: id });
    }
  });
  subscriber.on('message', (_channel: string, id: string) => {
    worker.cancelJob(id, 'cancelled by a client');
  });
  await withRedis(`subscribing to the cancellations of queue '${settings.queue}'`, settings.connection,
    () => subscriber.subscribe(keys.cancelChannel));

  const served = options.metricsPort === undefined ? undefined
    : await serveMetrics(metrics, is.port(options.metricsPort, 'metricsPort'), options.metricsHost ?? '127.0.0.1', () => ({
      status: closing === undefined ? 200 : 503,
      body: { status: closing === undefined ? 'ok' : 'closing', name: settings.name, queue: settings.queue, device: engine.device, engine: engine.stats() },
    }));

  void worker.run().catch((error: Error) => reportError(error));
  await worker.waitUntilReady();
  onEvent({ type: 'ready' });

  return {
    name: settings.name,
    engine,
    metrics,
    metricsUrl: served?.url,
    close(): Promise<void> {
      closing ??= (async () => {
        await worker.close();
        subscriber.disconnect();
        redis.disconnect();
        await depthQueue?.close().catch(() => {});
        await served?.close();
        stopCounting();
        engine.dispose();
      })();
      return closing;
    },
  };
}
