// The TypeScript API around the engine: tensors as resources, generators, options,
// cancellation, the event loop, and errors.
import { strict as assert } from 'node:assert';
import * as path from 'node:path';

import { AbortError, DifFace, DifFaceError, Tensor, readModelCard, versions } from 'difface';

import { repoRoot, runPython, smallReferenceDir, testPyDir } from './helpers/env';
import { rejectsWith } from './helpers/errors';
import { smallModelDir } from './helpers/fixtures';
import { readNpy } from './helpers/npy';
import { toTensor, valuesOf } from './helpers/tensors';

function lqTensor(): Tensor<'float32'> {
  return toTensor(readNpy(path.join(smallReferenceDir, 'lq.npy')));
}

function throwsWith(run: () => unknown, code: string): DifFaceError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof DifFaceError, `expected a DifFaceError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return error;
  }
  assert.fail(`expected a throw with ${code}`);
}

describe('tensors', function () {
  it('hold their shape, dtype, device and values', async function () {
    const data = Float32Array.from({ length: 24 }, (_, i) => i / 7);
    const t = Tensor.fromFloat32(data, [2, 3, 4] as const);
    const shape: readonly [2, 3, 4] = t.shape;
    assert.deepEqual(shape, [2, 3, 4]);
    assert.equal(t.dtype, 'float32');
    assert.equal(t.device, 'cpu');
    assert.equal(t.size, 24);
    assert.deepEqual(await t.toFloat32(), data);
    t.dispose();
  });

  it('copy their input, so later changes to it do not leak in', async function () {
    const data = new Float32Array([1, 2, 3]);
    const t = Tensor.fromFloat32(data, [3]);
    data[0] = 100;
    assert.deepEqual(Array.from(await t.toFloat32()), [1, 2, 3]);
    t.dispose();
  });

  it('are counted while alive, with their bytes, and dispose idempotently', function () {
    const before = Tensor.stats();
    const t = Tensor.fromFloat32(new Float32Array(1000), [10, 100]);
    assert.deepEqual(Tensor.stats(), { count: before.count + 1, bytes: before.bytes + 4000, collected: before.collected });
    t.dispose();
    t.dispose();
    assert.deepEqual(Tensor.stats(), before);
    assert.equal(t.disposed, true);
  });

  it('work with `using`', function () {
    const before = Tensor.stats().count;
    {
      using t = Tensor.fromFloat32(new Float32Array(4), [4]);
      assert.equal(Tensor.stats().count, before + 1);
      assert.equal(t.size, 4);
    }
    assert.equal(Tensor.stats().count, before);
  });

  it('refuse use after dispose with EDISPOSED', async function () {
    const t = Tensor.fromFloat32(new Float32Array(4), [4]);
    t.dispose();
    const error = throwsWith(() => t.shape, 'EDISPOSED');
    assert.match(error.message, /disposed/);
    await rejectsWith(t.toFloat32(), 'EDISPOSED');
  });

  it('reject data that does not fit the shape', function () {
    throwsWith(() => Tensor.fromFloat32(new Float32Array(5), [2, 3]), 'EARG');
    throwsWith(() => Tensor.fromFloat32(new Float32Array(6), [2, -3]), 'EARG');
    throwsWith(() => Tensor.fromFloat32([1, 2] as unknown as Float32Array, [2]), 'EARG');
  });
});

describe('engine API', function () {
  let engine: DifFace;
  before(async function () {
    engine = await DifFace.load(await smallModelDir(), { threads: 2 });
  });
  after(function () {
    engine?.dispose();
  });

  it('reports the libtorch it runs on', function () {
    const info = versions();
    assert.match(info.torch, /^\d+\.\d+/);
    assert.equal(typeof info.cuda, 'boolean');
    assert.equal(info.binary, info.addon.includes(`${path.sep}prebuilds${path.sep}`) ? 'prebuilt' : 'built');
    assert.equal(engine.device, 'cpu');
    assert.equal(engine.dtype, 'float32');
  });

  it('draws what torch.manual_seed(seed) then torch.randn draws', async function () {
    for (const [seed, shape] of [[0, [5]], [20221217, [2, 3, 17]]] as const) {
      const expected = JSON.parse(runPython(path.join(testPyDir, 'torch_randn.py'), [String(seed), shape.join(',')])) as number[];
      const drawn = await engine.generator(seed).randn(shape);
      assert.deepEqual(drawn.shape, shape);
      assert.deepEqual(Array.from(await drawn.toFloat32()), expected.map(Math.fround));
      drawn.dispose();
    }
    assert.equal(engine.generator(7n).seed, 7n);
  });

  it('takes a step\'s noise as given, and returns the x̂₀ it predicted, as DDIM eq. 12 and 16 compute them', async function () {
    const index = 99;
    const eta = 0.5;
    using x = toTensor(readNpy(path.join(smallReferenceDir, 'xt_eta.npy')));
    using noise = await engine.generator(7).randn(x.shape);
    const drawn = await engine.step(x, { index, eta, generator: engine.generator(7), returnPredicted: true });
    const given = await engine.step(x, { index, eta, noise, returnPredicted: true });
    const [drawnPrevious, givenPrevious, drawnX0, givenX0] = await Promise.all(
      [drawn.previous, given.previous, drawn.predictedX0, given.predictedX0].map((t) => valuesOf(t))) as
      [Float32Array, Float32Array, Float32Array, Float32Array];
    assert.deepEqual(givenPrevious, drawnPrevious, 'a draw from a generator is the same noise given');
    assert.deepEqual(givenX0, drawnX0);

    // The same step in float64 from the raw UNet output and the schedule.
    const t = engine.timesteps[index] as number;
    const eps = await valuesOf(engine.unet(x, [t, t]));
    const values = await x.toFloat32();
    const z = await noise.toFloat32();
    const abar = engine.alphaBar[index] as number;
    const abarPrev = engine.alphaBar[index - 1] as number;
    const sigma = eta * Math.sqrt((1 - abarPrev) / (1 - abar)) * Math.sqrt(1 - abar / abarPrev);
    const plane = values.length / 2;
    let x0Error = 0;
    let previousError = 0;
    for (let i = 0; i < values.length; i++) {
      const item = Math.floor(i / plane);
      const e = eps[item * 2 * plane + (i % plane)] as number;
      const x0 = Math.min(1, Math.max(-1, Math.sqrt(1 / abar) * (values[i] as number) - Math.sqrt(1 / abar - 1) * e));
      const previous = Math.sqrt(abarPrev) * x0 + Math.sqrt(1 - abarPrev - sigma * sigma) * e + sigma * (z[i] as number);
      x0Error = Math.max(x0Error, Math.abs(x0 - (givenX0[i] as number)));
      previousError = Math.max(previousError, Math.abs(previous - (givenPrevious[i] as number)));
    }
    assert.ok(x0Error <= 1e-5 && previousError <= 1e-5, `x̂₀ off by ${x0Error}, x_{t-1} by ${previousError}`);
  });

  it('keeps the event loop free while a restore runs', async function () {
    let ticks = 0;
    const timer = setInterval(() => { ticks++; }, 10);
    const started = Date.now();
    const restored = await engine.restore(lqTensor(), { seed: 1, startStep: 30 });
    const elapsed = Date.now() - started;
    clearInterval(timer);
    restored.dispose();
    // A blocked loop would tick at most once or twice.
    assert.ok(ticks >= Math.floor(elapsed / 10 / 4), `${ticks} ticks in ${elapsed} ms`);
    assert.ok(ticks >= 5, `${ticks} ticks in ${elapsed} ms`);
  });

  it('reports every step, in order, through onStep', async function () {
    const steps: number[] = [];
    const timesteps: number[] = [];
    const restored = await engine.restore(lqTensor(), {
      seed: 3, startStep: 12, onStep: (p) => { steps.push(p.step); timesteps.push(p.timestep); assert.equal(p.total, 12); },
    });
    restored.dispose();
    assert.deepEqual(steps, Array.from({ length: 12 }, (_, i) => i + 1));
    assert.deepEqual(timesteps, engine.timesteps.slice(0, 12).reverse());
  });

  it('stops between steps when aborted, and stays usable', async function () {
    const controller = new AbortController();
    let seen = 0;
    const lq = lqTensor();
    // Live tensors plus those the collector freed meanwhile: tensors earlier tests dropped may go at any moment.
    const accounted = (): number => Tensor.stats().count + Tensor.stats().collected;
    const before = accounted();
    const error = await rejectsWith(engine.restore(lq, {
      seed: 1, signal: controller.signal, onStep: (p) => { seen = p.step; if (p.step === 5) controller.abort(); },
    }), 'EABORT');
    assert.ok(error instanceof AbortError);
    assert.equal(error.name, 'AbortError');
    assert.ok(seen >= 5 && seen <= 6, `stopped after step ${seen}`);
    assert.equal(accounted(), before, 'an aborted call leaves no tensor behind');
    const again = await engine.restore(lq, { seed: 1, startStep: 3 });
    lq.dispose();
    assert.deepEqual(again.shape, [2, 3, 64, 64]);
    again.dispose();
  });

  it('rejects at once when the signal is already aborted', async function () {
    const controller = new AbortController();
    controller.abort(new Error('not needed any more'));
    let steps = 0;
    const error = await rejectsWith(engine.restore(lqTensor(), { signal: controller.signal, onStep: () => { steps++; } }), 'EABORT');
    assert.equal((error.cause as Error).message, 'not needed any more');
    assert.equal(steps, 0);
  });

  it('stops with the error an onStep callback throws', async function () {
    const problem = new Error('callback failed');
    await assert.rejects(engine.restore(lqTensor(), { seed: 1, onStep: () => { throw problem; } }), (e) => e === problem);
  });

  it('checks every option with a message that names it', async function () {
    const lq = lqTensor();
    const generator = engine.generator(1);
    assert.match((await rejectsWith(engine.restore(lq, { eta: 1.5 }), 'EARG')).message, /eta/);
    assert.match((await rejectsWith(engine.restore(lq, { startStep: 250 }), 'EARG')).message, /startStep .*249/);
    assert.match((await rejectsWith(engine.restore(lq, { startStep: 0 }), 'EARG')).message, /startStep/);
    assert.match((await rejectsWith(engine.restore(lq, { seed: -1 }), 'EARG')).message, /seed/);
    assert.match((await rejectsWith(engine.reverse(lq, {} as never), 'EARG')).message, /generator/);
    assert.match((await rejectsWith(engine.step(lq, { index: 250, generator }), 'EARG')).message, /index/);
    assert.match((await rejectsWith(engine.unet(lq, [1]), 'EARG')).message, /an array of 2 finite timesteps, one per batch item of x, got \[1\]/);
    assert.match((await rejectsWith(engine.step(lq, { index: 1 } as never), 'EARG')).message, /generator must be a Generator/);
    const wrong = Tensor.fromFloat32(new Float32Array(2 * 4 * 8 * 8), [2, 4, 8, 8]);
    assert.match((await rejectsWith(engine.estimate(wrong), 'EARG')).message, /\[batch >= 1, 3, height, width\]/);
    using small = Tensor.fromFloat32(new Float32Array(2 * 3 * 8 * 8), [2, 3, 8, 8]);
    assert.match((await rejectsWith(engine.step(lq, { index: 1, noise: small }), 'EARG')).message, /noise must have the shape of x, \[2, 3, 64, 64\], got \[2, 3, 8, 8\]/);
    wrong.dispose();
    lq.dispose();
    await rejectsWith(engine.estimate(lq), 'EDISPOSED');
  });

  it('turns libtorch failures into ETORCH errors, and keeps working', async function () {
    // The backbone needs sizes divisible by its unshuffle factor times its window.
    const odd = Tensor.fromFloat32(new Float32Array(3 * 7 * 7), [1, 3, 7, 7]);
    const error = await rejectsWith(engine.estimate(odd), 'ETORCH');
    assert.match(error.message, /^libtorch: .*invalid for input of size/);
    assert.match(error.detail ?? '', /TorchScript/);
    odd.dispose();
    const fine = await engine.estimate(lqTensor());
    fine.dispose();
  });

  it('refuses another native object where a cancel token belongs, instead of misreading it', async function () {
    // Below the TypeScript API, which always passes real tokens: the addon itself must check.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const addon = require(path.join(repoRoot, 'dist', 'native.js')).native();
    const dir = await smallModelDir();
    const card = readModelCard(dir);
    const raw = await addon.loadEngine({
      unet: path.join(dir, card.unet.file), backbone: path.join(dir, card.backbone.file), device: 'cpu', dtype: 'float32',
      threads: 1, schedule: card.schedule,
    });
    const x = addon.NativeTensor.fromFloat32(new Float32Array(3 * 64 * 64), [1, 3, 64, 64]);
    const generator = raw.generator(1);
    for (const wrong of [x, generator]) {
      assert.throws(() => raw.reverse(x, 5, 0, generator, undefined, wrong),
        (error: Error & { code?: string }) => error.code === 'EARG' && /cancel token must be a NativeCancelToken/.test(error.message));
    }
    x.dispose();
    raw.dispose();
  });

  it('refuses devices and dtypes this build cannot use', async function () {
    const dir = await smallModelDir();
    await rejectsWith(DifFace.load(dir, { device: 'gpu' as never }), 'EARG');
    await rejectsWith(DifFace.load(dir, { dtype: 'float16' }), 'EARG');
    await rejectsWith(DifFace.load(dir, { threads: 0 }), 'EARG');
    if (!versions().cuda) {
      const error = await rejectsWith(DifFace.load(dir, { device: 'cuda' }), 'EDEVICE');
      assert.match(error.message, /CUDA/);
    }
  });
});

describe('engine dispose', function () {
  it('stops a running call, frees the engine, and refuses later calls', async function () {
    const engine = await DifFace.load(await smallModelDir());
    let steps = 0;
    const running = engine.restore(lqTensor(), { seed: 1, onStep: (p) => { steps = p.step; if (p.step === 2) engine.dispose(); } });
    await rejectsWith(running, 'EABORT');
    assert.ok(steps <= 3);
    assert.equal(engine.disposed, true);
    throwsWith(() => engine.generator(1), 'EDISPOSED');
    await rejectsWith(engine.estimate(lqTensor()), 'EDISPOSED');
    engine.dispose();
  });
});
