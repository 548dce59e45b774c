// Configurations and checkpoints the reference tensors do not cover: other depths, widths,
// window sizes, image sizes, schedules, respacings and checkpoint styles. The engine must
// compute what this project's eager networks and eager sampler compute on the same weights.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { DifFace, Tensor, convertCheckpoints } from 'difface';

import { runPython, tempDir, testPyDir } from './helpers/env';
import { maxAbsDiff, readNpy } from './helpers/npy';

interface Case {
  name: string;
  style: 'plain' | 'ddp' | 'wrapped' | 'ddp-wrapped';
  side: number;
  start: number;
  eta: number;
  config: Record<string, unknown>;
}

const cases: Case[] = [
  {
    name: 'two levels, int num_res_blocks, backbone at another size than built for, no scale-shift, eps only, heads by count, cosine ddim50, 3conv backbone, DDP names',
    style: 'ddp',
    side: 32,
    start: 12,
    eta: 0.5,
    config: {
      unet_config: {
        image_size: 32, in_channels: 3, model_channels: 32, out_channels: 3, num_res_blocks: 2,
        attention_resolutions: [16], dropout: 0.1, channel_mult: [1, 2], num_heads: 2, num_head_channels: -1,
        use_scale_shift_norm: false,
      },
      backbone_config: {
        img_size: 16, patch_size: 1, in_chans: 3, embed_dim: 16, depths: [2, 1], num_heads: [2, 4], window_size: 4,
        mlp_ratio: 4, sf: 4, img_range: 1.0, upsampler: 'nearest+conv', resi_connection: '3conv', unshuffle: true,
        unshuffle_scale: 4,
      },
      diffusion_config: { steps: 500, noise_schedule: 'cosine', learn_sigma: false, timestep_respacing: 'ddim50' },
      sampling: { start_step: 12, eta: 0.5 },
    },
  },
  {
    name: 'resblock up/down, new attention order, head width 16, sectioned respacing, rescaled timesteps, pixelshuffle x2, wrapped',
    style: 'wrapped',
    side: 64,
    start: 9,
    eta: 1.0,
    config: {
      unet_config: {
        image_size: 64, in_channels: 3, model_channels: 32, out_channels: 6, num_res_blocks: [1, 2, 1],
        attention_resolutions: [32, 16], dropout: 0, channel_mult: [1, 1, 2], num_head_channels: 16,
        use_scale_shift_norm: true, resblock_updown: true, use_new_attention_order: true,
      },
      backbone_config: {
        img_size: 32, patch_size: 1, in_chans: 3, embed_dim: 12, depths: [1, 2, 2], num_heads: [3, 3, 2],
        window_size: 8, mlp_ratio: 2, sf: 2, img_range: 1.0, upsampler: 'pixelshuffle', resi_connection: '1conv',
        unshuffle: true, unshuffle_scale: 2,
      },
      diffusion_config: { steps: 500, noise_schedule: 'linear', timestep_respacing: '10,15', rescale_timesteps: true },
      sampling: { start_step: 9, eta: 1.0 },
    },
  },
  {
    name: 'plain convolution resampling, window bigger than the features, sf 8, no respacing, both wrappers',
    style: 'ddp-wrapped',
    side: 16,
    start: 6,
    eta: 0.0,
    config: {
      unet_config: {
        image_size: 16, in_channels: 3, model_channels: 32, out_channels: 6, num_res_blocks: [1, 1, 1],
        attention_resolutions: [4], dropout: 0, channel_mult: [1, 2, 2], num_head_channels: 32,
        use_scale_shift_norm: true, conv_resample: false,
      },
      backbone_config: {
        img_size: 2, patch_size: 1, in_chans: 3, embed_dim: 8, depths: [2], num_heads: [2], window_size: 8,
        mlp_ratio: 2, sf: 8, img_range: 1.0, upsampler: 'nearest+conv', resi_connection: '1conv', unshuffle: true,
        unshuffle_scale: 8,
      },
      diffusion_config: { steps: 100, noise_schedule: 'linear', timestep_respacing: '' },
      sampling: { start_step: 6, eta: 0.0 },
    },
  },
];

describe('configurations and checkpoints the reference does not cover', function () {
  for (const testCase of cases) {
    describe(testCase.name, function () {
      let dir: string;
      let engine: DifFace;
      const load = (name: string) => readNpy(path.join(dir, `${name}.npy`));

      before(async function () {
        dir = tempDir('case');
        const configFile = path.join(dir, 'input-config.json');
        fs.writeFileSync(configFile, JSON.stringify(testCase.config));
        runPython(path.join(testPyDir, 'eager_case.py'), [configFile, dir, '--style', testCase.style, '--seed', '11',
          '--side', String(testCase.side), '--start', String(testCase.start), '--eta', String(testCase.eta), '--threads', '2']);
        const models = path.join(dir, 'models');
        await convertCheckpoints({
          unet: path.join(dir, 'unet.pth'), backbone: path.join(dir, 'backbone.pth'),
          config: path.join(dir, 'config.json'), out: models,
        });
        engine = await DifFace.load(models, { threads: 2 });
      });
      after(function () {
        engine?.dispose();
      });

      it('the UNet matches the eager network within 1e-4', async function () {
        const x = load('x');
        const out = await engine.unet(Tensor.fromFloat32(x.data, x.shape), Array.from(load('t').data));
        assert.ok(maxAbsDiff(await out.toFloat32(), load('unet_out').data) <= 1e-4);
        out.dispose();
      });

      it('the backbone matches the eager network within 1e-4', async function () {
        const lq = load('lq');
        const out = await engine.estimate(Tensor.fromFloat32(lq.data, lq.shape));
        assert.deepEqual(out.shape, lq.shape);
        assert.ok(maxAbsDiff(await out.toFloat32(), load('backbone_out').data) <= 1e-4);
        out.dispose();
      });

      it('restore matches the eager sampler within 2e-3', async function () {
        const lq = load('lq');
        const restored = await engine.restore(Tensor.fromFloat32(lq.data, lq.shape), { seed: 12 });
        assert.ok(maxAbsDiff(await restored.toFloat32(), load('restored').data) <= 2e-3);
        restored.dispose();
      });
    });
  }
});
