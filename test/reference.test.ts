// The engine against the published implementation on the small reference checkpoints
// (test/fixtures/reference/small; where they came from: test/fixtures/README.md).
//
// A network call and the transition agree across processors within 1e-5, so they are held to
// the stored published tensors. A chain of 100 steps on random weights is chaotic: on another
// processor the published code itself lands up to 0.08 away from the stored chain. So one
// reverse step is held to the stored published step, and whole chains to the project's eager
// sampler run on this machine in this test run (test/py/eager_reference.py), which is itself
// held to the stored published step here.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { DifFace, Tensor } from 'difface';

import { runPython, smallReferenceDir, tempDir, testPyDir } from './helpers/env';
import { smallModelDir } from './helpers/fixtures';
import { Array32, batchSlice, concatBatches, maxAbsDiff, readNpy } from './helpers/npy';
import { toTensor, valuesOf } from './helpers/tensors';

const CALL_TOLERANCE = 1e-4;
const RESTORE_TOLERANCE = 2e-3;

interface Reference {
  sampling: { start_step: number; eta: number; seed_eta0: number; seed_eta: number; trajectory_steps_saved: number[] };
}

function stored(name: string): Array32 {
  return readNpy(path.join(smallReferenceDir, `${name}.npy`));
}

describe('the published implementation (small reference checkpoints)', function () {
  let engine: DifFace;
  let eagerDir: string;
  let input: Tensor;
  const reference = JSON.parse(fs.readFileSync(path.join(smallReferenceDir, 'reference.json'), 'utf8')) as Reference;
  const { start_step: startStep, seed_eta0: seedEta0, seed_eta: seedEta, eta } = reference.sampling;
  const lq = stored('lq');
  const eager = (name: string): Array32 => readNpy(path.join(eagerDir, `${name}.npy`));

  before(async function () {
    engine = await DifFace.load(await smallModelDir());
    input = toTensor(lq);
    // The same threads as the engine: libtorch splits its sums by thread, so another count rounds differently.
    eagerDir = tempDir('eager');
    runPython(path.join(testPyDir, 'eager_reference.py'), [smallReferenceDir, eagerDir, '--threads', String(engine.threads)]);
  });
  after(function () {
    input?.dispose();
    engine?.dispose();
  });

  describe('held to the stored published tensors', function () {
    it('the model card carries the reference sampling settings', function () {
      assert.equal(engine.defaults.startStep, startStep);
      assert.equal(engine.defaults.eta, eta);
      assert.equal(engine.timesteps.length, 250);
      assert.equal(engine.timesteps[99], 396);
    });

    it('one UNet call matches unet_out within 1e-4', async function () {
      const t = Array.from(stored('unet_t').data);
      using x = toTensor(stored('unet_x'));
      const out = await valuesOf(engine.unet(x, t));
      assert.ok(maxAbsDiff(out, stored('unet_out').data) <= CALL_TOLERANCE);
    });

    it('the backbone matches backbone_out within 1e-4', async function () {
      const out = await valuesOf(engine.estimate(input));
      assert.ok(maxAbsDiff(out, stored('backbone_out').data) <= CALL_TOLERANCE);
    });

    for (const [name, seedKey] of [['xt_eta0', 'seed_eta0'], ['xt_eta', 'seed_eta']] as const) {
      it(`the transition reproduces ${name} within 1e-4`, async function () {
        using estimate = await engine.estimate(input);
        const xN = engine.transition(estimate, { generator: engine.generator(reference.sampling[seedKey]) });
        assert.ok(maxAbsDiff(await valuesOf(xN), stored(name).data) <= CALL_TOLERANCE);
      });
    }

    it('one eta = 0 step from the stored x_N reproduces the stored first step within 1e-4', async function () {
      using xN = toTensor(stored('xt_eta0'));
      const next = engine.step(xN, { index: startStep - 1, eta: 0, generator: engine.generator(0) });
      assert.ok(maxAbsDiff(await valuesOf(next), stored('traj_eta0_step0').data) <= CALL_TOLERANCE);
    });

    it('so does the eager sampler the chains below are held to', function () {
      assert.ok(maxAbsDiff(eager('step_eta0').data, stored('traj_eta0_step0').data) <= CALL_TOLERANCE);
    });

    it('one export serves batches of 1 and 3', async function () {
      const x = stored('unet_x');
      const out = stored('unet_out');
      const t = Array.from(stored('unet_t').data);
      using one = toTensor(batchSlice(x, 0, 1));
      const first = await valuesOf(engine.unet(one, [t[0] as number]));
      assert.ok(maxAbsDiff(first, batchSlice(out, 0, 1).data) <= CALL_TOLERANCE);
      using three = toTensor(concatBatches(batchSlice(x, 1, 2), batchSlice(x, 0, 1), batchSlice(x, 1, 2)));
      const got = await valuesOf(engine.unet(three, [t[1] as number, t[0] as number, t[1] as number]));
      const want = concatBatches(batchSlice(out, 1, 2), batchSlice(out, 0, 1), batchSlice(out, 1, 2));
      assert.ok(maxAbsDiff(got, want.data) <= CALL_TOLERANCE);

      using faces = toTensor(concatBatches(lq, batchSlice(lq, 0, 1)));
      const estimates = await valuesOf(engine.estimate(faces));
      const backbone = stored('backbone_out');
      assert.ok(maxAbsDiff(estimates, concatBatches(backbone, batchSlice(backbone, 0, 1)).data) <= CALL_TOLERANCE);
      using face = toTensor(batchSlice(lq, 1, 2));
      const single = await valuesOf(engine.estimate(face));
      assert.ok(maxAbsDiff(single, batchSlice(backbone, 1, 2).data) <= CALL_TOLERANCE);
    });
  });

  describe('held to the eager sampler on this machine', function () {
    it('the transition and one eta step draw what a generator seeded once draws, within 1e-4', async function () {
      const generator = engine.generator(seedEta);
      using estimate = await engine.estimate(input);
      using xN = await engine.transition(estimate, { generator });
      const next = engine.step(xN, { index: startStep - 1, eta, generator });
      assert.ok(maxAbsDiff(await valuesOf(next), eager('first_step_eta').data) <= CALL_TOLERANCE);
    });

    it('step() by step() follows the eager eta = 0 chain at the saved steps, within 2e-3', async function () {
      const generator = engine.generator(seedEta0);
      let x: Tensor;
      {
        using estimate = await engine.estimate(input);
        x = await engine.transition(estimate, { startStep, generator });
      }
      const saved = new Set(reference.sampling.trajectory_steps_saved);
      let checked = 0;
      for (let done = 0, index = startStep - 1; index >= 0; done++, index--) {
        const next = await engine.step(x, { index, eta: 0, generator });
        x.dispose();
        x = next;
        if (saved.has(done)) {
          assert.ok(maxAbsDiff(await x.toFloat32(), eager(`traj_eta0_step${done}`).data) <= RESTORE_TOLERANCE, `step ${done}`);
          checked++;
        }
      }
      x.dispose();
      assert.equal(checked, saved.size);
    });

    for (const [name, seed, stepEta] of [['restored_eta0', seedEta0, 0], ['restored_eta', seedEta, eta]] as const) {
      it(`restore() with eta = ${stepEta} matches the eager restore within 2e-3`, async function () {
        const restored = await engine.restore(input, { eta: stepEta, seed });
        assert.deepEqual(restored.shape, [2, 3, 64, 64]);
        assert.ok(maxAbsDiff(await valuesOf(restored), eager(name).data) <= RESTORE_TOLERANCE);
      });
    }

    it('estimate, transition and reverse called apart equal restore() with the same seed', async function () {
      const generator = engine.generator(seedEta);
      using estimate = await engine.estimate(input);
      using xN = await engine.transition(estimate, { generator });
      const apart = await valuesOf(engine.reverse(xN, { generator }));
      const together = await valuesOf(engine.restore(input, { seed: seedEta }));
      assert.ok(maxAbsDiff(apart, together) <= RESTORE_TOLERANCE);
      assert.ok(maxAbsDiff(apart, eager('restored_eta').data) <= RESTORE_TOLERANCE);
    });
  });
});
