// `difface convert` and its checks: strict loading, checkpoint styles, configurations,
// the model card, and clear errors for bad checkpoints and configurations.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { DifFace, Tensor, convertCheckpoints, readModelCard } from 'difface';
import type { ErrorCode, ModelCard } from 'difface';

import { repoRoot, runPython, smallReferenceDir, tempDir } from './helpers/env';
import { rejectsWith } from './helpers/errors';
import { smallConversion } from './helpers/fixtures';
import { maxAbsDiff, readNpy } from './helpers/npy';

const smallUnet = path.join(smallReferenceDir, 'unet.pth');
const smallBackbone = path.join(smallReferenceDir, 'backbone.pth');
const smallConfig = path.join(smallReferenceDir, 'reference.json');

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

async function convertFails(options: Parameters<typeof convertCheckpoints>[0], code: ErrorCode): Promise<string> {
  return (await rejectsWith(convertCheckpoints(options), code)).message;
}

/** Rewrites a checkpoint through Python: drop, rename or reshape entries, or change its style. */
function editCheckpoint(source: string, target: string, python: string): void {
  const script = path.join(tempDir('edit'), 'edit.py');
  fs.writeFileSync(script, [
    'import sys, torch',
    'sd = torch.load(sys.argv[1], weights_only=True)',
    python,
    'torch.save(sd, sys.argv[2])',
  ].join('\n'));
  runPython(script, [source, target]);
}

describe('difface convert', function () {
  let out: string;
  let card: ModelCard;

  // Shared with the files that load the small model: loading writes nothing, so the folder
  // still holds only what convert wrote.
  before(async function () {
    ({ out, card } = await smallConversion());
  });

  it('writes both TorchScript networks and a model card', function () {
    assert.deepEqual(fs.readdirSync(out).sort(), ['backbone.pt', 'difface.json', 'unet.pt']);
    const onDisk = readModelCard(out);
    assert.deepEqual(onDisk.unet.config, card.unet.config);
    assert.equal(onDisk.kind, 'converted');
  });

  it('records configurations, schedule, sampling defaults, hashes and the torch version', function () {
    const reference = JSON.parse(fs.readFileSync(smallConfig, 'utf8')) as Record<string, unknown>;
    assert.deepEqual(card.unet.config, reference.unet_config);
    assert.deepEqual(card.backbone.config, reference.backbone_config);
    assert.deepEqual(card.diffusion, reference.diffusion_config);
    assert.deepEqual(card.schedule, { steps: 1000, noiseSchedule: 'linear', respacing: 'ddim250', rescaleTimesteps: false });
    assert.deepEqual(card.sampling, { startStep: 100, eta: 0.5, imageSize: 64 });
    assert.equal(card.unet.source?.sha256, sha256(smallUnet));
    assert.equal(card.backbone.source?.sha256, sha256(smallBackbone));
    assert.equal(card.unet.sha256, sha256(path.join(out, 'unet.pt')));
    assert.equal(card.unet.parameters, 3519398);
    assert.match(card.export.torch, /^\d+\.\d+/);
  });

  it('accepts DDP-prefixed and {"state_dict": ...} checkpoints and exports the same networks', async function () {
    const dir = tempDir('styles');
    const unet = path.join(dir, 'unet.pth');
    const backbone = path.join(dir, 'backbone.pth');
    editCheckpoint(smallUnet, unet, "sd = {'state_dict': {'module.' + k: v for k, v in sd.items()}}");
    editCheckpoint(smallBackbone, backbone, "sd = {'module.' + k: v for k, v in sd.items()}");
    const styled = await convertCheckpoints({ unet, backbone, config: smallConfig, out: path.join(dir, 'models') });
    assert.equal(styled.unet.parameters, card.unet.parameters);
    assert.equal(styled.unet.source?.sha256, sha256(unet));
    // The weights arrived: the converted UNet reproduces the published output.
    const engine = await DifFace.load(path.join(dir, 'models'));
    const x = readNpy(path.join(smallReferenceDir, 'unet_x.npy'));
    const t = Array.from(readNpy(path.join(smallReferenceDir, 'unet_t.npy')).data);
    const out = await engine.unet(Tensor.fromFloat32(x.data, x.shape), t);
    assert.ok(maxAbsDiff(await out.toFloat32(), readNpy(path.join(smallReferenceDir, 'unet_out.npy')).data) <= 1e-4);
    out.dispose();
    engine.dispose();
  });

  it('lists missing, unexpected and mis-shaped names of a checkpoint that does not fit', async function () {
    const dir = tempDir('misfit');
    const unet = path.join(dir, 'unet.pth');
    editCheckpoint(smallUnet, unet, [
      "sd.pop('out.2.bias')",
      "sd['extra.weight'] = torch.zeros(1)",
      "sd['time_embed.0.weight'] = torch.zeros(7, 7)",
    ].join('\n'));
    const message = await convertFails({ unet, backbone: smallBackbone, config: smallConfig, out: path.join(dir, 'm') }, 'ECHECKPOINT');
    assert.match(message, /missing: out\.2\.bias/);
    assert.match(message, /unexpected: extra\.weight/);
    assert.match(message, /mis-shaped: time_embed\.0\.weight \(checkpoint \[7, 7\], network \[128, 32\]\)/);
  });

  it('says so when the published configuration does not fit the checkpoints', async function () {
    const message = await convertFails({ unet: smallUnet, backbone: smallBackbone, out: path.join(tempDir('noconf'), 'm') }, 'ECHECKPOINT');
    assert.match(message, /does not fit/);
  });

  it('refuses unreadable, empty, truncated and missing checkpoints', async function () {
    const dir = tempDir('bad');
    const junk = path.join(dir, 'junk.pth');
    fs.writeFileSync(junk, crypto.randomBytes(4096));
    const empty = path.join(dir, 'empty.pth');
    fs.writeFileSync(empty, '');
    const truncated = path.join(dir, 'truncated.pth');
    fs.writeFileSync(truncated, fs.readFileSync(smallUnet).subarray(0, 100000));
    for (const file of [junk, empty, truncated, path.join(dir, 'absent.pth')]) {
      const message = await convertFails({ unet: file, backbone: smallBackbone, config: smallConfig, out: path.join(dir, 'm') }, 'ECHECKPOINT');
      assert.ok(message.includes(file), message);
    }
    assert.equal(fs.existsSync(path.join(dir, 'm', 'difface.json')), false);
  });

  it('never runs code from a checkpoint (weights_only loading)', async function () {
    const dir = tempDir('pickle');
    const marker = path.join(dir, 'pwned');
    const evil = path.join(dir, 'evil.pth');
    const script = path.join(dir, 'make.py');
    fs.writeFileSync(script, [
      'import os, sys, torch',
      'class Payload:',
      '    def __reduce__(self):',
      `        return (os.system, (${JSON.stringify(`touch ${marker}`)},))`,
      "torch.save({'x': Payload()}, sys.argv[1])",
    ].join('\n'));
    runPython(script, [evil]);
    const message = await convertFails({ unet: evil, backbone: smallBackbone, config: smallConfig, out: path.join(dir, 'm') }, 'ECHECKPOINT');
    assert.match(message, /cannot be read/);
    assert.equal(fs.existsSync(marker), false);
  });

  it('reads the published sampling YAML, with the published tool\'s DDIM respacing', async function () {
    const dir = tempDir('yaml');
    const reference = JSON.parse(fs.readFileSync(smallConfig, 'utf8')) as Record<string, Record<string, unknown>>;
    const yaml = [
      'seed: 10000', 'im_size: 64', 'aligned: True',
      'diffusion:', '  target: models.script_util.create_gaussian_diffusion', '  params:',
      ...Object.entries(reference.diffusion_config ?? {}).map(([k, v]) => `    ${k}: ${k === 'timestep_respacing' ? '"250"' : JSON.stringify(v)}`),
      'model:', '  target: models.unet.UNetModel', '  ckpt_path: ./weights/unet.pth', '  params:',
      ...Object.entries(reference.unet_config ?? {}).map(([k, v]) => `    ${k}: ${JSON.stringify(v)}`),
      'model_ir:', '  target: models.swinir.SwinIR', '  ckpt_path: ./weights/swinir.pth', '  params:',
      ...Object.entries(reference.backbone_config ?? {}).map(([k, v]) => `    ${k}: ${JSON.stringify(v)}`),
    ].join('\n');
    const config = path.join(dir, 'sample.yaml');
    fs.writeFileSync(config, yaml);
    const fromYaml = await convertCheckpoints({ unet: smallUnet, backbone: smallBackbone, config, out: path.join(dir, 'm') });
    assert.equal(fromYaml.schedule.respacing, 'ddim250');
    assert.deepEqual(fromYaml.unet.config, card.unet.config);
    assert.deepEqual(fromYaml.backbone.config, card.backbone.config);
    assert.deepEqual(fromYaml.diffusion, card.diffusion);
    assert.deepEqual(fromYaml.sampling, card.sampling);
  });

  it('names unknown and missing configuration keys', async function () {
    const dir = tempDir('conf');
    const reference = JSON.parse(fs.readFileSync(smallConfig, 'utf8')) as Record<string, Record<string, unknown>>;
    const typo = path.join(dir, 'typo.json');
    fs.writeFileSync(typo, JSON.stringify({ ...reference, unet_config: { ...reference.unet_config, chanel_mult: [1] } }));
    assert.match(await convertFails({ unet: smallUnet, backbone: smallBackbone, config: typo, out: dir }, 'ECONFIG'), /chanel_mult/);
    const partial = path.join(dir, 'partial.json');
    fs.writeFileSync(partial, JSON.stringify({ unet_config: reference.unet_config }));
    assert.match(await convertFails({ unet: smallUnet, backbone: smallBackbone, config: partial, out: dir }, 'ECONFIG'), /backbone_config/);
    const broken = path.join(dir, 'broken.json');
    fs.writeFileSync(broken, '{ not json');
    assert.match(await convertFails({ unet: smallUnet, backbone: smallBackbone, config: broken, out: dir }, 'ECONFIG'), /not valid JSON/);
  });

  it('runs from the CLI, with a usage error for missing arguments', function () {
    const cli = path.join(repoRoot, 'dist', 'cli.js');
    const out2 = path.join(tempDir('cli'), 'models');
    const ok = spawnSync(process.execPath, [cli, 'convert', '--unet', smallUnet, '--backbone', smallBackbone,
      '--config', smallConfig, '--out', out2], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /converted: .*3,519,398/);
    assert.ok(fs.existsSync(path.join(out2, 'difface.json')));
    const usage = spawnSync(process.execPath, [cli, 'convert', '--unet', smallUnet], { encoding: 'utf8' });
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /--backbone/);
    const bad = spawnSync(process.execPath, [cli, 'convert', '--unet', '/nonexistent.pth', '--backbone', smallBackbone,
      '--out', out2], { encoding: 'utf8' });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /nonexistent\.pth.*\[ECHECKPOINT\]/);
  });
});
