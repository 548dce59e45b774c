// Inpainting held to the project's eager inpainting sampler (models/eager_inpainting.py,
// written as the published sampler is), run on this machine in this test run on random
// checkpoints of a small configuration of the published networks: LaMa and each step within
// 1e-4 given the same state, whole chains within 2e-3. Then the API's behaviour: holes from a
// mask or from black pixels, faces of other sizes, batching, cancellation and bad input.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { DifFace, Tensor, fetchModels } from 'difface';

import { modelsDir, runPython, tempDir, testPyDir } from './helpers/env';
import { rejectsWith } from './helpers/errors';
import { smallInpainting, smallModelDir } from './helpers/fixtures';
import { Array32, batchSlice, maxAbsDiff, readNpy } from './helpers/npy';
import { toTensor, valuesOf } from './helpers/tensors';

const CALL_TOLERANCE = 1e-4;
const CHAIN_TOLERANCE = 2e-3;
const START = 12;
const SEED = 5;

describe('inpainting (small random checkpoints, against the eager sampler)', function () {
  let engine: DifFace;
  let eagerDir: string;
  const eager = (name: string): Array32 => readNpy(path.join(eagerDir, `${name}.npy`));

  before(async function () {
    const { checkpoints, out } = await smallInpainting();
    engine = await DifFace.load(out);
    eagerDir = tempDir('eager-inpainting');
    // The same threads as the engine: libtorch splits its sums by thread, so another count rounds differently.
    runPython(path.join(testPyDir, 'eager_inpainting_case.py'),
      [checkpoints, eagerDir, '--start', String(START), '--seed', String(SEED), '--threads', String(engine.threads)]);
  });
  after(function () {
    engine?.dispose();
  });

  it('the model card says inpainting, with the published sampling settings of the configuration', function () {
    assert.equal(engine.card.task, 'inpainting');
    assert.deepEqual(engine.defaults, { startStep: 30, eta: 1, imageSize: 64, gamma: 0.5 });
  });

  it("LaMa's estimate matches the eager network within 1e-4", async function () {
    const input = toTensor(eager('lama_in'));
    try {
      assert.ok(maxAbsDiff(await valuesOf(engine.estimate(input)), eager('lama_out').data) <= CALL_TOLERANCE);
    } finally {
      input.dispose();
    }
  });

  it("one step's refined x̂₀ and x_{t-1} match the eager step within 1e-4, given the same state and z", async function () {
    const [x, y0, holes, noise] = ['step_x', 'step_y0', 'mask', 'step_noise'].map((name) => toTensor(eager(name))) as Tensor[];
    try {
      const { previous, predictedX0 } = await engine.step(x as Tensor, {
        index: START - 1, eta: 1, noise: noise as Tensor, known: { y0: y0 as Tensor, holes: holes as Tensor }, returnPredicted: true,
      });
      assert.ok(maxAbsDiff(await valuesOf(predictedX0), eager('step_x0').data) <= CALL_TOLERANCE);
      assert.ok(maxAbsDiff(await valuesOf(previous), eager('step_prev').data) <= CALL_TOLERANCE);
    } finally {
      for (const t of [x, y0, holes, noise]) t?.dispose();
    }
  });

  it('the closed-form refinement equals autograd bit for bit (checked in Python)', function () {
    const refine = JSON.parse(fs.readFileSync(path.join(eagerDir, 'refine.json'), 'utf8')) as Record<string, number>;
    assert.equal(refine.gamma_half, 0);
    assert.equal(refine.other_gammas, 0);
  });

  it('a whole inpainting matches the eager sampler within 2e-3, and keeps the known pixels exactly', async function () {
    const image = toTensor(eager('image'));
    const mask = toTensor(eager('mask'));
    try {
      const result = await valuesOf(engine.inpaint(image, { mask, seed: SEED, startStep: START }));
      assert.ok(maxAbsDiff(result, eager('inpainted').data) <= CHAIN_TOLERANCE);
      const known = eager('image').data;
      const holes = eager('mask').data;
      const pixels = holes.length / 2;
      let changed = 0;
      for (let i = 0; i < result.length; i++) {
        const b = Math.floor(i / (3 * pixels));
        const hole = holes[b * pixels + (i % pixels)] === 1;
        if (!hole) assert.equal(result[i], known[i]);
        else if (result[i] !== known[i]) changed++;
      }
      assert.ok(changed > 0.9 * 3 * holes.reduce((n, v) => n + v, 0));
    } finally {
      image.dispose();
      mask.dispose();
    }
  });

  it('without a mask the holes are the exactly black pixels, as the published tool takes them', async function () {
    const image = toTensor(batchSlice(eager('image'), 0, 1));
    const mask = toTensor(batchSlice(eager('mask'), 0, 1));
    try {
      const given = await valuesOf(engine.inpaint(image, { mask, seed: SEED, startStep: START }));
      const found = await engine.inpaint(image, { seed: SEED, startStep: START, returnEstimate: true });
      assert.deepEqual(await valuesOf(found.mask), eager('mask').data.subarray(0, 64 * 64));
      assert.deepEqual(await valuesOf(found.inpainted), given);
      found.estimate.dispose();
    } finally {
      image.dispose();
      mask.dispose();
    }
  });

  it('a face of another size goes through the networks resized and matches the eager sampler within 2e-3', async function () {
    const image = toTensor(eager('odd_image'));
    const mask = toTensor(eager('odd_mask'));
    try {
      const result = await engine.inpaint(image, { mask, seed: SEED, startStep: START });
      assert.deepEqual(result.shape, [1, 3, 80, 56]);
      assert.ok(maxAbsDiff(await valuesOf(result), eager('odd_inpainted').data) <= CHAIN_TOLERANCE);
    } finally {
      image.dispose();
      mask.dispose();
    }
  });

  it('concurrent calls share the networks and each gets what it gets alone', async function () {
    const image = toTensor(batchSlice(eager('image'), 1, 2));
    const mask = toTensor(batchSlice(eager('mask'), 1, 2));
    try {
      const alone = await valuesOf(engine.inpaint(image, { mask, seed: 7, startStep: 6 }));
      const batchesBefore = engine.stats().batches;
      const [a, b] = await Promise.all([
        valuesOf(engine.inpaint(image, { mask, seed: 7, startStep: 6 })),
        valuesOf(engine.inpaint(image, { mask, seed: 8, startStep: 6 })),
      ]);
      assert.equal(engine.stats().batches, batchesBefore + 1);
      assert.ok(maxAbsDiff(a, alone) <= CHAIN_TOLERANCE);
      assert.ok(maxAbsDiff(a, b) > 1e-3, 'another seed draws other noise');
    } finally {
      image.dispose();
      mask.dispose();
    }
  });

  it('an AbortSignal stops a call between steps with an AbortError', async function () {
    const image = toTensor(batchSlice(eager('image'), 0, 1));
    const controller = new AbortController();
    let steps = 0;
    try {
      await rejectsWith(engine.inpaint(image, {
        seed: 1, startStep: 10, signal: controller.signal, onStep: () => { if (++steps === 2) controller.abort(); },
      }), 'EABORT');
      assert.ok(steps >= 2 && steps < 10, `stopped after ${steps} steps`);
    } finally {
      image.dispose();
    }
  });

  it('fetched published files fill the weight-less inpainting architectures natively, in their own model directory', async function () {
    const { checkpoints } = await smallInpainting();
    const config = path.join(checkpoints, 'config.json');
    // The same weights (same seed) in the published forms: wrapped in state_dict, with DDP's prefixes.
    const files = tempDir('published-inpainting');
    runPython(path.join(modelsDir, 'random_checkpoint.py'), ['--config', config, '--out', files, '--seed', '16', '--published-names',
      '--style', 'ddp-wrapped']);
    const architecture = path.join(tempDir('arch'), 'inpainting');
    runPython(path.join(modelsDir, 'export_architecture.py'), ['--config', config, '--out', architecture]);
    const manifest = path.join(tempDir('manifest'), 'manifest.json');
    const entry = (name: string) => ({ name, group: 'inpainting', url: `https://example.invalid/${name}`, bytes: null, sha256: null,
      unwrap: ['state_dict'], stripPrefix: 'module.' });
    fs.writeFileSync(manifest, JSON.stringify({
      format: 'difface-manifest', version: 1,
      groups: {
        restoration: { description: 'not fetched here', default: true, architecture: null, networks: {} },
        inpainting: { description: 'test', default: false, architecture, modelDir: 'inpainting',
          networks: { unet: 'iddpm_ffhq256_ema750000.pth', backbone: 'lama_inpainting256.pth' } },
      },
      files: [entry('iddpm_ffhq256_ema750000.pth'), entry('lama_inpainting256.pth')],
    }));
    const dir = tempDir('fetched');
    const result = await fetchModels({ only: 'inpainting', from: files, manifest, dir });
    assert.equal(result.card, undefined, 'no restoration networks were fetched');
    assert.equal(result.models.inpainting?.dir, path.join(dir, 'inpainting'));
    assert.equal(result.models.inpainting?.card.task, 'inpainting');
    const published = await DifFace.load(path.join(dir, 'inpainting'));
    const input = toTensor(eager('lama_in'));
    try {
      assert.equal(published.card.kind, 'published');
      assert.ok(maxAbsDiff(await valuesOf(published.estimate(input)), eager('lama_out').data) <= CALL_TOLERANCE);
      const x = toTensor(eager('step_x'));
      const [a, b] = [await valuesOf(published.unet(x, [3, 700])), await valuesOf(engine.unet(x, [3, 700]))];
      x.dispose();
      assert.ok(maxAbsDiff(a, b) <= CALL_TOLERANCE);
    } finally {
      input.dispose();
      published.dispose();
    }
  });

  describe('bad input', function () {
    it('a mask of another size is refused, naming the size it must have', async function () {
      const image = toTensor(batchSlice(eager('image'), 0, 1));
      const mask = Tensor.fromFloat32(new Float32Array(32 * 32).fill(1), [1, 1, 32, 32]);
      try {
        await rejectsWith(engine.inpaint(image, { mask }), 'EARG', /mask must be a tensor of shape \[1, 1, 64, 64\]/);
      } finally {
        image.dispose();
        mask.dispose();
      }
    });

    it('a mask with no hole, or a face with no black pixel, is refused: nothing to inpaint', async function () {
      const image = toTensor(batchSlice(eager('image'), 1, 2));
      const mask = Tensor.fromFloat32(new Float32Array(64 * 64), [1, 1, 64, 64]);
      try {
        await rejectsWith(engine.inpaint(image, { mask }), 'EARG', /has no hole: nothing to inpaint/);
        await rejectsWith(engine.inpaint(image), 'EARG', /face 0 of the image has no hole/);
      } finally {
        image.dispose();
        mask.dispose();
      }
    });

    it('an all-hole mask runs: every pixel comes from the chain', async function () {
      const image = toTensor(batchSlice(eager('image'), 1, 2));
      const mask = Tensor.fromFloat32(new Float32Array(64 * 64).fill(1), [1, 1, 64, 64]);
      try {
        const result = await valuesOf(engine.inpaint(image, { mask, seed: 2, startStep: 4 }));
        const known = eager('image').data.subarray(3 * 64 * 64);
        let same = 0;
        for (let i = 0; i < result.length; i++) if (result[i] === known[i]) same++;
        assert.ok(same < result.length / 100);
        assert.ok(result.every((v) => v >= 0 && v <= 1));
      } finally {
        image.dispose();
        mask.dispose();
      }
    });

    it('gamma outside [0, 1] is refused', async function () {
      const image = toTensor(batchSlice(eager('image'), 0, 1));
      try {
        await rejectsWith(engine.inpaint(image, { gamma: 2 }), 'EARG', /gamma must be a number from 0 to 1/);
      } finally {
        image.dispose();
      }
    });

    it('each engine refuses the other task, saying which model directory it needs', async function () {
      const image = toTensor(batchSlice(eager('image'), 0, 1));
      const restoration = await DifFace.load(await smallModelDir());
      try {
        await rejectsWith(engine.restore(image), 'EARG', /holds networks for inpainting; load a restoration model directory/);
        await rejectsWith(restoration.inpaint(image), 'EARG', /holds networks for restoration; load an inpainting model directory/);
      } finally {
        image.dispose();
        restoration.dispose();
      }
    });
  });
});
