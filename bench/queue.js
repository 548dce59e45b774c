#!/usr/bin/env node
// `npm run bench:queue`: throughput of the Redis job queue on loopback, with 1 and then 2
// `difface worker` processes of one CPU thread each. A redis-server of its own runs on a free
// loopback port in a temporary folder and is stopped after. Each run adds the same jobs (the
// sample face at the model's size, one seed each) after one warm-up job per worker, and times
// them from the first add to the last result, beside the same restores run in one process by
// one engine of one thread. Bounded in count and time. Prints a table and
// writes JSON under bench/results/. Demo models unless --models.
//
//   node bench/queue.js [--jobs 16] [--start-step 4] [--max-batch 4] [--workers 1,2]
//                       [--models DIR] [--time-limit 600] [--out FILE]
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');

const root = path.resolve(__dirname, '..');
const { RestoreQueue, DifFace, resolveModels } = require(root);
// The tests' loopback redis-server (free port, temporary folder, no persistence), as
// `npm run bench:queue` builds it (scripts/setup.js).
const { startRedis } = require(path.join(root, 'build', 'test', 'helpers', 'redis.js'));

const { values: options } = parseArgs({
  options: {
    jobs: { type: 'string', default: '16' },
    'start-step': { type: 'string', default: '4' },
    'max-batch': { type: 'string', default: '4' },
    workers: { type: 'string', default: '1,2' },
    models: { type: 'string' },
    out: { type: 'string' },
    'time-limit': { type: 'string', default: '600' },
  },
});
const jobCount = Number(options.jobs);
const startStep = Number(options['start-step']);
const maxBatch = Number(options['max-batch']);
const workerCounts = options.workers.split(',').map(Number);
const deadline = Date.now() + Number(options['time-limit']) * 1000;
const models = resolveModels(options.models).dir;
const sample = path.join(root, 'assets', 'sample-face.png');

function percentile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Rejects once the bench's time is up, so that nothing here waits for ever. */
function bounded(promise, what) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: the time limit (--time-limit) was reached`)), Math.max(0, deadline - Date.now()));
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

/** Waits for a line of a child's stderr (or stdout) that matches; rejects if it exits first. */
function lineOf(child, pattern, what) {
  return bounded(new Promise((resolve, reject) => {
    let log = '';
    const read = (chunk) => {
      log += chunk;
      if (pattern.test(log)) resolve();
    };
    child.stdout?.on('data', read);
    child.stderr?.on('data', read);
    child.once('exit', (code) => reject(new Error(`${what} exited (${code}):\n${log}`)));
  }), what);
}

async function startWorker(url, queue, name) {
  const child = spawn(process.execPath, [path.join(root, 'dist', 'cli.js'), 'worker', '--redis', url, '--queue', queue,
    '--name', name, '--models', models, '--threads', '1', '--max-batch', String(maxBatch)], { stdio: ['ignore', 'ignore', 'pipe'] });
  await lineOf(child, /takes jobs from queue/, `worker ${name}`);
  return child;
}

async function stopWorker(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
}

async function run(url, face, workers) {
  const name = `bench-${workers}`;
  const children = [];
  const queue = new RestoreQueue({ connection: url, name });
  try {
    for (let i = 0; i < workers; i++) children.push(await startWorker(url, name, `w${i + 1}`));
    const warmUps = await Promise.all(children.map((_, i) => queue.add(face, { seed: 10_000 + i, startStep })));
    await bounded(Promise.all(warmUps.map((job) => job.result())), 'the warm-up jobs');
    const latencies = [];
    const started = performance.now();
    const jobs = [];
    for (let i = 0; i < jobCount; i++) {
      const added = performance.now();
      const job = await queue.add(face, { seed: i, startStep });
      jobs.push(job.result().then(() => latencies.push((performance.now() - added) / 1000)));
    }
    await bounded(Promise.all(jobs), `${jobCount} jobs on ${workers} worker(s)`);
    const seconds = (performance.now() - started) / 1000;
    const sorted = latencies.sort((a, b) => a - b);
    return {
      workers, jobs: jobCount, seconds, jobsPerSecond: jobCount / seconds,
      // Other work on the machine takes cores from the workers: the 1-minute load as the run ended.
      loadAverage: os.loadavg()[0],
      latency: { p50: percentile(sorted, 0.5), p90: percentile(sorted, 0.9), max: sorted[sorted.length - 1] },
    };
  } finally {
    await queue.close();
    await Promise.all(children.map(stopWorker));
  }
}

/** The same restores in this process, one engine of one thread, all at once: what the queue adds to. */
async function local(face) {
  const engine = await DifFace.load(models, { threads: 1, maxBatch });
  try {
    await engine.restoreImage(face, { seed: 10_000, startStep });  // warm-up
    const started = performance.now();
    await bounded(Promise.all(Array.from({ length: jobCount }, (_, i) => engine.restoreImage(face, { seed: i, startStep }))), 'the local restores');
    const seconds = (performance.now() - started) / 1000;
    return { jobs: jobCount, seconds, jobsPerSecond: jobCount / seconds, loadAverage: os.loadavg()[0] };
  } finally {
    engine.dispose();
  }
}

async function main() {
  const engine = await DifFace.load(models, { threads: 1 });
  const side = engine.defaults.imageSize;
  engine.dispose();
  const face = await require('sharp')(sample).resize(side, side).png().toBuffer();
  const inProcess = await local(face);
  const redis = await bounded(startRedis(), 'redis-server');
  const runs = [];
  try {
    for (const workers of workerCounts) runs.push(await run(redis.url, face, workers));
  } finally {
    await redis.stop();
  }
  const report = {
    date: new Date().toISOString(), cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.availableParallelism(), models,
    face: `${side}x${side}`, startStep, maxBatch, threadsPerWorker: 1, inProcess, runs,
    speedup: runs.length > 1 ? runs[runs.length - 1].jobsPerSecond / runs[0].jobsPerSecond : undefined,
  };
  console.log(`${jobCount} jobs, ${side}x${side} faces, start step ${startStep}, max batch ${maxBatch}, 1 thread per worker`);
  console.log(`in one process, one engine of 1 thread: ${inProcess.jobsPerSecond.toFixed(3)} jobs/s ` +
    `(${inProcess.seconds.toFixed(1)} s, load ${inProcess.loadAverage.toFixed(1)})`);
  console.log('\nworkers   jobs/s   seconds   p50 s   p90 s   max s   load');
  for (const r of runs) {
    console.log(`${String(r.workers).padStart(7)} ${r.jobsPerSecond.toFixed(3).padStart(8)} ${r.seconds.toFixed(1).padStart(9)} ` +
      `${r.latency.p50.toFixed(1).padStart(7)} ${r.latency.p90.toFixed(1).padStart(7)} ${r.latency.max.toFixed(1).padStart(7)} ` +
      `${r.loadAverage.toFixed(1).padStart(6)}`);
  }
  const file = options.out ?? path.join(root, 'bench', 'results', `queue-cpu-${report.date.slice(0, 10)}.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  console.log(`\nwrote ${path.relative(process.cwd(), file)}`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
