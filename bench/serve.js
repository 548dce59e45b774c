#!/usr/bin/env node
// `npm run bench:serve`: batching measured two ways, on loopback, bounded in count and time.
//   1. In one process: 8 concurrent single-face restores against the same 8 one by one.
//   2. Over HTTP: `difface serve` with batching on (--max-batch 8) and off (--max-batch 1),
//      N requests at concurrency C; requests per second and latency percentiles.
// Prints a table and writes JSON under bench/results/. Demo models unless --models.
//
//   node bench/serve.js [--requests 48] [--concurrency 8] [--models DIR] [--out FILE]
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');

const root = path.resolve(__dirname, '..');
const { DifFace, Tensor, resolveModels, decodeImage } = require(root);

const { values: options } = parseArgs({
  options: {
    requests: { type: 'string', default: '48' },
    concurrency: { type: 'string', default: '8' },
    models: { type: 'string' },
    out: { type: 'string' },
    'time-limit': { type: 'string', default: '300' },
  },
});
const requests = Number(options.requests);
const concurrency = Number(options.concurrency);
const timeLimit = Number(options['time-limit']) * 1000;
const models = resolveModels(options.models).dir;
const sample = path.join(root, 'assets', 'sample-face.png');

function percentile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function inProcess() {
  const engine = await DifFace.load(models, { maxBatch: 8 });
  const side = engine.defaults.imageSize;
  const face = await decodeImage(sample);
  const tensor = await engine.resize(Tensor.fromFloat32(face.rgb, [1, 3, face.height, face.width]), [side, side]);
  const run = async (seed) => (await engine.restore(tensor, { seed })).dispose();
  await Promise.all([1, 2].map(run));  // warm-up
  let started = performance.now();
  for (let seed = 0; seed < 8; seed++) await run(seed);
  const apart = (performance.now() - started) / 1000;
  started = performance.now();
  await Promise.all(Array.from({ length: 8 }, (_, seed) => run(seed)));
  const together = (performance.now() - started) / 1000;
  tensor.dispose();
  engine.dispose();
  return { apart, together, ratio: together / apart };
}

function startServer(maxBatch) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(root, 'dist', 'cli.js'), 'serve', '--port', '0', '--models', models,
      '--max-batch', String(maxBatch), '--max-queue', String(4 * requests)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr.on('data', (chunk) => {
      log += chunk;
      const found = /serving (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
      if (found) resolve({ child, url: found[1] });
    });
    child.on('exit', (code) => reject(new Error(`the server exited (${code}):\n${log}`)));
  });
}

async function load(maxBatch) {
  const { child, url } = await startServer(maxBatch);
  const body = fs.readFileSync(sample);
  const post = () => fetch(`${url}/v1/restore`, { method: 'POST', body, headers: { 'content-type': 'image/png' } })
    .then(async (response) => { await response.arrayBuffer(); if (response.status !== 200) throw new Error(`status ${response.status}`); });
  await Promise.all(Array.from({ length: concurrency }, post));  // warm-up
  const latencies = [];
  let next = 0;
  const deadline = Date.now() + timeLimit;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < requests && Date.now() < deadline) {
      next++;
      const begun = performance.now();
      await post();
      latencies.push((performance.now() - begun) / 1000);
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  const metrics = await (await fetch(`${url}/metrics`)).text();
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
  const sorted = latencies.sort((a, b) => a - b);
  const batches = /^difface_batch_faces_count (\d+)$/m.exec(metrics)?.[1];
  const faces = /^difface_batch_faces_sum (\d+)$/m.exec(metrics)?.[1];
  return {
    maxBatch, requests: latencies.length, concurrency, seconds, requestsPerSecond: latencies.length / seconds,
    latency: { p50: percentile(sorted, 0.5), p90: percentile(sorted, 0.9), p99: percentile(sorted, 0.99) },
    meanBatch: Number(faces) / Number(batches),
  };
}

async function main() {
  const concurrent = await inProcess();
  const batched = await load(8);
  const unbatched = await load(1);
  const report = {
    date: new Date().toISOString(), cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.availableParallelism(), models,
    inProcess: concurrent, http: { batched, unbatched, throughputRatio: batched.requestsPerSecond / unbatched.requestsPerSecond },
  };
  console.log(`8 single-face restores: one by one ${concurrent.apart.toFixed(2)} s, together ${concurrent.together.toFixed(2)} s ` +
    `(together/apart ${concurrent.ratio.toFixed(2)})`);
  console.log('\nHTTP         req/s    p50 s   p90 s   p99 s   mean batch');
  for (const run of [batched, unbatched]) {
    console.log(`max-batch ${String(run.maxBatch).padEnd(2)} ${run.requestsPerSecond.toFixed(2).padStart(7)} ${run.latency.p50.toFixed(2).padStart(7)} ` +
      `${run.latency.p90.toFixed(2).padStart(7)} ${run.latency.p99.toFixed(2).padStart(7)} ${run.meanBatch.toFixed(1).padStart(10)}`);
  }
  const file = options.out ?? path.join(root, 'bench', 'results', `serve-cpu-${report.date.slice(0, 10)}.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  console.log(`\nwrote ${path.relative(process.cwd(), file)}`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
