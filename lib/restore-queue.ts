/**
 * The client of a restore queue on Redis: adds jobs for workers anywhere (`difface worker`)
 * to run, follows their progress, gets their results and cancels them.
 *
 *   const queue = new RestoreQueue({ connection: 'redis://queue-host:6379', name: 'faces' });
 *   const job = await queue.add(imageBytes, { seed: 1, startStep: 100 });
 *   job.on('progress', ({ step, total }) => ...);
 *   const { image } = await job.result();     // the same image engine.restoreImage() gives
 *
 * A job's options are checked when it is added, by the local API's rules; its image is checked
 * from its header and kept in Redis beside the job (not in BullMQ's job data, which is JSON).
 * A job follows BullMQ's events; as events can be missed (Redis away, or finished before
 * this client listened), a job being waited for is also looked at every couple of seconds.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';

import { StepProgress } from './call';
import { AbortError, DifFaceError } from './errors';
import { DEFAULT_MAX_PIXELS, ImageInput, OutputFormat, probeImage } from './image';
import { JOB_NAME, JobKeys, JobOutcome, QueuedRestoreOptions, errorFromReason, jobData, ttlSeconds } from './job-data';
import { bullmq } from './queue-modules';
import { RedisConnection, bullConnection, checkConnection, queueError, redisClient, withRedis } from './redis';
import * as is from './validate';

export interface RestoreQueueOptions {
  /** Where Redis is: a redis:// URL, or its parts { host, port, db, username, password, tls }. */
  connection: RedisConnection;
  /** The queue's name; workers take jobs from the queue of the same name. */
  name: string;
  /** BullMQ's key prefix. Default 'bull'. */
  prefix?: string;
  /** Tries per job, for failures that may pass (EOOM, EDEVICE, ETORCH, EQUEUE). Default 3. */
  attempts?: number;
  /** Wait before the first retry, doubled for each next one, in milliseconds. Default 1000. */
  backoffMs?: number;
  /** Seconds a completed job's result stays in Redis. Default 3600. */
  resultTtl?: number;
  /** Seconds a job's image stays in Redis waiting for a worker. Default 86400. */
  inputTtl?: number;
}

export type { QueuedRestoreOptions };

/** Where a queued job stands, as BullMQ says; 'unknown' when Redis has no such job. */
export type QueuedJobState = 'waiting' | 'prioritized' | 'delayed' | 'active' | 'waiting-children' | 'completed' | 'failed' | 'unknown';

export interface QueuedImageInfo {
  format: OutputFormat;
  width: number;
  height: number;
  /** Size of the encoded image, and its sha256 in hex. */
  bytes: number;
  sha256: string;
  /** The seed the job was restored with. */
  seed: bigint;
  /** The worker that completed it. */
  worker: string;
}

/** A finished job's image: its bytes from Redis, or the file the worker wrote when the job named one. */
export type QueuedRestoration =
  | { where: 'redis'; image: Buffer; info: QueuedImageInfo }
  | { where: 'file'; path: string; info: QueuedImageInfo };

/** What a RestoreJob asks of its queue. */
interface JobHub {
  wait(id: string): Promise<JobOutcome>;
  fetch(id: string, outcome: JobOutcome): Promise<QueuedRestoration>;
  cancel(id: string): Promise<boolean>;
  state(id: string): Promise<QueuedJobState>;
}

/** One job of a RestoreQueue. Emits 'progress' after each diffusion step the worker runs. */
export class RestoreJob extends EventEmitter {
  readonly id: string;
  readonly #hub: JobHub;
  #result: Promise<QueuedRestoration> | undefined;

  /** @internal Jobs come from RestoreQueue.add() and RestoreQueue.job(). */
  constructor(id: string, hub: JobHub) {
    super();
    this.id = id;
    this.#hub = hub;
  }

  override on(event: 'progress', listener: (progress: StepProgress) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.on(event, listener);
  }

  override once(event: 'progress', listener: (progress: StepProgress) => void): this;
  override once(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.once(event, listener);
  }

  /**
   * The restored image, once a worker has completed the job. Rejects with the job's own
   * error and code when it failed for good (EIMAGE, EARG, ... after its tries), with an
   * AbortError when it was cancelled, and with EQUEUE when the job or its result is gone.
   */
  result(): Promise<QueuedRestoration> {
    this.#result ??= this.#hub.wait(this.id).then((outcome) => this.#hub.fetch(this.id, outcome));
    return this.#result;
  }

  /**
   * Cancels the job: a waiting job is removed from the queue, a running one stops at its next
   * step (as an AbortSignal stops a local call) and fails with EABORT, without another try.
   * Resolves to false when the job had already finished.
   */
  cancel(): Promise<boolean> {
    return this.#hub.cancel(this.id);
  }

  state(): Promise<QueuedJobState> {
    return this.#hub.state(this.id);
  }
}

interface Waiter {
  promise: Promise<JobOutcome>;
  resolve(outcome: JobOutcome): void;
  reject(error: DifFaceError): void;
}

/** How often jobs being waited for are looked at, besides their events. */
const CHECK_EVERY_MS = 2000;
/** How long close() waits for BullMQ's connections to say they ended. */
const CLOSE_WAIT_MS = 2000;
const FINISHED: readonly QueuedJobState[] = ['completed', 'failed', 'unknown'];

export class RestoreQueue {
  readonly name: string;
  readonly #connection: RedisConnection;
  readonly #queue: Queue;
  readonly #redis: Redis;
  readonly #keys: JobKeys;
  readonly #settings: { attempts: number; backoffMs: number; resultTtl: number; inputTtl: number; prefix: string };
  readonly #jobs = new Map<string, RestoreJob>();
  readonly #waiters = new Map<string, Waiter>();
  /** Jobs this client removed: gone from Redis because they were cancelled, not lost. */
  readonly #removed = new Set<string>();
  #events: QueueEvents | undefined;
  #listening: Promise<void> | undefined;
  #checking: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: RestoreQueueOptions) {
    if (typeof options !== 'object' || options === null) throw is.invalidParameterError('options', 'an object', options);
    this.#connection = checkConnection(options.connection);
    this.name = is.nonEmptyString(options.name, 'name');
    this.#settings = {
      prefix: is.nonEmptyString(options.prefix ?? 'bull', 'prefix'),
      attempts: is.integer(options.attempts ?? 3, 'attempts', 1, 100),
      backoffMs: is.integer(options.backoffMs ?? 1000, 'backoffMs', 0),
      resultTtl: ttlSeconds(options.resultTtl ?? 3600, 'resultTtl'),
      inputTtl: ttlSeconds(options.inputTtl ?? 86_400, 'inputTtl'),
    };
    this.#keys = new JobKeys(this.#settings.prefix, this.name);
    const closed = (): boolean => this.#closed;
    this.#queue = new (bullmq().Queue)(this.name, { connection: bullConnection(this.#connection, { waitForever: false, closed }), prefix: this.#settings.prefix });
    this.#queue.on('error', () => {});
    this.#redis = redisClient(this.#connection, { waitForever: false, closed });
  }

  /**
   * Adds a job: `image` is a path on this machine or the bytes of an image; its options are
   * engine.restoreImage()'s, checked now (EARG), and the image is checked from its header
   * (EIMAGE) before anything is sent.
   */
  async add(image: ImageInput, options: QueuedRestoreOptions = {}): Promise<RestoreJob> {
    this.#live();
    const data = jobData(options, this.#settings.resultTtl);
    const { bytes } = await probeImage(image, data.maxPixels ?? DEFAULT_MAX_PIXELS);
    const id = randomUUID();
    // Listening starts before the job exists, so that its first events are heard.
    void this.#listen();
    await withRedis(`adding a job to queue '${this.name}'`, this.#connection, async () => {
      await this.#redis.set(this.#keys.input(id), bytes, 'EX', this.#settings.inputTtl);
      await this.#queue.add(JOB_NAME, data, {
        jobId: id,
        attempts: this.#settings.attempts,
        backoff: { type: 'exponential', delay: this.#settings.backoffMs },
        removeOnComplete: { age: data.resultTtl },
        removeOnFail: { age: 7 * 86_400 },
      });
    });
    await this.#listenedOrLater();
    return this.job(id);
  }

  /** A job of this queue by its id, added here or by another client. */
  job(id: string): RestoreJob {
    this.#live();
    is.nonEmptyString(id, 'id');
    let job = this.#jobs.get(id);
    if (job === undefined) {
      job = new RestoreJob(id, {
        wait: (jobId) => this.#wait(jobId),
        fetch: (jobId, outcome) => this.#fetch(jobId, outcome),
        cancel: (jobId) => this.#cancel(jobId),
        state: (jobId) => this.#state(jobId),
      });
      this.#jobs.set(id, job);
      void this.#listen();
    }
    return job;
  }

  /** Jobs of this queue by state. */
  async counts(): Promise<Record<'waiting' | 'prioritized' | 'delayed' | 'active' | 'completed' | 'failed', number>> {
    const counts = await withRedis(`counting the jobs of queue '${this.name}'`, this.#connection,
      () => this.#queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed'));
    return {
      waiting: counts.waiting ?? 0, prioritized: counts.prioritized ?? 0, delayed: counts.delayed ?? 0,
      active: counts.active ?? 0, completed: counts.completed ?? 0, failed: counts.failed ?? 0,
    };
  }

  /** Stops following jobs (their result() rejects with EQUEUE) and closes the connections. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#checking);
    for (const [id, waiter] of this.#waiters) waiter.reject(new DifFaceError('EQUEUE', `job ${id}: its RestoreQueue was closed while it was waited for`));
    this.#waiters.clear();
    this.#jobs.clear();
    this.#redis.disconnect();
    // While Redis is away, BullMQ's close ends when its connections give up reconnecting (they
    // do once this queue is closed, within one reconnection delay): it is not waited for.
    let timer: NodeJS.Timeout | undefined;
    const enough = new Promise<void>((resolve) => { timer = setTimeout(resolve, CLOSE_WAIT_MS); });
    await Promise.race([Promise.allSettled([this.#events?.close(), this.#queue.close()]), enough]);
    clearTimeout(timer);
  }

  #live(): void {
    if (this.#closed) throw new DifFaceError('EDISPOSED', `the RestoreQueue of '${this.name}' was closed; make a new one`);
  }

  /**
   * Starts following the queue's events, once; resolves when they are heard. While Redis is
   * away that waits for it (the events' connection waits for ever), so callers never await it
   * unbounded: jobs waited for are also looked at every CHECK_EVERY_MS.
   */
  #listen(): Promise<void> {
    this.#listening ??= (async () => {
      const connection = bullConnection(this.#connection, { waitForever: true, closed: () => this.#closed });
      const events = new (bullmq().QueueEvents)(this.name, { connection, prefix: this.#settings.prefix });
      this.#events = events;
      events.on('error', () => {});
      events.on('progress', ({ jobId, data }) => this.#jobs.get(jobId)?.emit('progress', data as StepProgress));
      events.on('completed', ({ jobId, returnvalue }) => this.#settle(jobId, returnvalue as unknown as JobOutcome));
      events.on('failed', ({ jobId }) => void this.#check(jobId));
      events.on('removed', ({ jobId }) => this.#fail(jobId, new AbortError(this.#removed.has(jobId)
        ? `job ${jobId} was cancelled before it ran` : `job ${jobId} was removed from the queue before it ran`)));
      await events.waitUntilReady();
    })().catch(() => {});
    return this.#listening;
  }

  /** Waits for the events to be heard, but never longer than a look at the jobs would take. */
  async #listenedOrLater(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const later = new Promise<void>((resolve) => { timer = setTimeout(resolve, CHECK_EVERY_MS); });
    await Promise.race([this.#listen(), later]);
    clearTimeout(timer);
  }

  #wait(id: string): Promise<JobOutcome> {
    this.#live();
    let waiter = this.#waiters.get(id);
    if (waiter === undefined) {
      let resolve!: (outcome: JobOutcome) => void;
      let reject!: (error: DifFaceError) => void;
      const promise = new Promise<JobOutcome>((yes, no) => { resolve = yes; reject = no; });
      waiter = { promise, resolve, reject };
      this.#waiters.set(id, waiter);
      this.#checking ??= setInterval(() => { for (const waiting of this.#waiters.keys()) void this.#check(waiting); }, CHECK_EVERY_MS);
      void this.#listen().then(() => this.#check(id));
    }
    return waiter.promise;
  }

  #settle(id: string, outcome: JobOutcome): void {
    this.#waiters.get(id)?.resolve(outcome);
    this.#forget(id);
  }

  #fail(id: string, error: DifFaceError): void {
    this.#waiters.get(id)?.reject(error);
    this.#forget(id);
  }

  #forget(id: string): void {
    this.#waiters.delete(id);
    this.#jobs.delete(id);
    if (this.#waiters.size === 0) {
      clearInterval(this.#checking);
      this.#checking = undefined;
    }
  }

  /** Settles a job that has finished, from what Redis holds; a job still to run is left alone. */
  async #check(id: string): Promise<void> {
    try {
      const state = await this.#queue.getJobState(id);
      if (state === 'unknown' && this.#removed.has(id)) {
        this.#fail(id, new AbortError(`job ${id} was cancelled before it ran`));
        return;
      }
      if (state === 'unknown') {
        this.#fail(id, new DifFaceError('EQUEUE', `job ${id} is not in queue '${this.name}': it was removed, or Redis lost it ` +
          '(restarted without persistence); add it again'));
        return;
      }
      if (state !== 'completed' && state !== 'failed') return;
      const job = await this.#queue.getJob(id);
      if (job === undefined) return;
      if (state === 'completed') this.#settle(id, job.returnvalue as JobOutcome);
      else this.#fail(id, errorFromReason(job.failedReason, id));
    } catch {
      // Redis is away: the next look, or the job's events, settle it.
    }
  }

  async #fetch(id: string, outcome: JobOutcome): Promise<QueuedRestoration> {
    const info: QueuedImageInfo = {
      format: outcome.format, width: outcome.width, height: outcome.height, bytes: outcome.bytes, sha256: outcome.sha256,
      seed: BigInt(outcome.seed), worker: outcome.worker,
    };
    if (outcome.where === 'file') return { where: 'file', path: outcome.location, info };
    const image = await withRedis(`reading the result of job ${id}`, this.#connection, () => this.#redis.getBuffer(outcome.location));
    if (image === null) {
      throw new DifFaceError('EQUEUE', `job ${id}: its result is no longer in Redis (it is kept resultTtl seconds after the job completes); add the job again`);
    }
    return { where: 'redis', image, info };
  }

  async #state(id: string): Promise<QueuedJobState> {
    return withRedis(`reading the state of job ${id}`, this.#connection, () => this.#queue.getJobState(id)) as Promise<QueuedJobState>;
  }

  async #cancel(id: string): Promise<boolean> {
    this.#live();
    try {
      if (FINISHED.includes(await this.#queue.getJobState(id))) return false;
      this.#removed.add(id);
      if ((await this.#queue.remove(id)) === 1) {
        this.#fail(id, new AbortError(`job ${id} was cancelled before it ran`));
        await this.#redis.del(this.#keys.input(id));
        return true;
      }
      this.#removed.delete(id);
      // Running: tell the worker that runs it, and whichever takes it next.
      await this.#redis.set(this.#keys.cancel(id), '1', 'EX', 86_400);
      await this.#redis.publish(this.#keys.cancelChannel, id);
      return true;
    } catch (error) {
      throw queueError(`cancelling job ${id}`, this.#connection, error);
    }
  }
}
