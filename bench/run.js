#!/usr/bin/env node
// `npm run bench`: the engine against eager PyTorch (the published sampler's way) on the
// same weights, device and threads. Prints a table and writes JSON under bench/results/.
//
//   node bench/run.js [--threads N] [--runs R] [--skip-published] [--skip-compiled]
//                     [--device cpu|cuda] [--dtypes float32,float16,bfloat16] [--out FILE]
//
// On the CPU: a full restore of the small reference configuration (batch 2, 100 steps,
// eta 0.5, best of R), and one UNet and one backbone call of the published-size networks
// (random weights) at 512 x 512. On CUDA: per-face latency at batch 1 and throughput at
// batch 8 of the published-size networks, per dtype. Each case also runs the engine with the
// UNet compiled ahead of time (`difface compile`, AOTInductor; compiled once into the work
// folder's model cache, the compile time recorded) unless --skip-compiled.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');

const root = path.resolve(__dirname, '..');
const { DifFace, Tensor, compileUNet, convertCheckpoints, versions } = require(root);
// The tests' checked .npy reader and difference, as `npm run bench` builds them (scripts/setup.js).
const { maxAbsDiff, readNpy } = require(path.join(root, 'build', 'test', 'helpers', 'npy.js'));

const { values: options } = parseArgs({
  options: {
    threads: { type: 'string' },
    runs: { type: 'string', default: '3' },
    'skip-published': { type: 'boolean', default: false },
    'skip-compiled': { type: 'boolean', default: false },
    // Use only packages already compiled into the cache: a missing one skips its case.
    'cached-only': { type: 'boolean', default: false },
    device: { type: 'string', default: 'cpu' },
    suite: { type: 'string' },
    steps: { type: 'string', default: '100' },
    batches: { type: 'string', default: '1,8' },
    'engine-only': { type: 'boolean', default: false },
    dtypes: { type: 'string', default: 'float32,float16,bfloat16' },
    out: { type: 'string' },
    work: { type: 'string', default: path.join(root, 'bench', 'out') },
    reference: { type: 'string', default: path.join(root, 'test', 'fixtures', 'reference', 'small') },
  },
});
const threads = Number(options.threads ?? os.availableParallelism());
// 'cpu': the CPU comparisons; 'gpu': latency and throughput per dtype (on CUDA, or on the
// CPU with --dtypes float32 and few --steps, to prove the GPU script end to end).
const suite = options.suite ?? (options.device === 'cpu' ? 'cpu' : 'gpu');
const steps = Number(options.steps);
const runs = Number(options.runs);
const work = options.work;
// The eager baseline is the project's torch (.venv, made by scripts/setup.js) unless
// DIFFACE_PYTHON names another: the package's own search (lib/python.ts).
const python = require(path.join(root, 'dist', 'python.js')).findPython().executable;

function runPython(args) {
  const result = spawnSync(python, args, { encoding: 'utf8', maxBuffer: 1 << 26, cwd: root });
  if (result.status !== 0) throw new Error(`bench: ${args[0]} failed:\n${result.stderr}`);
  return result.stdout;
}

function eager(args) {
  const out = runPython([path.join(root, 'bench', 'eager.py'), ...args, '--threads', String(threads)]);
  return JSON.parse(out.trim().split('\n').pop());
}

async function best(count, run) {
  const times = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await run();
    times.push((performance.now() - started) / 1000);
  }
  return { times, best: Math.min(...times) };
}

// Converted again whenever models/ changed since, so the export always comes from the
// current networks.
async function converted(name, unet, backbone, config) {
  const dir = path.join(work, name, 'models');
  const card = path.join(dir, 'difface.json');
  const sources = fs.readdirSync(path.join(root, 'models')).filter((f) => f.endsWith('.py'))
    .map((f) => fs.statSync(path.join(root, 'models', f)).mtimeMs);
  if (!fs.existsSync(card) || fs.statSync(card).mtimeMs < Math.max(...sources, fs.statSync(unet).mtimeMs)) {
    await convertCheckpoints({ unet, backbone, out: dir, ...(config ? { config } : {}) });
  }
  return dir;
}

// ---- Compiled UNets ----------------------------------------------------------------------

const withCompiled = !options['skip-compiled'] && versions().compiledPackages;
const compileTimes = [];

/**
 * An engine that runs compiled packages for these batch sizes, compiling what the cache lacks
 * first (and recording how long that took). Throws when a package still does not load.
 */
async function compiledEngine(models, loadOptions, batches, size) {
  let engine = await DifFace.load(models, { ...loadOptions, compiled: 'on' });
  const missing = batches.filter((b) => !engine.compiled().batches.includes(b));
  if (missing.length > 0 && options['cached-only']) {
    console.log(`  no compiled package for batch ${missing.join(', ')} in the cache: ${engine.compiled().notes.join('; ') || 'none made'}`);
    engine.dispose();
    return null;
  }
  if (missing.length > 0) {
    engine.dispose();
    console.log(`  compiling the UNet for batch ${missing.join(', ')} on ${loadOptions.device ?? 'cpu'} (${loadOptions.dtype ?? 'float32'})...`);
    const result = await compileUNet(models, { device: loadOptions.device ?? 'cpu', dtype: loadOptions.dtype ?? 'float32',
      batches: missing, size, ...(loadOptions.threads ? { threads: loadOptions.threads } : {}) });
    for (const p of result.packages) {
      compileTimes.push({ package: p.file, seconds: p.compileSeconds, maxDifferenceFromEager: p.maxDifferenceFromEager });
      console.log(`  compiled ${p.file} in ${p.compileSeconds.toFixed(1)} s`);
    }
    engine = await DifFace.load(models, { ...loadOptions, compiled: 'on' });
  }
  const state = engine.compiled();
  if (!batches.every((b) => state.batches.includes(b))) {
    engine.dispose();
    throw new Error(`bench: compiled packages did not load: ${state.notes.join('; ')}`);
  }
  return engine;
}

/**
 * The best of `count` runs of `call` on an engine with the compiled UNet for [batch, height,
 * width], after `warmup` untimed ones; null when compiled packages are not benchmarked.
 */
async function compiledTiming(models, [batch, height, width], call, count, expected, eagerSeconds, engineSeconds, warmup = 0) {
  if (!withCompiled) return null;
  const engine = await compiledEngine(models, { threads }, [batch], [height, width]);
  if (engine === null) return null;
  for (let i = 0; i < warmup; i++) (await call(engine)).dispose();
  let out;
  const run = await best(count, async () => {
    out?.dispose();
    out = await call(engine);
  });
  const maxDiffToEager = maxAbsDiff(await out.toFloat32(), expected);
  out.dispose();
  engine.dispose();
  return { seconds: run.best, times: run.times, maxDiffToEager, ratioToEager: run.best / eagerSeconds, ratioToEngine: run.best / engineSeconds };
}

async function smallRestore() {
  const ref = options.reference;
  const reference = JSON.parse(fs.readFileSync(path.join(ref, 'reference.json'), 'utf8'));
  const seed = reference.sampling.seed_eta;
  const models = await converted('small', path.join(ref, 'unet.pth'), path.join(ref, 'backbone.pth'), path.join(ref, 'reference.json'));
  const eagerOut = path.join(work, 'small', 'eager');
  const eagerRun = eager(['restore', path.join(ref, 'reference.json'), path.join(ref, 'unet.pth'), path.join(ref, 'backbone.pth'),
    path.join(ref, 'lq.npy'), '--seed', String(seed), '--eta', '0.5', '--start', '100', '--runs', String(runs),
    '--expect', path.join(ref, 'restored_eta.npy'), '--out', eagerOut]);
  const engine = await DifFace.load(models, { threads });
  const lq = readNpy(path.join(ref, 'lq.npy'));
  const input = Tensor.fromFloat32(lq.data, lq.shape);
  // Timed as the eager side is: the restore alone; its result is compared after the clock stops.
  let restored;
  const engineRun = await best(runs, async () => {
    restored?.dispose();
    restored = await engine.restore(input, { seed, eta: 0.5, startStep: 100 });
  });
  const values = await restored.toFloat32();
  // The eager run on this machine is the yardstick; the stored published result was made on
  // another processor, where a chain on random weights lands elsewhere (test/fixtures/README.md).
  const maxDiff = maxAbsDiff(values, readNpy(path.join(eagerOut, `restored_${lq.shape[0]}.npy`)).data);
  const maxDiffToReference = maxAbsDiff(values, readNpy(path.join(ref, 'restored_eta.npy')).data);
  restored.dispose();
  engine.dispose();
  // A chain of 100 steps amplifies the compiled kernels' rounding: its difference is a measure, not a check.
  const compiledRun = await compiledTiming(models, [lq.shape[0], lq.shape[2], lq.shape[3]], (engine) => engine.restore(input, { seed, eta: 0.5, startStep: 100 }),
    runs, readNpy(path.join(eagerOut, `restored_${lq.shape[0]}.npy`)).data, eagerRun.best, engineRun.best);
  input.dispose();
  return {
    case: 'small reference restore (batch 2, 100 steps, eta 0.5)',
    eager: { seconds: eagerRun.best, times: eagerRun.times, torch: eagerRun.torch, maxDiffToReference: eagerRun.maxDiff },
    engine: { seconds: engineRun.best, times: engineRun.times, maxDiffToEager: maxDiff, maxDiffToReference },
    compiled: compiledRun,
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
  // Warm-up as on the eager side: TorchScript profiles its first two calls.
  for (let i = 0; i < 2; i++) {
    (await engine.unet(xs, t)).dispose();
    (await engine.estimate(lqs)).dispose();
  }
  // Only the calls are timed, as on the eager side; the last outputs are compared afterwards.
  let out;
  const unetRun = await best(Math.min(runs, 2), async () => {
    out?.dispose();
    out = await engine.unet(xs, t);
  });
  const unetDiff = maxAbsDiff(await out.toFloat32(), readNpy(path.join(outputs, 'unet_out.npy')).data);
  out.dispose();
  out = undefined;
  const backboneRun = await best(Math.min(runs, 2), async () => {
    out?.dispose();
    out = await engine.estimate(lqs);
  });
  const backboneDiff = maxAbsDiff(await out.toFloat32(), readNpy(path.join(outputs, 'backbone_out.npy')).data);
  out.dispose();
  out = undefined;
  engine.dispose();
  const compiledRun = await compiledTiming(models, [x.shape[0], x.shape[2], x.shape[3]], (engine) => engine.unet(xs, t),
    Math.min(runs, 2), readNpy(path.join(outputs, 'unet_out.npy')).data, eagerRun.unet.best, unetRun.best, 2);
  xs.dispose();
  lqs.dispose();
  return [
    { case: 'published-size UNet call, 512 x 512, batch 1', eager: { seconds: eagerRun.unet.best, times: eagerRun.unet.times },
      engine: { seconds: unetRun.best, times: unetRun.times, maxDiffToEager: unetDiff }, compiled: compiledRun,
      ratio: unetRun.best / eagerRun.unet.best },
    { case: 'published-size backbone call, 512 x 512, batch 1', eager: { seconds: eagerRun.backbone.best, times: eagerRun.backbone.times },
      engine: { seconds: backboneRun.best, times: backboneRun.times, maxDiffToEager: backboneDiff }, ratio: backboneRun.best / eagerRun.backbone.best },
  ];
}

// ---- CUDA: latency at batch 1 and throughput at batch 8, per dtype --------------------

function gpuPeakBf16() {
  // Dense bf16 tensor-core peaks by device name (NVIDIA's data sheets, without sparsity).
  const name = gpuName ?? '';
  if (/H200/.test(name) || /H100.*(SXM|HBM3)/.test(name)) return 989.4e12;
  if (/H100/.test(name)) return 756e12;
  if (/A100/.test(name)) return 312e12;
  return null;
}

let gpuName;

async function engineRestoreTiming(models, lqFile, dtype, batch, timedRuns, label, compiled = false) {
  const engine = compiled ? await compiledEngine(models, { device: options.device, dtype }, [batch], [512, 512])
    : await DifFace.load(models, { device: options.device, dtype, compiled: 'off' });
  if (engine === null) return null;
  const lq = readNpy(lqFile);
  const one = lq.data.subarray(0, lq.data.length / lq.shape[0]);
  const data = new Float32Array(one.length * batch);
  for (let i = 0; i < batch; i++) data.set(one, i * one.length);
  const input = Tensor.fromFloat32(data, [batch, ...lq.shape.slice(1)]);
  // Warm-up: TorchScript profiles, cuDNN times its algorithms, the UNet graph is captured.
  (await engine.restore(input, { seed: 1, startStep: 6 })).dispose();
  engine.resetPeakMemory();
  const run = await best(timedRuns, async () => (await engine.restore(input, { seed: 1, startStep: steps })).dispose());
  const peak = engine.memory().peakBytes;
  const graphs = engine.cudaGraphs();
  const compiledState = engine.compiled();
  input.dispose();
  engine.dispose();
  console.log(`  engine ${label}: ${run.times.map((t) => t.toFixed(3)).join(', ')} s`);
  return { seconds: run.best, times: run.times, peakBytes: peak, cudaGraphs: graphs, compiledBatches: compiledState.batches };
}

// One eager process per dtype, for every batch size: loading the networks takes a while.
function eagerRestoreTimings(dir, lqFile, dtype, batches) {
  const report = eager(['restore', path.join(dir, 'config.json'), path.join(dir, 'unet.pth'), path.join(dir, 'backbone.pth'),
    lqFile, '--device', options.device, '--dtype', dtype, '--batches', batches.join(','), '--runs', String(runs),
    '--big-runs', '1', '--warmup', '6', '--start', String(steps), '--seed', '1']);
  gpuName = report.gpu ?? gpuName;
  const timings = {};
  for (const [batch, run] of Object.entries(report.byBatch)) {
    console.log(`  eager  ${dtype}, batch ${batch}: ${run.times.map((t) => t.toFixed(3)).join(', ')} s`);
    timings[batch] = { seconds: run.best, times: run.times, peakBytes: run.peakBytes, cudnnTf32: report.cudnnTf32 };
  }
  return timings;
}

async function gpuCases(done) {
  const dir = publishedCheckpoints();
  const models = await converted('published', path.join(dir, 'unet.pth'), path.join(dir, 'backbone.pth'), path.join(dir, 'config.json'));
  const lqFile = path.join(work, 'published', 'lq512.npy');
  if (!fs.existsSync(lqFile)) {
    runPython(['-c', `import numpy as np; np.save(${JSON.stringify(lqFile)}, np.random.default_rng(3).random((1, 3, 512, 512), dtype=np.float32))`]);
  }
  const flops = eager(['flops', path.join(dir, 'config.json'), '-', '-', '--side', '512', '--device', options.device]);
  gpuName = flops.gpu ?? gpuName;
  const perFace = flops.unetFlops === null ? null : steps * flops.unetFlops + flops.backboneFlops;
  const peak = gpuPeakBf16();
  const cases = [];
  const batches = options.batches.split(',').map(Number);
  for (const dtype of options.dtypes.split(',')) {
    const engineRuns = {};
    const compiledRuns = {};
    for (const batch of batches) {
      engineRuns[batch] = await engineRestoreTiming(models, lqFile, dtype, batch, batch === 1 ? runs : 1, `${dtype}, batch ${batch}`);
      if (withCompiled) {
        compiledRuns[batch] = await engineRestoreTiming(models, lqFile, dtype, batch, batch === 1 ? runs : 1,
          `compiled ${dtype}, batch ${batch}`, true);
      }
    }
    const eagerRuns = options['engine-only'] ? {} : eagerRestoreTimings(dir, lqFile, dtype, batches);
    for (const batch of batches) {
      const engineRun = engineRuns[batch];
      const eagerRun = eagerRuns[batch];
      const compiledRun = compiledRuns[batch];
      const facesPerSecond = batch / engineRun.seconds;
      const throughput = (run) => {
        const rate = batch / run.seconds;
        return { perFaceSeconds: run.seconds / batch, peakBytesPerFace: run.peakBytes / batch, facesPerSecond: rate,
          flopsPerSecond: perFace === null ? null : rate * perFace, fractionOfBf16Peak: peak && perFace ? (rate * perFace) / peak : null };
      };
      cases.push({
        case: `published-size restore, ${steps} steps, ${dtype}, batch ${batch}`,
        dtype, batch,
        eager: eagerRun ? { ...eagerRun, perFaceSeconds: eagerRun.seconds / batch, peakBytesPerFace: eagerRun.peakBytes / batch } : null,
        engine: { ...engineRun, perFaceSeconds: engineRun.seconds / batch, peakBytesPerFace: engineRun.peakBytes / batch,
          facesPerSecond, flopsPerSecond: perFace === null ? null : facesPerSecond * perFace,
          fractionOfBf16Peak: peak && perFace ? (facesPerSecond * perFace) / peak : null },
        compiled: compiledRun ? { ...compiledRun, ...throughput(compiledRun), ratioToEngine: compiledRun.seconds / engineRun.seconds,
          ratioToEager: eagerRun ? compiledRun.seconds / eagerRun.seconds : null } : null,
        ratio: eagerRun ? engineRun.seconds / eagerRun.seconds : null,
      });
    }
    writeReport([...done, ...cases], { steps, gpu: gpuName, compileTimes, layout: process.env.DIFFACE_CUDA_LAYOUT ?? 'contiguous',
      cudaGraphsEnabled: process.env.DIFFACE_CUDA_GRAPHS !== '0', flops: { ...flops, perFace }, bf16PeakFlops: peak });
  }
  return cases;
}

function printTable(cases) {
  const rows = [['case', 'eager s', 'engine s', 'engine/eager', 'max diff to eager', 'compiled s', 'compiled/eager']];
  for (const c of cases) {
    rows.push([c.case, c.eager ? c.eager.seconds.toFixed(3) : '-', c.engine.seconds.toFixed(3), c.ratio === null ? '-' : c.ratio.toFixed(3),
      c.engine.maxDiffToEager === undefined ? '-' : String(c.engine.maxDiffToEager),
      c.compiled ? c.compiled.seconds.toFixed(3) : '-', c.compiled?.ratioToEager ? c.compiled.ratioToEager.toFixed(3) : '-']);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const row of rows) console.log(row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  '));
}

let reportExtra = {};
const loadAtStart = os.loadavg();

// Written after every measured case, so a run cut short still leaves its numbers.
function writeReport(cases, extra) {
  reportExtra = { ...reportExtra, ...extra };
  const info = versions();
  const report = {
    date: new Date().toISOString(),
    device: options.device,
    suite,
    ...reportExtra,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    // 1, 5 and 15-minute load averages when the run began and when this was written: on a
    // shared machine, the other work decides how far the times are from the quiet ones.
    loadAverage: { start: loadAtStart, end: os.loadavg() },
    threads,
    runs,
    torch: info.torch,
    cudaGraphs: info.cudaGraphs,
    node: process.versions.node,
    difface: info.difface,
    cases,
  };
  // The libtorch in the name: results on another torch are another baseline, not a rerun.
  const torch = `torch${info.torch.split('.').slice(0, 2).join('.')}`;
  const name = suite === 'cpu' ? `cpu-${torch}` : `${(reportExtra.gpu ?? `${options.device}-gpu-suite`).replace(/[^A-Za-z0-9]+/g, '-')}-${torch}`;
  const file = options.out ?? path.join(root, 'bench', 'results', `${name}-${report.date.slice(0, 10)}.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  return file;
}

async function main() {
  fs.mkdirSync(work, { recursive: true });
  const cases = [];
  if (suite === 'cpu') {
    cases.push(await smallRestore());
    if (!options['skip-published']) cases.push(...await publishedCalls());
  } else {
    cases.push(...await gpuCases(cases));
  }
  const file = writeReport(cases, { compileTimes });
  printTable(cases);
  console.log(`\nwrote ${path.relative(process.cwd(), file)}`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
