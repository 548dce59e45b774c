// Many callers on one engine: concurrent calls share batches yet each gets what it would get
// alone; aborts before and during a batch; a full queue; the numbers the queue reports; and
// the garbage collector's safety net for tensors nobody disposed.
import { strict as assert } from 'node:assert';

import { AbortError, DifFace, DifFaceError, Tensor, demoModelsDir } from 'difface';
import type { RestoreOptions } from 'difface';

import { smallModelDir } from './helpers/fixtures';
import { facePlanes } from './helpers/images';
import { maxAbsDiff } from './helpers/npy';
import { valuesOf } from './helpers/tensors';

const RESTORE_TOLERANCE = 2e-3;

interface Call {
  face: number;
  seed: number;
  eta: number;
}

const calls: Call[] = [
  { face: 0, seed: 1, eta: 0.5 }, { face: 1, seed: 2, eta: 0 }, { face: 2, seed: 3, eta: 1 }, { face: 3, seed: 4, eta: 0.3 },
  { face: 0, seed: 5, eta: 0.5 }, { face: 1, seed: 6, eta: 0.8 }, { face: 2, seed: 7, eta: 0.5 }, { face: 3, seed: 8, eta: 0.1 },
];

describe('one engine, many callers', function () {
  let engine: DifFace;
  let faces: Float32Array[];
  let alone: Float32Array[];
  const input = (face: number) => Tensor.fromFloat32(faces[face] as Float32Array, [1, 3, 128, 128]);
  const restore = async (call: Call, options: RestoreOptions & { returnEstimate?: false } = {}) => {
    using face = input(call.face);
    return engine.restore(face, { seed: call.seed, eta: call.eta, ...options });
  };

  before(async function () {
    engine = await DifFace.load(demoModelsDir(), { maxBatch: 8, maxQueue: 16 });
    faces = await facePlanes(128);
    alone = [];
    for (const call of calls) alone.push(await valuesOf(restore(call)));
  });
  after(function () {
    engine?.dispose();
  });

  it('runs 8 concurrent restores as one batch, each equal to the same restore run alone', async function () {
    const before = engine.stats().batchSizes[8] ?? 0;
    const together = await Promise.all(calls.map((call) => valuesOf(restore(call))));
    assert.equal(engine.stats().batchSizes[8], before + 1, JSON.stringify(engine.stats().batchSizes));
    together.forEach((result, i) => {
      assert.ok(maxAbsDiff(result, alone[i] as Float32Array) <= RESTORE_TOLERANCE, `call ${i}`);
    });
  });

  it('rejects a call aborted while it waits at once, without waiting for the batch ahead', async function () {
    let firstDone = false;
    const first = engine.restore(input(0), { seed: 1, startStep: 60 }).then((t) => { firstDone = true; t.dispose(); });
    await new Promise((resolve) => setImmediate(resolve));
    const controller = new AbortController();
    const waiting = engine.restore(input(1), { seed: 2, signal: controller.signal });
    controller.abort();
    await assert.rejects(waiting, (error) => error instanceof AbortError);
    assert.equal(firstDone, false, 'the batch ahead is still running');
    await first;
  });

  it('drops a call aborted mid-loop at the next step; the rest of its batch finishes as if alone', async function () {
    const controller = new AbortController();
    let stepsSeen = 0;
    const aborting = engine.restore(input(2), {
      seed: 3, eta: 1, signal: controller.signal,
      onStep: ({ step }) => { stepsSeen = step; if (step === 4) controller.abort(); },
    });
    const others = [calls[0], calls[1]].map((call) => valuesOf(restore(call as Call)));
    await assert.rejects(aborting, (error) => error instanceof AbortError);
    assert.ok(stepsSeen >= 4 && stepsSeen <= 5, `stopped after step ${stepsSeen}`);
    const results = await Promise.all(others);
    assert.ok(maxAbsDiff(results[0] as Float32Array, alone[0] as Float32Array) <= RESTORE_TOLERANCE);
    assert.ok(maxAbsDiff(results[1] as Float32Array, alone[1] as Float32Array) <= RESTORE_TOLERANCE);
    assert.ok(maxAbsDiff(await valuesOf(restore(calls[2] as Call)), alone[2] as Float32Array) <= RESTORE_TOLERANCE, 'still usable');
  });

  it('stops only the call whose onStep threw, with what it threw', async function () {
    const problem = new Error('progress display failed');
    const failing = engine.restore(input(3), { seed: 9, onStep: () => { throw problem; } });
    const fine = valuesOf(restore(calls[3] as Call));
    await assert.rejects(failing, (error) => error === problem);
    assert.ok(maxAbsDiff(await fine, alone[3] as Float32Array) <= RESTORE_TOLERANCE);
  });

  it('takes the faces when restore() is called: disposing them at once neither crashes nor stalls', async function () {
    const lq = input(0);
    const call = calls[0] as Call;
    const pending = engine.restore(lq, { seed: call.seed, eta: call.eta });
    lq.dispose();
    assert.ok(maxAbsDiff(await valuesOf(pending), alone[0] as Float32Array) <= RESTORE_TOLERANCE);
    const next = await valuesOf(restore(calls[1] as Call));
    assert.ok(maxAbsDiff(next, alone[1] as Float32Array) <= RESTORE_TOLERANCE);
  });

  it('fails only the batch a native error comes from, and goes on with the next', async function () {
    // The demo backbone needs sides divisible by its window: a 7 x 7 face fails inside libtorch.
    using odd = Tensor.fromFloat32(new Float32Array(3 * 7 * 7), [1, 3, 7, 7]);
    const failing = engine.restore(odd, { seed: 1 });
    const fine = [calls[0], calls[1]].map((call) => valuesOf(restore(call as Call)));
    await assert.rejects(failing, (error) => error instanceof DifFaceError && error.code === 'ETORCH');
    const results = await Promise.all(fine);
    assert.ok(maxAbsDiff(results[0] as Float32Array, alone[0] as Float32Array) <= RESTORE_TOLERANCE);
    assert.ok(maxAbsDiff(results[1] as Float32Array, alone[1] as Float32Array) <= RESTORE_TOLERANCE);
    assert.equal(engine.stats().waiting, 0);
    assert.ok(maxAbsDiff(await valuesOf(restore(calls[2] as Call)), alone[2] as Float32Array) <= RESTORE_TOLERANCE, 'still usable');
  });

  it('refuses calls at once past maxQueue, with EQUEUEFULL', async function () {
    const single = await DifFace.load(demoModelsDir(), { maxBatch: 1, maxQueue: 2 });
    const running = single.restore(input(0), { seed: 1, startStep: 30 });
    await new Promise((resolve) => setImmediate(resolve));
    const queued = [single.restore(input(1), { seed: 2 }), single.restore(input(2), { seed: 3 })];
    assert.equal(single.stats().waiting, 2);
    await assert.rejects(single.restore(input(3), { seed: 4 }), (error) =>
      error instanceof DifFaceError && error.code === 'EQUEUEFULL' && /queue is full \(2 requests waiting\)/.test(error.message));
    for (const tensor of await Promise.all([running, ...queued])) tensor.dispose();
    const stats = single.stats();
    assert.equal(stats.rejected, 1);
    assert.equal(stats.completed, 3);
    assert.deepEqual(stats.batchSizes, { 1: 3 });
    assert.equal(stats.latency.count, 3);
    assert.ok(stats.latency.p90 >= stats.latency.p50 && stats.latency.p50 > 0);
    single.dispose();
  });

  it('frees the networks of an engine nobody disposed once the collector takes it, while its generator lives on', async function () {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc === undefined) this.skip();
    // Engines disposed by earlier tests are freed on their workers, a moment later.
    for (let round = 0; round < 10; round++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const before = DifFace.liveEngines();
    const generator = await (async () => (await DifFace.load(demoModelsDir())).generator(5))();
    assert.equal(DifFace.liveEngines(), before + 1);
    for (let round = 0; round < 100 && DifFace.liveEngines() > before; round++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(DifFace.liveEngines(), before, 'the collected engine freed its networks');
    const drawn = await valuesOf(generator.randn([4]));
    assert.equal(drawn.length, 4);
  });

  it('frees a tensor nobody disposed when the garbage collector takes it', async function () {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc === undefined) this.skip();
    const settleGarbage = async () => {
      for (let round = 0; round < 5; round++) {
        gc();
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    };
    await settleGarbage();
    const before = Tensor.stats();
    (() => {
      for (let i = 0; i < 4; i++) Tensor.fromFloat32(new Float32Array(1024), [1024]);
    })();
    assert.equal(Tensor.stats().count, before.count + 4);
    for (let round = 0; round < 50 && Tensor.stats().count > before.count; round++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(Tensor.stats().count, before.count);
    assert.equal(Tensor.stats().bytes, before.bytes);
    assert.ok(Tensor.stats().collected >= before.collected + 4);
  });
});

// The demo backbone passes its input through, which hides how a batch lays out its estimates.
// The small reference checkpoints have a real SwinIR, and a chain on random weights magnifies
// any wrong draw at once, so one or two steps show whether each request draws what it draws alone.
describe('one engine, many callers, on the small reference checkpoints', function () {
  const DRAW_TOLERANCE = 1e-4;
  let engine: DifFace;
  let faces: Float32Array[];

  before(async function () {
    engine = await DifFace.load(await smallModelDir(), { maxBatch: 8 });
    faces = await facePlanes(64);
  });
  after(function () {
    engine?.dispose();
  });

  for (const startStep of [1, 2]) {
    it(`gives 8 single-face restores in one batch what each gets alone, within 1e-4, after ${startStep} step(s)`, async function () {
      const restore = async (i: number): Promise<Float32Array> => {
        using face = Tensor.fromFloat32(faces[i % faces.length] as Float32Array, [1, 3, 64, 64]);
        return valuesOf(engine.restore(face, { seed: 1000 + i, eta: 0.5, startStep }));
      };
      const indices = [0, 1, 2, 3, 4, 5, 6, 7];
      const alone: Float32Array[] = [];
      for (const i of indices) alone.push(await restore(i));
      const batches = engine.stats().batchSizes[8] ?? 0;
      const together = await Promise.all(indices.map(restore));
      assert.equal(engine.stats().batchSizes[8], batches + 1, 'the 8 shared one batch');
      for (const i of indices) {
        const difference = maxAbsDiff(together[i] as Float32Array, alone[i] as Float32Array);
        assert.ok(difference <= DRAW_TOLERANCE, `restore ${i}: ${difference}`);
      }
    });
  }
});
