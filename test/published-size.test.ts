// The published-size networks (159,788,454 + 15,792,587 parameters), with random weights in
// the published layout (official-layout.json) and the published file form (DataParallel's
// "module." prefix, under the published file names). With no Python on the machine, the
// pair is fetched from a loopback server, read natively, loaded, and one call of each at
// 512 x 512 matches this project's eager Python networks on the same files within 1e-4.
// The random checkpoints (about 700 MB) live in a temporary folder and are deleted after.
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { publishedArchitectureDir } from 'difface';

import { referenceDir, repoRoot, runPython, tempDir, testPyDir } from './helpers/env';
import { nodeOnlyPath, randomPair, runNode } from './helpers/native';
import { maxAbsDiff, readNpy } from './helpers/npy';
import { serveFiles } from './helpers/server';

async function sha256(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function rawFloat32(file: string): Float32Array {
  const bytes = fs.readFileSync(file);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
}

describe('published-size networks at 512 x 512, fetched and read with no Python', function () {
  let eager: string;
  let results: string;
  let report: { fetched: { how: string; checksum: string }[]; card: { version: number; kind: string; unet: number; backbone: number } };

  before(async function () {
    const pair = randomPair(['--layout', path.join(referenceDir, 'official-layout.json')], { style: 'ddp', seed: 3 });
    eager = path.join(pair.dir, 'eager');
    runPython(path.join(testPyDir, 'network_outputs.py'), [pair.config, pair.unet, pair.backbone, eager, '--side', '512', '--threads', '2']);
    const manifest = path.join(pair.dir, 'manifest.json');
    const entry = async (file: string) => ({
      name: path.basename(file), group: 'restoration', url: `https://example.invalid/${path.basename(file)}`,
      bytes: fs.statSync(file).size, sha256: await sha256(file), unwrap: ['state_dict'], stripPrefix: 'module.',
    });
    fs.writeFileSync(manifest, JSON.stringify({
      format: 'difface-manifest', version: 1,
      groups: { restoration: { description: 'published size', default: true, architecture: publishedArchitectureDir(),
        networks: { unet: path.basename(pair.unet), backbone: path.basename(pair.backbone) } } },
      files: [await entry(pair.unet), await entry(pair.backbone)],
    }));
    const server = await serveFiles(pair.dir);
    results = path.join(pair.dir, 'out');
    try {
      const child = await runNode([path.join(repoRoot, 'test', 'js', 'network_calls.js'), path.join(pair.dir, 'models'), eager, results,
        '--fetch', manifest, server.url], { PATH: nodeOnlyPath(), HOME: tempDir('home') });
      assert.equal(child.status, 0, child.stderr);
    } finally {
      await server.close();
    }
    report = JSON.parse(fs.readFileSync(path.join(results, 'report.json'), 'utf8')) as typeof report;
  });

  it('fetches both files, checked against their sums, and reads them natively into the published architectures', function () {
    assert.deepEqual(report.fetched.map((f) => [f.how, f.checksum]), [['downloaded', 'published'], ['downloaded', 'published']]);
    assert.deepEqual(report.card, { version: 2, kind: 'published', unet: 159788454, backbone: 15792587 });
  });

  it('one UNet call matches the eager UNet within 1e-4', function () {
    assert.ok(maxAbsDiff(rawFloat32(path.join(results, 'unet_out.f32')), readNpy(path.join(eager, 'unet_out.npy')).data) <= 1e-4);
  });

  it('one backbone call matches the eager backbone within 1e-4', function () {
    assert.ok(maxAbsDiff(rawFloat32(path.join(results, 'backbone_out.f32')), readNpy(path.join(eager, 'backbone_out.npy')).data) <= 1e-4);
  });
});
