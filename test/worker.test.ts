// Restores through a BullMQ queue on a real Redis (Debian's redis-server on loopback), with
// workers as separate processes (`difface worker`, one CPU thread each, the demo models):
// options and images checked when a job is added; 20 jobs on 2 workers, one of them killed
// with SIGKILL mid-batch, all completed once each and equal to the same restores run locally;
// SIGTERM finishing the batch held and taking nothing new; bad input failing once, with its
// code, without another try; progress, cancellation and results written to files; the
// worker's metrics; and Redis restarted under a running queue.
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import sharp from 'sharp';

import { AbortError, DifFace, DifFaceError, PERMANENT_CODES, RestoreJob, RestoreQueue, demoModelsDir } from 'difface';
import type { QueuedRestoration, QueuedRestoreOptions, StepProgress } from 'difface';

import { tempDir } from './helpers/env';
import { rejectsWith } from './helpers/errors';
import { alignedFaces } from './helpers/images';
import { TestRedis, startRedis } from './helpers/redis';
import { WorkerProcess, startWorkerProcess, stopWorkerProcess } from './helpers/workers';

/** Short locks, so that a killed worker's jobs go back to wait within seconds. */
const FAST_STALLS = ['--lock-duration', '2', '--stalled-interval', '1'];

/** The largest difference between two images' decoded 8-bit values, and how many values differ. */
async function pixelDifference(a: Buffer, b: Buffer): Promise<{ max: number; differing: number; values: number }> {
  const [x, y] = await Promise.all([a, b].map((image) => sharp(image).raw().toBuffer({ resolveWithObject: true })));
  assert.deepEqual([x?.info.width, x?.info.height, x?.info.channels], [y?.info.width, y?.info.height, y?.info.channels]);
  let max = 0;
  let differing = 0;
  const left = x?.data as Buffer;
  const right = y?.data as Buffer;
  for (let i = 0; i < left.length; i++) {
    const d = Math.abs((left[i] as number) - (right[i] as number));
    if (d > 0) differing++;
    if (d > max) max = d;
  }
  return { max, differing, values: left.length };
}

/** The job ids of a worker's line 'batch of N: ID ID ...'. */
function batchOf(line: string): string[] {
  return (line.split(': ').pop() ?? '').split(' ');
}

function redisImage(result: QueuedRestoration): Buffer {
  assert.equal(result.where, 'redis');
  return (result as Extract<QueuedRestoration, { where: 'redis' }>).image;
}

/** A loopback port nothing listens on. */
async function unusedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Settles within `ms` or fails the test: nothing here may wait for ever. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms / 1000} s`)), ms); });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

describe('the restore queue (BullMQ on Redis)', function () {
  let redis: TestRedis;
  let faces: Buffer[];
  let local: DifFace;
  const workers: WorkerProcess[] = [];
  const queues: RestoreQueue[] = [];
  /** BullMQ's own objects the tests look through, closed after the tests whatever happens. */
  const closing: { close(): Promise<void> }[] = [];

  const queue = (name: string, options: { attempts?: number; backoffMs?: number } = {}): RestoreQueue => {
    const made = new RestoreQueue({ connection: redis.url, name, attempts: options.attempts ?? 3, backoffMs: options.backoffMs ?? 200 });
    queues.push(made);
    return made;
  };
  const worker = async (queueName: string, name: string, flags: string[] = []): Promise<WorkerProcess> => {
    const started = await startWorkerProcess(redis.url, queueName, name, flags);
    workers.push(started);
    return started;
  };
  /** What engine.restoreImage() gives for the same image and options, on one thread as the workers run. */
  const restoredLocally = async (image: Buffer, options: QueuedRestoreOptions): Promise<Buffer> => {
    const { output: _output, resultTtl: _ttl, ...same } = options;
    return (await local.restoreImage(image, same)).image;
  };

  before(async function () {
    redis = await startRedis();
    faces = await Promise.all(alignedFaces().flatMap((file) => [
      sharp(file).resize(64, 64).png().toBuffer(),
      sharp(file).resize(80, 64, { fit: 'fill' }).png().toBuffer(),
    ]));
    local = await DifFace.load(demoModelsDir(), { threads: 1, maxBatch: 1 });
  });
  after(async function () {
    await Promise.all(workers.map((w) => stopWorkerProcess(w)));
    await Promise.all(queues.map((q) => q.close()));
    await Promise.all(closing.map((c) => c.close()));
    local?.dispose();
    await redis?.stop();
  });

  it('checks options and images when a job is added, by the local rules, and adds nothing it refuses', async function () {
    const refusing = queue('refusals');
    const face = faces[0] as Buffer;
    await rejectsWith(refusing.add(face, { eta: 2 }), 'EARG', /eta must be a number from 0 to 1, got 2/);
    await rejectsWith(refusing.add(face, { startStep: 0 }), 'EARG', /startStep must be an integer/);
    await rejectsWith(refusing.add(face, { seed: -1 }), 'EARG', /seed must be/);
    await rejectsWith(refusing.add(face, { format: 'gif' as never }), 'EARG', /format must be one of png, jpeg, webp/);
    await rejectsWith(refusing.add(face, { steps: 4 } as never), 'EARG', /unknown option 'steps'/);
    await rejectsWith(refusing.add(face, { output: 'relative.png' }), 'EARG', /output must be an absolute path/);
    await rejectsWith(refusing.add(Buffer.from('these are not pixels')), 'EIMAGE', /is not an image difface can read/);
    await rejectsWith(refusing.add(face, { maxPixels: 100 }), 'EIMAGE', /more than the limit of 100/);
    assert.throws(() => new RestoreQueue({ connection: 'http://127.0.0.1:1', name: 'x' }), (error: DifFaceError) => error.code === 'EARG');
    assert.deepEqual(await refusing.counts(), { waiting: 0, prioritized: 0, delayed: 0, active: 0, completed: 0, failed: 0 });
    assert.deepEqual([...PERMANENT_CODES].sort(), ['EABORT', 'EARG', 'EIMAGE', 'EOUTPUT']);
  });

  it('tells a client that Redis cannot be reached, with EQUEUE naming it, within seconds', async function () {
    const port = await unusedPort();
    const stranded = new RestoreQueue({ connection: `redis://127.0.0.1:${port}`, name: 'nowhere' });
    const started = Date.now();
    await rejectsWith(within(stranded.add(faces[0] as Buffer, { seed: 1 }), 30_000, 'adding without Redis'), 'EQUEUE',
      new RegExp(`adding a job to queue 'nowhere': Redis at redis://127\\.0\\.0\\.1:${port} failed .*check that it is running`));
    assert.ok(Date.now() - started < 20_000, `told after ${Date.now() - started} ms`);
    const waited = stranded.job('some-id').result();
    waited.catch(() => {});  // it rejects during close(), before it is looked at below
    await within(stranded.close(), 10_000, 'closing without Redis');
    await rejectsWith(waited, 'EQUEUE', /RestoreQueue was closed while it was waited for/);
  });

  it('completes 20 jobs on 2 workers, one killed with SIGKILL mid-batch: each once, each equal to a local restore', async function () {
    const name = 'twenty';
    const events = new QueueEvents(name, { connection: { url: redis.url } });
    closing.push(events);
    events.on('error', () => {});
    const completions = new Map<string, number>();
    events.on('completed', ({ jobId }) => completions.set(jobId, (completions.get(jobId) ?? 0) + 1));
    await events.waitUntilReady();
    const jobsQueue = queue(name);
    const doomed = await worker(name, 'doomed', ['--max-batch', '4', ...FAST_STALLS]);
    const survivor = await worker(name, 'survivor', ['--max-batch', '4', ...FAST_STALLS]);
    const requests = Array.from({ length: 20 }, (_, i) => ({ image: faces[i % faces.length] as Buffer, options: { seed: 1000 + i, startStep: 4 } }));
    const jobs: RestoreJob[] = [];
    for (const request of requests) jobs.push(await jobsQueue.add(request.image, request.options));

    // Killed while its first batch runs: those jobs are active, with nobody to finish them.
    const batch = batchOf(await doomed.line(/batch of \d+:/));
    await new Promise((resolve) => setTimeout(resolve, 300));
    doomed.child.kill('SIGKILL');
    await doomed.exited;
    const states = await Promise.all(batch.map((id) => jobsQueue.job(id).state()));
    assert.ok(states.includes('active'), `the killed worker's batch (${batch.join(', ')}) was running: ${states.join(', ')}`);
    assert.ok(!doomed.lines.some((l) => batch.some((id) => l.includes(`completed ${id}`))), 'the killed worker completed none of its batch');

    const results = await within(Promise.all(jobs.map((job) => job.result())), 180_000, 'the 20 results');
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (const job of jobs) assert.equal(completions.get(job.id), 1, `job ${job.id} completed ${completions.get(job.id) ?? 0} times`);
    const inspect = new Redis(redis.url);
    const stored = await inspect.keys(`bull:${name}:difface:result:*`).finally(() => inspect.disconnect());
    assert.equal(stored.length, 20, 'one result per job');
    for (const id of batch) {
      const index = jobs.findIndex((job) => job.id === id);
      assert.equal(results[index]?.info.worker, 'survivor', `job ${id} of the killed batch was finished by the other worker`);
    }
    assert.ok(survivor.lines.some((l) => /batch of/.test(l)));

    // Batches of up to 4 faces against one face at a time: the engine gives each request what
    // it gets alone up to the rounding of a batched UNet call, and over 4 steps that stays far
    // below half a level of 8 bits, yet a value lying at a rounding boundary may land on either
    // side: equal within 1 level, and nearly all equal.
    let differing = 0;
    let values = 0;
    for (let i = 0; i < requests.length; i++) {
      const result = results[i] as QueuedRestoration;
      const image = redisImage(result);
      assert.equal(createHash('sha256').update(image).digest('hex'), result.info.sha256);
      assert.equal(result.info.seed, BigInt(1000 + i));
      const request = requests[i] as (typeof requests)[number];
      const difference = await pixelDifference(image, await restoredLocally(request.image, request.options));
      assert.ok(difference.max <= 1, `job ${i}: largest difference ${difference.max} levels`);
      differing += difference.differing;
      values += difference.values;
    }
    assert.ok(differing <= values / 1000, `${differing} of ${values} values differ`);
  });

  it('on SIGTERM finishes the batch it holds, takes no new job, and exits', async function () {
    const name = 'drain';
    const draining = queue(name);
    const held = await worker(name, 'draining', ['--max-batch', '2']);
    const jobs: RestoreJob[] = [];
    for (let i = 0; i < 5; i++) jobs.push(await draining.add(faces[i % faces.length] as Buffer, { seed: i, startStep: 12 }));
    const batch = batchOf(await held.line(/batch of 2:/));
    held.child.kill('SIGTERM');
    assert.equal(await within(held.exited, 120_000, 'the draining worker'), 0);
    assert.ok(held.lines.some((l) => /SIGTERM: taking no new jobs/.test(l)));
    const states = new Map(await Promise.all(jobs.map(async (job) => [job.id, await job.state()] as const)));
    for (const id of batch) assert.equal(states.get(id), 'completed', `job ${id} of the batch held`);
    const others = jobs.filter((job) => !batch.includes(job.id));
    assert.deepEqual(others.map((job) => states.get(job.id)), ['waiting', 'waiting', 'waiting']);
    for (const job of others) assert.equal(await job.cancel(), true);
  });

  it('fails bad input once, with its code and without another try, and counts it in the metrics', async function () {
    const name = 'bad';
    const failing = queue(name, { attempts: 3 });
    const checker = await worker(name, 'checker', ['--metrics-port', '0']);
    const truncated = (faces[0] as Buffer).subarray(0, 200);
    const broken = await failing.add(truncated, { seed: 1 });
    await rejectsWith(within(broken.result(), 60_000, 'the broken image'), 'EIMAGE', /cannot be decoded/);
    const outOfRange = await failing.add(faces[1] as Buffer, { startStep: 999 });
    await rejectsWith(within(outOfRange.result(), 60_000, 'the start step'), 'EARG', /startStep must be an integer from 1 to \d+, got 999/);
    const good = await failing.add(faces[2] as Buffer, { seed: 2, startStep: 2 });
    await within(good.result(), 60_000, 'the good job');

    const bull = new Queue(name, { connection: { url: redis.url } });
    closing.push(bull);
    bull.on('error', () => {});
    for (const job of [broken, outOfRange]) {
      const record = await bull.getJob(job.id);
      assert.equal(record?.attemptsMade, 1, `job ${job.id} ran once`);
      assert.equal(await job.state(), 'failed');
    }
    assert.equal(checker.lines.filter((l) => l.includes(`failed ${broken.id}`)).length, 1);
    assert.ok(!checker.lines.some((l) => /tried again/.test(l)));

    const metricsUrl = /metrics at (http:\/\/\S+)/.exec(await checker.line(/metrics at/))?.[1] as string;
    const metrics = await (await fetch(metricsUrl)).text();
    assert.match(metrics, /^difface_job_failures_total\{code="EIMAGE",retried="false"\} 1$/m);
    assert.match(metrics, /^difface_job_failures_total\{code="EARG",retried="false"\} 1$/m);
    assert.match(metrics, /^difface_jobs_completed_total 1$/m);
    assert.match(metrics, /^difface_job_latency_seconds_count 1$/m);
    assert.match(metrics, /^difface_queue_jobs\{state="waiting"\} 0$/m);
    assert.match(metrics, /^difface_batch_faces_count 1$/m);
    const health = await (await fetch(metricsUrl.replace(/\/metrics$/, '/healthz'))).json() as { status: string; name: string };
    assert.deepEqual([health.status, health.name], ['ok', 'checker']);
  });

  it('reports progress per step, cancels a running job at its next step and a waiting one at once', async function () {
    const name = 'cancel';
    const cancelling = queue(name);
    const busy = await worker(name, 'busy', ['--max-batch', '1']);
    const long = await cancelling.add(faces[0] as Buffer, { seed: 5, startStep: 60 });
    const waiting = await cancelling.add(faces[1] as Buffer, { seed: 6, startStep: 2 });
    const steps: StepProgress[] = [];
    await within(new Promise<void>((resolve) => long.on('progress', (progress) => {
      steps.push(progress);
      if (steps.length === 3) resolve();
    })), 60_000, 'three steps of progress');
    assert.deepEqual(steps.map((s) => [s.step, s.total]), [[1, 60], [2, 60], [3, 60]]);
    assert.equal(await waiting.state(), 'waiting');
    assert.equal(await waiting.cancel(), true);
    await rejectsWith(waiting.result(), 'EABORT', /cancelled before it ran/);
    const cancelledAt = Date.now();
    assert.equal(await long.cancel(), true);
    const error = await rejectsWith(within(long.result(), 30_000, 'the cancelled job'), 'EABORT');
    assert.ok(error instanceof AbortError);
    assert.ok(steps.length < 60, `stopped after ${steps.length} of 60 steps`);
    assert.ok(Date.now() - cancelledAt < 20_000);
    // The client hears of the failure through Redis, maybe before the worker's line is read here.
    await busy.line(new RegExp(`failed ${long.id}: .*\\[EABORT\\]$`), 10_000);
    assert.equal(busy.lines.filter((l) => l.includes(`failed ${long.id}`)).length, 1);
    const after = await cancelling.add(faces[2] as Buffer, { seed: 7, startStep: 2 });
    await within(after.result(), 60_000, 'a job after the cancellation');
    assert.equal(await after.cancel(), false);
  });

  it('writes a result where the job says, once, and never over a file it did not write', async function () {
    const name = 'files';
    const writing = queue(name);
    await worker(name, 'writer');
    const folder = tempDir('queue-out');
    const file = path.join(folder, 'deep', 'face.png');
    const options = { seed: 11, startStep: 3, output: file };
    const job = await writing.add(faces[3] as Buffer, options);
    const result = await within(job.result(), 60_000, 'the job with an output file');
    assert.deepEqual([result.where, (result as { path: string }).path], ['file', file]);
    const bytes = fs.readFileSync(file);
    assert.equal(createHash('sha256').update(bytes).digest('hex'), result.info.sha256);
    assert.ok((await pixelDifference(bytes, await restoredLocally(faces[3] as Buffer, options))).max <= 1);
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ['face.png'], 'no temporary file is left');
    const again = await writing.add(faces[0] as Buffer, { seed: 12, startStep: 2, output: file });
    await rejectsWith(within(again.result(), 60_000, 'the second job to the same file'), 'EOUTPUT', /exists and was not written by job/);
    assert.deepEqual(fs.readFileSync(file), bytes);
  });

  it('goes on when Redis restarts under a running queue: workers and clients reconnect, no job is lost', async function () {
    const name = 'restart';
    const surviving = queue(name);
    const patient = await worker(name, 'patient', ['--max-batch', '2']);
    const requests = Array.from({ length: 6 }, (_, i) => ({ image: faces[i % faces.length] as Buffer, options: { seed: 300 + i, startStep: 6 } }));
    const jobs: RestoreJob[] = [];
    for (const request of requests) jobs.push(await surviving.add(request.image, request.options));
    await patient.line(/completed /);
    await redis.restart(1500);
    const later = await within(surviving.add(faces[0] as Buffer, { seed: 399, startStep: 2 }), 60_000, 'adding after the restart');
    const results = await within(Promise.all([...jobs, later].map((job) => job.result())), 180_000, 'the results across the restart');
    for (let i = 0; i < requests.length; i++) {
      const request = requests[i] as (typeof requests)[number];
      const difference = await pixelDifference(redisImage(results[i] as QueuedRestoration), await restoredLocally(request.image, request.options));
      assert.ok(difference.max <= 1, `job ${i}: largest difference ${difference.max} levels`);
    }
    assert.equal(patient.child.exitCode, null, 'the worker is still running');
  });
});
