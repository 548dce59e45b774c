// Many callers on one engine: concurrent calls share batches yet each gets what it would get
// alone; aborts before and during a batch; a full queue; the numbers the queue reports; and
// the garbage collector's safety net for tensors nobody disposed.
import { strict as assert } from 'node:assert';

import { AbortError, DifFace, DifFaceError, Tensor, demoModelsDir } from 'difface';
import type { RestoreOptions } from 'difface';

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
  const restore = (call: Call, options: RestoreOptions & { returnEstimate?: false } = {}) =>
    engine.restore(input(call.face), { seed: call.seed, eta: call.eta, ...options });

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
