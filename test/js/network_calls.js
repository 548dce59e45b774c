#!/usr/bin/env node
// One UNet call and one backbone call of a model directory, for tests that must run with no
// Python on the machine. Optionally fetches the model directory first.
//
//   node network_calls.js MODEL_DIR IN_DIR OUT_DIR [--fetch MANIFEST MIRROR]
//
// Reads IN_DIR/x.npy, t.npy and lq.npy (float32), writes OUT_DIR/unet_out.f32 and
// backbone_out.f32 (raw little-endian float32) and OUT_DIR/report.json (timings, the card).
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');
const { DifFace, Tensor, fetchModels } = require(root);

function readNpy(file) {
  const bytes = fs.readFileSync(file);
  const headerLength = bytes.readUInt16LE(8);
  const header = bytes.toString('latin1', 10, 10 + headerLength);
  const shape = (/'shape':\s*\(([^)]*)\)/.exec(header)[1]).split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const body = bytes.subarray(10 + headerLength);
  const copy = new Uint8Array(body.length);
  copy.set(body);
  return { shape, data: new Float32Array(copy.buffer) };
}

async function main() {
  const [modelDir, inDir, outDir, flag, manifest, mirror] = process.argv.slice(2);
  const report = {};
  if (flag === '--fetch') {
    const started = Date.now();
    const fetched = await fetchModels({ manifest, mirror, dir: modelDir, only: 'restoration' });
    report.fetchSeconds = (Date.now() - started) / 1000;
    report.fetched = fetched.files.map((f) => ({ name: f.name, bytes: f.bytes, how: f.how, checksum: f.checksum }));
  }
  let started = Date.now();
  const engine = await DifFace.load(modelDir, { threads: 2 });
  report.loadSeconds = (Date.now() - started) / 1000;
  report.card = { version: engine.card.version, kind: engine.card.kind, unet: engine.card.unet.parameters, backbone: engine.card.backbone.parameters };
  const x = readNpy(path.join(inDir, 'x.npy'));
  const t = readNpy(path.join(inDir, 't.npy'));
  const lq = readNpy(path.join(inDir, 'lq.npy'));
  started = Date.now();
  const unet = await engine.unet(Tensor.fromFloat32(x.data, x.shape), Array.from(t.data));
  report.unetSeconds = (Date.now() - started) / 1000;
  started = Date.now();
  const estimate = await engine.estimate(Tensor.fromFloat32(lq.data, lq.shape));
  report.backboneSeconds = (Date.now() - started) / 1000;
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'unet_out.f32'), Buffer.from((await unet.toFloat32()).buffer));
  fs.writeFileSync(path.join(outDir, 'backbone_out.f32'), Buffer.from((await estimate.toFloat32()).buffer));
  fs.writeFileSync(path.join(outDir, 'report.json'), JSON.stringify(report, null, 2));
  engine.dispose();
}

main().catch((error) => {
  process.stderr.write(`network_calls: ${error.code ?? ''} ${error.message}\n`);
  process.exitCode = 1;
});
