// The engine against the published implementation's own outputs on the small reference
// checkpoints (../shared/reference/small), with the tolerances of ../shared/reference/README.md:
// single network calls and the transition against the stored tensors; full chains, which are
// chaotic and differ between processors and libtorch versions, against the eager sampler run
// here on the same checkpoints (test/py/reference_chains.py).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { DifFace } from 'difface';

import { runPython, smallReferenceDir, tempDir, testPyDir } from './helpers/env';
import { smallModelDir } from './helpers/fixtures';
import { Array32, batchSlice, concatBatches, maxAbsDiff, readNpy } from './helpers/npy';
import { toTensor, valuesOf } from './helpers/tensors';

const CALL_TOLERANCE = 1e-4;
const RESTORE_TOLERANCE = 2e-3;
// The same on both sides: the thread count decides how some kernels split their sums.
const THREADS = 2;

interface Reference {
  sampling: { start_step: number; eta: number; seed_eta0: number; seed_eta: number; trajectory_steps_saved: number[] };
}

function load(name: string): Array32 {
  return readNpy(path.join(smallReferenceDir, `${name}.npy`));
}

let chainsDir: string | undefined;

/** A full chain of the eager sampler on this machine (restored_eta0, restored_eta, traj_eta0_stepN). */
function eagerChain(name: string): Array32 {
  if (chainsDir === undefined) {
    chainsDir = tempDir('chains');
    runPython(path.join(testPyDir, 'reference_chains.py'), [smallReferenceDir, chainsDir, '--threads', String(THREADS)]);
  }
  return readNpy(path.join(chainsDir, `${name}.npy`));
}

describe('reference tensors of the published implementation (small configuration)', function () {
  let engine: DifFace;
  const reference = JSON.parse(fs.readFileSync(path.join(smallReferenceDir, 'reference.json'), 'utf8')) as Reference;
  const lq = load('lq');

  before(async function () {
    engine = await DifFace.load(await smallModelDir(), { threads: THREADS });
  });
  after(function () {
    engine?.dispose();
  });

  it('the model card carries the reference sampling settings', function () {
    assert.equal(engine.defaults.startStep, reference.sampling.start_step);
    assert.equal(engine.defaults.eta, reference.sampling.eta);
    assert.equal(engine.timesteps.length, 250);
    assert.equal(engine.timesteps[99], 396);
  });

  it('one UNet call matches unet_out within 1e-4', async function () {
    const x = load('unet_x');
    const t = Array.from(load('unet_t').data);
    const out = await valuesOf(await engine.unet(toTensor(x), t));
    assert.ok(maxAbsDiff(out, load('unet_out').data) <= CALL_TOLERANCE);
  });

  it('the backbone matches backbone_out within 1e-4', async function () {
    const out = await valuesOf(await engine.estimate(toTensor(lq)));
    assert.ok(maxAbsDiff(out, load('backbone_out').data) <= CALL_TOLERANCE);
  });

  for (const [name, seedKey] of [['xt_eta0', 'seed_eta0'], ['xt_eta', 'seed_eta']] as const) {
    it(`the transition reproduces ${name} within 1e-4`, async function () {
      const estimate = await engine.estimate(toTensor(lq));
      const xN = await engine.transition(estimate, { generator: engine.generator(reference.sampling[seedKey]) });
      estimate.dispose();
      assert.ok(maxAbsDiff(await valuesOf(xN), load(name).data) <= CALL_TOLERANCE);
    });
  }

  it('step() by step() follows the eager eta = 0 trajectory at steps 0, 50 and 99', async function () {
    const generator = engine.generator(reference.sampling.seed_eta0);
    const estimate = await engine.estimate(toTensor(lq));
    let x = await engine.transition(estimate, { startStep: 100, generator });
    estimate.dispose();
    const saved = new Set(reference.sampling.trajectory_steps_saved);
    let checked = 0;
    for (let done = 0, index = 99; index >= 0; done++, index--) {
      const next = await engine.step(x, { index, eta: 0, generator });
      x.dispose();
      x = next;
      if (saved.has(done)) {
        const got = await x.toFloat32();
        assert.ok(maxAbsDiff(got, eagerChain(`traj_eta0_step${done}`).data) <= RESTORE_TOLERANCE, `step ${done}`);
        checked++;
      }
    }
    x.dispose();
    assert.equal(checked, 3);
  });

  it('restore() matches the eager sampler at eta = 0 within 2e-3', async function () {
    const restored = await engine.restore(toTensor(lq), { eta: 0, seed: reference.sampling.seed_eta0 });
    assert.deepEqual(restored.shape, [2, 3, 64, 64]);
    assert.ok(maxAbsDiff(await valuesOf(restored), eagerChain('restored_eta0').data) <= RESTORE_TOLERANCE);
  });

  it('restore() matches the eager sampler at eta = 0.5 within 2e-3', async function () {
    const restored = await engine.restore(toTensor(lq), { seed: reference.sampling.seed_eta });
    assert.ok(maxAbsDiff(await valuesOf(restored), eagerChain('restored_eta').data) <= RESTORE_TOLERANCE);
  });

  it('estimate, transition and reverse called apart equal restore() with the same seed', async function () {
    const seed = reference.sampling.seed_eta;
    const generator = engine.generator(seed);
    const estimate = await engine.estimate(toTensor(lq));
    const xN = await engine.transition(estimate, { generator });
    const restored = await engine.reverse(xN, { generator });
    estimate.dispose();
    xN.dispose();
    assert.ok(maxAbsDiff(await valuesOf(restored), eagerChain('restored_eta').data) <= RESTORE_TOLERANCE);
  });

  it('one export serves batches of 1 and 3', async function () {
    const x = load('unet_x');
    const out = load('unet_out');
    const t = Array.from(load('unet_t').data);
    const first = await valuesOf(await engine.unet(toTensor(batchSlice(x, 0, 1)), [t[0] as number]));
    assert.ok(maxAbsDiff(first, batchSlice(out, 0, 1).data) <= CALL_TOLERANCE);
    const three = concatBatches(batchSlice(x, 1, 2), batchSlice(x, 0, 1), batchSlice(x, 1, 2));
    const got = await valuesOf(await engine.unet(toTensor(three), [t[1] as number, t[0] as number, t[1] as number]));
    const want = concatBatches(batchSlice(out, 1, 2), batchSlice(out, 0, 1), batchSlice(out, 1, 2));
    assert.ok(maxAbsDiff(got, want.data) <= CALL_TOLERANCE);

    const estimates = await valuesOf(await engine.estimate(toTensor(concatBatches(lq, batchSlice(lq, 0, 1)))));
    const backbone = load('backbone_out');
    assert.ok(maxAbsDiff(estimates, concatBatches(backbone, batchSlice(backbone, 0, 1)).data) <= CALL_TOLERANCE);
    const single = await valuesOf(await engine.estimate(toTensor(batchSlice(lq, 1, 2))));
    assert.ok(maxAbsDiff(single, batchSlice(backbone, 1, 2).data) <= CALL_TOLERANCE);
  });
});
