// The published-size networks (159,788,454 + 15,792,587 parameters), with random weights
// laid out as official-layout.json lists them: they convert, load, and one call of each at
// 512 x 512 through the engine matches this project's eager Python networks within 1e-4.
// The random checkpoints (about 730 MB) live in a temporary folder and are deleted after.
import { strict as assert } from 'node:assert';
import * as path from 'node:path';

import { DifFace, Tensor, convertCheckpoints } from 'difface';

import { modelsDir, referenceDir, runPython, tempDir, testPyDir } from './helpers/env';
import { maxAbsDiff, readNpy } from './helpers/npy';

describe('published-size networks at 512 x 512', function () {
  let dir: string;
  let engine: DifFace;
  const load = (name: string) => readNpy(path.join(dir, 'out', `${name}.npy`));

  before(async function () {
    dir = tempDir('published');
    runPython(path.join(modelsDir, 'random_checkpoint.py'), ['--layout', path.join(referenceDir, 'official-layout.json'),
      '--out', dir, '--seed', '3', '--style', 'ddp-wrapped']);
    const card = await convertCheckpoints({
      unet: path.join(dir, 'unet.pth'), backbone: path.join(dir, 'backbone.pth'), out: path.join(dir, 'models'),
    });
    assert.equal(card.unet.parameters, 159788454);
    assert.equal(card.backbone.parameters, 15792587);
    assert.deepEqual(card.sampling, { startStep: 100, eta: 0.5, imageSize: 512 });
    runPython(path.join(testPyDir, 'network_outputs.py'), [path.join(dir, 'config.json'), path.join(dir, 'unet.pth'),
      path.join(dir, 'backbone.pth'), path.join(dir, 'out'), '--side', '512', '--threads', '2']);
    engine = await DifFace.load(path.join(dir, 'models'));
  });
  after(function () {
    engine?.dispose();
  });

  it('one UNet call matches the eager UNet within 1e-4', async function () {
    const x = load('x');
    const out = await engine.unet(Tensor.fromFloat32(x.data, x.shape), Array.from(load('t').data));
    assert.deepEqual(out.shape, [1, 6, 512, 512]);
    assert.ok(maxAbsDiff(await out.toFloat32(), load('unet_out').data) <= 1e-4);
    out.dispose();
  });

  it('one backbone call matches the eager backbone within 1e-4', async function () {
    const lq = load('lq');
    const out = await engine.estimate(Tensor.fromFloat32(lq.data, lq.shape));
    assert.deepEqual(out.shape, [1, 3, 512, 512]);
    assert.ok(maxAbsDiff(await out.toFloat32(), load('backbone_out').data) <= 1e-4);
    out.dispose();
  });
});
