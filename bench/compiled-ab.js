#!/usr/bin/env node
// The UNet call of one model directory, TorchScript against its compiled package, in one
// process, one call of each in turn. On a machine shared with other work the load drifts
// between two timed runs made one after the other; taken in turn, both sides see the same load.
//
//   node bench/compiled-ab.js MODEL_DIR X.npy [T.npy] [--rounds N] [--device D] [--dtype T]
//
// X.npy is the UNet's input [B, 3, H, W]; the compiled cache must hold a package for that
// shape (`difface compile --batch B --size HxW`). T.npy holds one timestep per face (500 each
// when left out). Prints each round and a JSON summary: medians, bests, their ratio, and the
// largest difference between the two outputs.
'use strict';

const path = require('node:path');
const { parseArgs } = require('node:util');

const root = path.resolve(__dirname, '..');
const { DifFace, Tensor } = require(root);
const { maxAbsDiff, readNpy } = require(path.join(root, 'build', 'test', 'helpers', 'npy.js'));

const { values: options, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rounds: { type: 'string', default: '4' },
    device: { type: 'string', default: 'cpu' },
    dtype: { type: 'string', default: 'float32' },
  },
});

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function timed(engine, x, t) {
  const started = performance.now();
  const out = await engine.unet(x, t);
  return { seconds: (performance.now() - started) / 1000, out };
}

async function main() {
  const [models, xFile, tFile] = positionals;
  if (models === undefined || xFile === undefined) throw new Error('usage: compiled-ab.js MODEL_DIR X.npy [T.npy] [--rounds N]');
  const load = { device: options.device, dtype: options.dtype };
  const plain = await DifFace.load(models, { ...load, compiled: 'off' });
  const compiled = await DifFace.load(models, { ...load, compiled: 'on' });
  const x = readNpy(xFile);
  if (!compiled.compiled().batches.includes(x.shape[0])) {
    throw new Error(`no compiled package for batch ${x.shape[0]}: ${compiled.compiled().notes.join('; ') || 'none in the cache'}`);
  }
  const input = Tensor.fromFloat32(x.data, x.shape);
  const t = tFile === undefined ? Array(x.shape[0]).fill(500) : Array.from(readNpy(tFile).data);
  // Warm-up: first calls allocate and, for TorchScript, profile.
  for (const engine of [plain, compiled]) for (let i = 0; i < 2; i++) (await engine.unet(input, t)).dispose();
  const rounds = [];
  let last;
  for (let r = 0; r < Number(options.rounds); r++) {
    const a = await timed(plain, input, t);
    const b = await timed(compiled, input, t);
    rounds.push({ torchscript: a.seconds, compiled: b.seconds, ratio: b.seconds / a.seconds });
    console.log(`round ${r}: TorchScript ${a.seconds.toFixed(3)} s, compiled ${b.seconds.toFixed(3)} s, ratio ${(b.seconds / a.seconds).toFixed(3)}`);
    last?.a.dispose();
    last?.b.dispose();
    last = { a: a.out, b: b.out };
  }
  const summary = {
    models, shape: x.shape, device: options.device, dtype: options.dtype,
    torchscriptMedian: median(rounds.map((r) => r.torchscript)), compiledMedian: median(rounds.map((r) => r.compiled)),
    torchscriptBest: Math.min(...rounds.map((r) => r.torchscript)), compiledBest: Math.min(...rounds.map((r) => r.compiled)),
    ratioMedian: median(rounds.map((r) => r.ratio)),
    maxDifference: maxAbsDiff(await last.a.toFloat32(), await last.b.toFloat32()),
    rounds,
  };
  console.log(JSON.stringify(summary));
  last.a.dispose();
  last.b.dispose();
  input.dispose();
  plain.dispose();
  compiled.dispose();
}

main().catch((error) => {
  console.error(error.message ?? error);
  process.exitCode = 1;
});
