// Published checkpoints without Python: the weight-less architectures the package ships list
// the published state dicts, `convert` reads checkpoints natively and strictly, and a model
// directory of checkpoints loads and computes what the published implementation computes.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { DifFace, Tensor, architectureLayout, convertCheckpoints, publishedArchitectureDir, readModelCard } from 'difface';

import { referenceDir, repoRoot, runPython, smallReferenceDir, tempDir, testPyDir } from './helpers/env';
import { rejectsWith } from './helpers/errors';
import { randomPair, runWithoutPython, smallArchitecture } from './helpers/native';
import { maxAbsDiff, readNpy } from './helpers/npy';

const smallUnet = path.join(smallReferenceDir, 'unet.pth');
const smallBackbone = path.join(smallReferenceDir, 'backbone.pth');
const smallConfig = path.join(smallReferenceDir, 'reference.json');
const networkCalls = path.join(repoRoot, 'test', 'js', 'network_calls.js');

interface Layout {
  unet_config: Record<string, unknown>;
  backbone_config: Record<string, unknown>;
  unet_state_dict: Record<string, number[]>;
  backbone_state_dict: Record<string, number[]>;
  unet_parameter_count: number;
  backbone_parameter_count: number;
}

function rawFloat32(file: string): Float32Array {
  const bytes = fs.readFileSync(file);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
}

/** Rewrites a checkpoint through Python (drop, add or reshape entries). */
function editCheckpoint(source: string, target: string, python: string): void {
  const script = path.join(tempDir('edit'), 'edit.py');
  fs.writeFileSync(script, ['import sys, torch', 'sd = torch.load(sys.argv[1], weights_only=True)', python,
    'torch.save(sd, sys.argv[2])'].join('\n'));
  runPython(script, [source, target]);
}

async function oneCallEach(dir: string, inputs: string): Promise<{ unet: Float32Array; backbone: Float32Array }> {
  const engine = await DifFace.load(dir, { threads: 2 });
  try {
    const x = readNpy(path.join(inputs, 'x.npy'));
    const lq = readNpy(path.join(inputs, 'lq.npy'));
    const unet = await engine.unet(Tensor.fromFloat32(x.data, x.shape), Array.from(readNpy(path.join(inputs, 't.npy')).data));
    const estimate = await engine.estimate(Tensor.fromFloat32(lq.data, lq.shape));
    return { unet: await unet.toFloat32(), backbone: await estimate.toFloat32() };
  } finally {
    engine.dispose();
  }
}

describe('published checkpoints read natively', function () {
  let architecture: string;

  before(function () {
    architecture = smallArchitecture();
  });

  it('the shipped architectures list the published state dicts: names, shapes, order and parameter counts', async function () {
    const layout = JSON.parse(fs.readFileSync(path.join(referenceDir, 'official-layout.json'), 'utf8')) as Layout;
    const card = JSON.parse(fs.readFileSync(path.join(publishedArchitectureDir(), 'architecture.json'), 'utf8')) as
      { networks: Record<string, { file: string; parameters: number; config: Record<string, unknown> }> };
    for (const role of ['unet', 'backbone'] as const) {
      const network = card.networks[role];
      assert.ok(network !== undefined);
      const entries = await architectureLayout(path.join(publishedArchitectureDir(), network.file));
      assert.deepEqual(entries.map((e) => [e.name, e.shape]), Object.entries(layout[`${role}_state_dict`]));
      const parameters = entries.filter((e) => e.parameter).reduce((sum, e) => sum + e.shape.reduce((a, b) => a * b, 1), 0);
      assert.equal(parameters, layout[`${role}_parameter_count`]);
      assert.equal(network.parameters, parameters);
      for (const [key, value] of Object.entries(layout[`${role}_config`])) assert.deepEqual(network.config[key], value, `${role} ${key}`);
      // The shipped export carries no weights.
      assert.ok(fs.statSync(path.join(publishedArchitectureDir(), network.file)).size < 2_000_000);
    }
    const buffers = (await architectureLayout(path.join(publishedArchitectureDir(), 'backbone.pt'))).filter((e) => !e.parameter);
    assert.ok(buffers.some((e) => e.name.endsWith('relative_position_index') && e.dtype === 'int64'));
    assert.ok(buffers.some((e) => e.name.endsWith('attn_mask') && e.dtype === 'float32'));
  });

  it('convert reads the small reference checkpoints natively; with no Python on the machine they load and match the published implementation within 1e-4', async function () {
    const out = path.join(tempDir('native'), 'models');
    const card = await convertCheckpoints({ unet: smallUnet, backbone: smallBackbone, architecture, out });
    assert.equal(card.version, 2);
    assert.equal(card.kind, 'published');
    assert.equal(card.unet.parameters, 3519398);
    assert.equal(card.backbone.parameters, 173803);
    assert.deepEqual(fs.readdirSync(out).sort(), ['backbone.arch.pt', 'backbone.pth', 'difface.json', 'unet.arch.pt', 'unet.pth']);
    assert.deepEqual(readModelCard(out).unet.checkpoint, { unwrap: ['state_dict'], stripPrefix: 'module.' });

    const inputs = tempDir('inputs');
    fs.copyFileSync(path.join(smallReferenceDir, 'unet_x.npy'), path.join(inputs, 'x.npy'));
    fs.copyFileSync(path.join(smallReferenceDir, 'unet_t.npy'), path.join(inputs, 't.npy'));
    fs.copyFileSync(path.join(smallReferenceDir, 'lq.npy'), path.join(inputs, 'lq.npy'));
    const results = tempDir('outputs');
    const child = runWithoutPython(networkCalls, [out, inputs, results]);
    assert.equal(child.status, 0, child.stderr);
    assert.ok(maxAbsDiff(rawFloat32(path.join(results, 'unet_out.f32')), readNpy(path.join(smallReferenceDir, 'unet_out.npy')).data) <= 1e-4);
    assert.ok(maxAbsDiff(rawFloat32(path.join(results, 'backbone_out.f32')), readNpy(path.join(smallReferenceDir, 'backbone_out.npy')).data) <= 1e-4);
  });

  for (const variant of [
    { name: 'the legacy format, DDP-prefixed and wrapped', style: 'ddp-wrapped', format: 'legacy', dtype: 'float32' },
    { name: 'half-precision storages, DDP-prefixed', style: 'ddp', format: 'zip', dtype: 'float16' },
    { name: 'bfloat16 storages, wrapped, legacy', style: 'wrapped', format: 'legacy', dtype: 'bfloat16' },
  ]) {
    it(`reads ${variant.name}, and computes what the eager networks compute on the same files`, async function () {
      const pair = randomPair(['--config', smallConfig], { ...variant, seed: 4 });
      const out = path.join(pair.dir, 'models');
      await convertCheckpoints({ unet: pair.unet, backbone: pair.backbone, architecture, out });
      const eager = path.join(pair.dir, 'eager');
      runPython(path.join(testPyDir, 'network_outputs.py'), [pair.config, pair.unet, pair.backbone, eager, '--side', '64', '--threads', '2']);
      const got = await oneCallEach(out, eager);
      assert.ok(maxAbsDiff(got.unet, readNpy(path.join(eager, 'unet_out.npy')).data) <= 1e-4);
      assert.ok(maxAbsDiff(got.backbone, readNpy(path.join(eager, 'backbone_out.npy')).data) <= 1e-4);
    });
  }

  it('lists missing, unexpected and mis-shaped names, and checks both files before writing anything', async function () {
    const dir = tempDir('strict');
    const broken = path.join(dir, 'unet.pth');
    editCheckpoint(smallUnet, broken, [
      "del sd['out.2.bias']", "sd['extra.weight'] = torch.zeros(3)",
      "sd['input_blocks.0.0.weight'] = torch.zeros(1, 2, 3, 3)"].join('\n'));
    const out = path.join(dir, 'models');
    const error = await rejectsWith(convertCheckpoints({ unet: broken, backbone: smallBackbone, architecture, out }), 'ECHECKPOINT');
    assert.match(error.message, /UNet checkpoint '.*unet\.pth' does not fit the UNet architecture/);
    assert.match(error.message, /missing: out\.2\.bias/);
    assert.match(error.message, /unexpected: extra\.weight/);
    assert.match(error.message, /mis-shaped: input_blocks\.0\.0\.weight \(checkpoint \[1, 2, 3, 3\], network \[32, 3, 3, 3\]\)/);
    assert.equal(fs.existsSync(out), false);
    // The backbone checkpoint in the UNet's place.
    await rejectsWith(convertCheckpoints({ unet: smallBackbone, backbone: smallUnet, architecture, out }), 'ECHECKPOINT',
      /missing: .*unexpected: /);
    await rejectsWith(convertCheckpoints({ unet: path.join(dir, 'absent.pth'), backbone: smallBackbone, out }), 'ECHECKPOINT', /does not exist/);
  });

  it('a folder of published files downloaded by hand says how to use it, and converts in place without copies', async function () {
    const dir = tempDir('byhand');
    fs.copyFileSync(smallUnet, path.join(dir, 'iddpm_ffhq512_ema500000.pth'));
    fs.copyFileSync(smallBackbone, path.join(dir, 'swinir_restoration512_L1.pth'));
    await rejectsWith(DifFace.load(dir), 'EMODELDIR', /holds the published checkpoints: make it a model directory in place with 'difface convert/);
    const before = fs.statSync(path.join(dir, 'iddpm_ffhq512_ema500000.pth')).ino;
    await convertCheckpoints({ unet: path.join(dir, 'iddpm_ffhq512_ema500000.pth'), backbone: path.join(dir, 'swinir_restoration512_L1.pth'),
      architecture, out: dir });
    assert.equal(fs.statSync(path.join(dir, 'iddpm_ffhq512_ema500000.pth')).ino, before);
    const engine = await DifFace.load(dir);
    assert.equal(engine.card.unet.file, 'iddpm_ffhq512_ema500000.pth');
    engine.dispose();
  });

  it('a directory of checkpoints names a damaged or missing file at load', async function () {
    const out = path.join(tempDir('damaged'), 'models');
    await convertCheckpoints({ unet: smallUnet, backbone: smallBackbone, architecture, out });
    fs.rmSync(path.join(out, 'backbone.arch.pt'));
    await rejectsWith(DifFace.load(out), 'EMODELDIR', /backbone architecture backbone\.arch\.pt .* is missing/);
    await convertCheckpoints({ unet: smallUnet, backbone: smallBackbone, architecture, out });
    // A checkpoint damaged in place (same size), so only reading it can tell.
    const unet = path.join(out, 'unet.pth');
    const bytes = fs.readFileSync(unet);
    bytes.fill(0, bytes.length - 2000);
    fs.rmSync(unet);
    fs.writeFileSync(unet, bytes);
    await rejectsWith(DifFace.load(out), 'ECHECKPOINT', /unet\.pth' is a damaged zip archive/);
  });
});
