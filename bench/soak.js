#!/usr/bin/env node
// Memory soak: 1,000 small restores on one engine, concurrent and with cancellations mixed
// in (aborted while waiting, and mid-loop), with the demo models. Process memory (RSS) after
// a warm-up must stay within 10% to the end, and no tensor may be left alive.
//
//   node bench/soak.js [--restores 1000] [--concurrency 8] [--limit 0.10]
'use strict';

const path = require('node:path');
const { parseArgs } = require('node:util');

const root = path.resolve(__dirname, '..');
const { AbortError, DifFace, Tensor, demoModelsDir } = require(root);

const { values } = parseArgs({
  options: {
    restores: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '8' },
    limit: { type: 'string', default: '0.10' },
    trace: { type: 'boolean', default: false },
  },
});
const total = Number(values.restores);
const concurrency = Number(values.concurrency);
const limit = Number(values.limit);
const side = 64;

function megabytes(bytes) {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

async function main() {
  const engine = await DifFace.load(demoModelsDir(), { maxBatch: concurrency, maxQueue: 4 * concurrency });
  const face = new Float32Array(3 * side * side).map((_, i) => (Math.sin(i / 97) + 1) / 2);
  const counts = { restored: 0, abortedWaiting: 0, abortedRunning: 0 };
  let next = 0;
  let baseline = 0;
  const warmup = Math.min(100, Math.floor(total / 10));

  async function one(index) {
    const controller = new AbortController();
    const kind = index % 10;  // 8 of 10 run through, 1 is aborted at once, 1 mid-loop
    const input = Tensor.fromFloat32(face, [1, 3, side, side]);
    try {
      const promise = engine.restore(input, {
        seed: index, startStep: 6, signal: controller.signal,
        onStep: kind === 9 ? ({ step }) => { if (step === 3) controller.abort(); } : undefined,
      });
      if (kind === 8) controller.abort();
      (await promise).dispose();
      counts.restored++;
    } catch (error) {
      if (!(error instanceof AbortError)) throw error;
      if (kind === 8) counts.abortedWaiting++;
      else counts.abortedRunning++;
    } finally {
      input.dispose();
    }
  }

  async function worker() {
    while (next < total) {
      const index = next++;
      await one(index);
      if (index === warmup) {
        globalThis.gc?.();
        baseline = process.memoryUsage().rss;
      }
      if (values.trace && index % 250 === 0) {
        const memory = process.memoryUsage();
        console.log(`${index}: rss ${megabytes(memory.rss)}, heap ${megabytes(memory.heapUsed)}, external ${megabytes(memory.external)}`);
      }
    }
  }

  const started = Date.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  globalThis.gc?.();
  const final = process.memoryUsage().rss;
  const growth = (final - baseline) / baseline;
  const stats = engine.stats();
  engine.dispose();
  const left = Tensor.stats();
  console.log(`${total} restores in ${((Date.now() - started) / 1000).toFixed(1)} s: ${counts.restored} restored, ` +
    `${counts.abortedWaiting} aborted before start, ${counts.abortedRunning} aborted mid-loop; ` +
    `batches of ${JSON.stringify(stats.batchSizes)}`);
  console.log(`RSS after ${warmup} restores ${megabytes(baseline)}, at the end ${megabytes(final)}: ` +
    `${(100 * growth).toFixed(1)}% (limit ${(100 * limit).toFixed(0)}%); live tensors left: ${left.count}`);
  if (growth > limit || left.count !== 0) process.exitCode = 1;
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
