// CUDA: the same engine on a GPU. Skipped, with the reason, where libtorch has no CUDA or
// no GPU is visible; run on a GPU machine (see bench/gpu/pack.sh and bench/gpu/device.sh).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { DifFace, compileUNet, convertCheckpoints, versions } from 'difface';

import { runPython, tempDir, testPyDir } from './helpers/env';
import { maxAbsDiff, readNpy } from './helpers/npy';
import { toTensor } from './helpers/tensors';

const config = {
  unet_config: {
    image_size: 64, in_channels: 3, model_channels: 32, out_channels: 6, num_res_blocks: [1, 2, 1, 1],
    attention_resolutions: [16, 8], dropout: 0, channel_mult: [1, 2, 2, 4], num_head_channels: 16,
    use_scale_shift_norm: true,
  },
  backbone_config: {
    img_size: 16, patch_size: 1, in_chans: 3, embed_dim: 24, depths: [2, 2], num_heads: [2, 2], window_size: 8,
    mlp_ratio: 2, sf: 4, img_range: 1.0, upsampler: 'nearest+conv', resi_connection: '1conv', unshuffle: true,
    unshuffle_scale: 4,
  },
  diffusion_config: { steps: 1000, noise_schedule: 'linear', learn_sigma: true, timestep_respacing: 'ddim250' },
  sampling: { start_step: 100, eta: 0.5 },
};

function relativeError(got: Float32Array, want: Float32Array): number {
  let peak = 0;
  for (const v of want) peak = Math.max(peak, Math.abs(v));
  return maxAbsDiff(got, want) / peak;
}

describe('CUDA', function () {
  let dir: string;
  let models: string;
  const load = (name: string) => readNpy(path.join(dir, `${name}.npy`));
  const tensor = (name: string) => toTensor(load(name));

  before(async function () {
    const info = versions();
    if (!info.cuda) {
      // eslint-disable-next-line no-console
      console.log(`      skipped: the libtorch this addon runs on (${info.torch}) has no CUDA or sees no GPU`);
      this.skip();
    }
    dir = tempDir('cuda');
    const configFile = path.join(dir, 'input-config.json');
    fs.writeFileSync(configFile, JSON.stringify(config));
    runPython(path.join(testPyDir, 'eager_case.py'), [configFile, dir, '--seed', '4', '--side', '64', '--start', '10',
      '--eta', '0.5', '--threads', '4']);
    models = path.join(dir, 'models');
    await convertCheckpoints({
      unet: path.join(dir, 'unet.pth'), backbone: path.join(dir, 'backbone.pth'), config: path.join(dir, 'config.json'), out: models,
    });
  });

  it('draws what torch.manual_seed(seed) then torch.randn draw on the GPU', async function () {
    const engine = await DifFace.load(models, { device: 'cuda' });
    const expected = JSON.parse(runPython(path.join(testPyDir, 'torch_randn.py'), ['77', '3,1000', 'cuda'])) as number[];
    const drawn = await engine.generator(77).randn([3, 1000]);
    assert.equal(drawn.device, 'cuda:0');
    assert.deepEqual(Array.from(await drawn.toFloat32()), expected.map(Math.fround));
    drawn.dispose();
    engine.dispose();
  });

  it('float32 UNet and backbone calls match the CPU eager networks within 1e-4', async function () {
    const engine = await DifFace.load(models, { device: 'cuda', dtype: 'float32' });
    const out = await engine.unet(tensor('x'), Array.from(load('t').data));
    assert.equal(out.device, 'cuda:0');
    assert.ok(maxAbsDiff(await out.toFloat32(), load('unet_out').data) <= 1e-4);
    const estimate = await engine.estimate(tensor('lq'));
    assert.ok(maxAbsDiff(await estimate.toFloat32(), load('backbone_out').data) <= 1e-4);
    assert.ok(engine.memory().peakBytes > 0);
    out.dispose();
    estimate.dispose();
    engine.dispose();
  });

  it('a float32 reverse step matches the CPU engine within 1e-4', async function () {
    const cpu = await DifFace.load(models, { device: 'cpu' });
    const gpu = await DifFace.load(models, { device: 'cuda' });
    const x = tensor('x');
    const onCpu = await cpu.step(x, { index: 40, eta: 0, generator: cpu.generator(1) });
    const onGpu = await gpu.step(x, { index: 40, eta: 0, generator: gpu.generator(1) });
    assert.ok(maxAbsDiff(await onGpu.toFloat32(), await onCpu.toFloat32()) <= 1e-4);
    cpu.dispose();
    gpu.dispose();
  });

  it('CUDA graphs replay the chain that plain calls compute', async function () {
    const lq = tensor('lq');
    const results: Float32Array[] = [];
    for (const graphs of ['1', '0']) {
      process.env.DIFFACE_CUDA_GRAPHS = graphs;
      const engine = await DifFace.load(models, { device: 'cuda' });
      // The first restore warms up (and captures); the next two run in the steady state.
      for (let run = 0; run < 3; run++) {
        const restored = await engine.restore(lq, { seed: 5, startStep: 9 });
        if (run > 0) results.push(await restored.toFloat32());
        restored.dispose();
      }
      const report = engine.cudaGraphs();
      if (graphs === '1') {
        assert.deepEqual(report, { allowed: true, captured: 1, failed: false }, 'the steady state replays one captured graph');
      } else {
        assert.deepEqual(report, { allowed: false, captured: 0, failed: false });
      }
      engine.dispose();
    }
    delete process.env.DIFFACE_CUDA_GRAPHS;
    const [graphed, graphedAgain, plain] = results as [Float32Array, Float32Array, Float32Array];
    assert.ok(maxAbsDiff(graphedAgain, graphed) === 0, 'replays with the same seed give the same result');
    const difference = maxAbsDiff(graphed, plain);
    // eslint-disable-next-line no-console
    console.log(`      graphed and plain chains differ by ${difference}`);
    assert.ok(difference <= 1e-3);
  });

  // 11 and 8 significant bits: the UNet's output stays within a few percent of float32's.
  for (const [dtype, bound] of [['float16', 0.03], ['bfloat16', 0.1]] as const) {
    it(`${dtype} follows the float32 networks closely and restores to finite faces`, async function () {
      const reduced = await DifFace.load(models, { device: 'cuda', dtype });
      assert.equal(reduced.dtype, dtype);
      const out = await reduced.unet(tensor('x'), Array.from(load('t').data));
      const error = relativeError(await out.toFloat32(), load('unet_out').data);
      // eslint-disable-next-line no-console
      console.log(`      ${dtype}: UNet output differs from float32 by ${(100 * error).toFixed(3)}% of its range`);
      assert.ok(error < bound, `relative error ${error}`);
      const restored = await reduced.restore(tensor('lq'), { seed: 2, startStep: 12 });
      const values = await restored.toFloat32();
      assert.ok(values.every((v) => Number.isFinite(v) && v >= 0 && v <= 1));
      out.dispose();
      restored.dispose();
      reduced.dispose();
    });
  }

  it('a float16 UNet compiled ahead of time follows TorchScript within 1e-3 per call, and CUDA graphs capture it', async function () {
    if (!versions().compiledPackages) this.skip();
    this.timeout(900_000);
    // The restore below runs the UNet at the batch of lq: its package is what the graph captures.
    const batches = [...new Set([load('x').shape[0] as number, load('lq').shape[0] as number])].sort((a, b) => a - b);
    const copy = path.join(tempDir('cuda-compiled'), 'models');
    fs.cpSync(models, copy, { recursive: true });
    await compileUNet(copy, { device: 'cuda', dtype: 'float16', batches });
    const compiled = await DifFace.load(copy, { device: 'cuda', dtype: 'float16' });
    const plain = await DifFace.load(models, { device: 'cuda', dtype: 'float16', compiled: 'off' });
    try {
      assert.deepEqual(compiled.compiled(), { mode: 'auto', batches, notes: [] });
      const t = Array.from(load('t').data);
      const got = await (await compiled.unet(tensor('x'), t)).toFloat32();
      const want = await (await plain.unet(tensor('x'), t)).toFloat32();
      const difference = maxAbsDiff(got, want);
      // eslint-disable-next-line no-console
      console.log(`      compiled and TorchScript float16 UNet calls differ by ${difference}`);
      assert.ok(difference <= 1e-3, String(difference));
      const lq = tensor('lq');
      for (let run = 0; run < 2; run++) (await compiled.restore(lq, { seed: 5, startStep: 9 })).dispose();
      assert.deepEqual(compiled.cudaGraphs(), { allowed: true, captured: 1, failed: false });
    } finally {
      compiled.dispose();
      plain.dispose();
    }
  });
});
