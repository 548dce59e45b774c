#!/usr/bin/env node
// `npm run bench`: the engine against eager PyTorch (the published sampler's way) on the
// same weights, device and threads. Prints a table and writes JSON under bench/results/.
//
//   node bench/run.js [--threads N] [--runs R] [--skip-published] [--device cpu|cuda]
//                     [--dtypes float32,float16,bfloat16] [--out FILE]
//
// On the CPU: a full restore of the small reference configuration (batch 2, 100 steps,
// eta 0.5, best of R), and one UNet and one backbone call of the published-size networks
// (random weights) at 512 x 512. On CUDA: per-face latency at batch 1 and throughput at
// batch 8 of the published-size networks, per dtype.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');

const root = path.resolve(__dirname, '..');
const { DifFace, Tensor, convertCheckpoints, versions } = require(root);

const { values: options } = parseArgs({
  options: {
    threads: { type: 'string' },
    runs: { type: 'string', default: '3' },
    'skip-published': { type: 'boolean', default: false },
    device: { type: 'string', default: 'cpu' },
    dtypes: { type: 'string', default: 'float32,float16,bfloat16' },
    out: { type: 'string' },
    work: { type: 'string', default: path.join(root, 'bench', 'out') },
    reference: { type: 'string', default: path.resolve(root, '..', 'shared', 'reference', 'small') },
  },
});
const threads = Number(options.threads ?? os.availableParallelism());
const runs = Number(options.runs);
const work = options.work;
const python = [process.env.DIFFACE_PYTHON, 'python3', '/usr/bin/python3']
  .filter(Boolean).find((p) => spawnSync(p, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0);
if (python === undefined) throw new Error('bench: no python with torch (run `npm run setup`)');

function runPython(args) {
  const result = spawnSync(python, args, { encoding: 'utf8', maxBuffer: 1 << 26, cwd: root });
  if (result.status !== 0) throw new Error(`bench: ${args[0]} failed:\n${result.stderr}`);
  return result.stdout;
}

function eager(args) {
  const out = runPython([path.join(root, 'bench', 'eager.py'), ...args, '--threads', String(threads)]);
  return JSON.parse(out.trim().split('\n').pop());
}

function readNpy(file) {
  const bytes = fs.readFileSync(file);
  const headerLength = bytes.readUInt16LE(8);
  const header = bytes.toString('latin1', 10, 10 + headerLength);
  const shape = (/'shape':\s*\(([^)]*)\)/.exec(header)[1]).split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const body = bytes.subarray(10 + headerLength);
  return { shape, data: new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.length)) };
}

function maxAbsDiff(a, b) {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

async function best(count, run) {
  const times = [];
  let last;
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    last = await run();
    times.push((performance.now() - started) / 1000);
  }
  return { times, best: Math.min(...times), last };
}

// Converted afresh each run, so the export always comes from the current models/.
async function converted(name, unet, backbone, config) {
  const dir = path.join(work, name, 'models');
  await convertCheckpoints({ unet, backbone, out: dir, ...(config ? { config } : {}) });
  return dir;
}

async function smallRestore() {
  const ref = options.reference;
  const reference = JSON.parse(fs.readFileSync(path.join(ref, 'reference.json'), 'utf8'));
  const seed = reference.sampling.seed_eta;
  const models = await converted('small', path.join(ref, 'unet.pth'), path.join(ref, 'backbone.pth'), path.join(ref, 'reference.json'));
  const eagerRun = eager(['restore', path.join(ref, 'reference.json'), path.join(ref, 'unet.pth'), path.join(ref, 'backbone.pth'),
    path.join(ref, 'lq.npy'), '--seed', String(seed), '--eta', '0.5', '--start', '100', '--runs', String(runs),
    '--expect', path.join(ref, 'restored_eta.npy')]);
  const engine = await DifFace.load(models, { threads });
  const lq = readNpy(path.join(ref, 'lq.npy'));
  const input = Tensor.fromFloat32(lq.data, lq.shape);
  const expected = readNpy(path.join(ref, 'restored_eta.npy')).data;
  let maxDiff = 0;
  const engineRun = await best(runs, async () => {
    const restored = await engine.restore(input, { seed, eta: 0.5, startStep: 100 });
    maxDiff = maxAbsDiff(await restored.toFloat32(), expected);
    restored.dispose();
  });
  input.dispose();
  engine.dispose();
  return {
    case: 'small reference restore (batch 2, 100 steps, eta 0.5)',
    eager: { seconds: eagerRun.best, times: eagerRun.times, maxDiffToReference: eagerRun.maxDiff },
    engine: { seconds: engineRun.best, times: engineRun.times, maxDiffToReference: maxDiff },
    ratio: engineRun.best / eagerRun.best,
  };
}

function publishedCheckpoints() {
  const dir = path.join(work, 'published');
  if (!fs.existsSync(path.join(dir, 'config.json'))) {
    runPython([path.join(root, 'models', 'random_checkpoint.py'), '--published', '--out', dir, '--seed', '1']);
  }
  return dir;
}

async function publishedCalls() {
  const dir = publishedCheckpoints();
  const models = await converted('published', path.join(dir, 'unet.pth'), path.join(dir, 'backbone.pth'), path.join(dir, 'config.json'));
  const outputs = path.join(dir, 'eager-out');
  const eagerRun = eager(['calls', path.join(dir, 'config.json'), path.join(dir, 'unet.pth'), path.join(dir, 'backbone.pth'),
    '--side', '512', '--runs', String(Math.min(runs, 2)), '--warmup', '2', '--out', outputs]);
  const engine = await DifFace.load(models, { threads });
  const x = readNpy(path.join(outputs, 'x.npy'));
  const lq = readNpy(path.join(outputs, 'lq.npy'));
  const t = Array.from(readNpy(path.join(outputs, 't.npy')).data);
  const xs = Tensor.fromFloat32(x.data, x.shape);
  const lqs = Tensor.fromFloat32(lq.data, lq.shape);
  let unetDiff = 0;
  let backboneDiff = 0;
  // Warm-up as on the eager side: TorchScript profiles its first two calls.
  for (let i = 0; i < 2; i++) {
    (await engine.unet(xs, t)).dispose();
    (await engine.estimate(lqs)).dispose();
  }
  const unetRun = await best(Math.min(runs, 2), async () => {
    const out = await engine.unet(xs, t);
    unetDiff = maxAbsDiff(await out.toFloat32(), readNpy(path.join(outputs, 'unet_out.npy')).data);
    out.dispose();
  });
  const backboneRun = await best(Math.min(runs, 2), async () => {
    const out = await engine.estimate(lqs);
    backboneDiff = maxAbsDiff(await out.toFloat32(), readNpy(path.join(outputs, 'backbone_out.npy')).data);
    out.dispose();
  });
  engine.dispose();
  return [
    { case: 'published-size UNet call, 512 x 512, batch 1', eager: { seconds: eagerRun.unet.best, times: eagerRun.unet.times },
      engine: { seconds: unetRun.best, times: unetRun.times, maxDiffToEager: unetDiff }, ratio: unetRun.best / eagerRun.unet.best },
    { case: 'published-size backbone call, 512 x 512, batch 1', eager: { seconds: eagerRun.backbone.best, times: eagerRun.backbone.times },
      engine: { seconds: backboneRun.best, times: backboneRun.times, maxDiffToEager: backboneDiff }, ratio: backboneRun.best / eagerRun.backbone.best },
  ];
}

function printTable(cases) {
  const rows = [['case', 'eager s', 'engine s', 'engine/eager']];
  for (const c of cases) rows.push([c.case, c.eager.seconds.toFixed(3), c.engine.seconds.toFixed(3), c.ratio.toFixed(3)]);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const row of rows) console.log(row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  '));
}

async function main() {
  fs.mkdirSync(work, { recursive: true });
  const info = versions();
  const cases = [];
  cases.push(await smallRestore());
  if (!options['skip-published']) cases.push(...await publishedCalls());
  const report = {
    date: new Date().toISOString(),
    device: 'cpu',
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    threads,
    runs,
    torch: info.torch,
    node: process.versions.node,
    difface: info.difface,
    cases,
  };
  printTable(cases);
  const file = options.out ?? path.join(root, 'bench', 'results', `cpu-${report.date.slice(0, 10)}.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  console.log(`\nwrote ${path.relative(process.cwd(), file)}`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
