"""Makes the demo models that ship with the package (models/demo/).

    python3 models/demo.py [--out models/demo] [--steps 1500] [--seed 0]

The published weights cannot ship, so the package carries a small pair of the same two
architectures that runs the whole pipeline in seconds on a CPU. It demonstrates the
pipeline; it does not restore faces:
- the backbone is a one-block SwinIR whose last convolution is zero, so its estimate is its
  input unchanged;
- the UNet (128 x 128, about a million parameters) is trained here for a few minutes, on
  synthetic smooth shapes only, to predict the noise of the published linear schedule at
  the early timesteps the demo samples from. It removes noise; it knows nothing of faces.
Training is seeded, but floating-point order on other machines may differ; the committed
files are the artifact, this script is how they were made.
"""

import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import config as configs
import convert
from eager_sampler import training_betas
from swinir import SwinIR
from unet import UNetModel

CONFIG = {
    "unet_config": {
        "image_size": 128, "in_channels": 3, "model_channels": 32, "out_channels": 6, "num_res_blocks": 1,
        "attention_resolutions": [16], "dropout": 0, "channel_mult": [1, 1, 2, 2], "conv_resample": True,
        "dims": 2, "use_fp16": False, "num_head_channels": 32, "use_scale_shift_norm": True,
        "resblock_updown": False, "use_new_attention_order": False,
    },
    "backbone_config": {
        "img_size": 128, "patch_size": 1, "in_chans": 3, "embed_dim": 16, "depths": [1], "num_heads": [2],
        "window_size": 8, "mlp_ratio": 2, "sf": 1, "img_range": 1.0, "upsampler": "", "resi_connection": "1conv",
        "unshuffle": False,
    },
    "diffusion_config": dict(configs.PUBLISHED["diffusion_config"]),
    # Few noise steps: a small denoiser trained on shapes brings back a clean picture from there.
    "sampling": {"start_step": 12, "eta": 0.5, "image_size": 128},
}
LARGEST_TIMESTEP = 200

DESCRIPTION = ("Demo models: a small pair of the DifFace architectures that demonstrates the pipeline and does "
               "not restore faces (the backbone passes its input through; the UNet is a small denoiser trained on "
               "synthetic shapes). Convert the published weights with 'difface convert' for real restoration.")


def smooth_field(batch, side, generator):
    """Low-frequency colour noise: a coarse random grid, bicubically enlarged."""
    coarse = torch.rand(batch, 3, 4 + side // 16, 4 + side // 16, generator=generator)
    return F.interpolate(coarse, size=(side, side), mode="bicubic", align_corners=False)


def shapes(batch, side, generator):
    """Soft-edged ellipses and rectangles of random colours over a smooth background, in [-1, 1]."""
    image = smooth_field(batch, side, generator)
    ys = torch.linspace(-1, 1, side).view(1, side, 1)
    xs = torch.linspace(-1, 1, side).view(1, 1, side)
    for _ in range(6):
        centre = torch.rand(batch, 2, 1, 1, generator=generator) * 2 - 1
        radius = torch.rand(batch, 2, 1, 1, generator=generator) * 0.5 + 0.1
        colour = torch.rand(batch, 3, 1, 1, generator=generator)
        dy = (ys - centre[:, 0]) / radius[:, 0]
        dx = (xs - centre[:, 1]) / radius[:, 1]
        if torch.rand(1, generator=generator).item() < 0.5:
            distance = dx ** 2 + dy ** 2
        else:
            distance = torch.maximum(dx.abs(), dy.abs()) ** 2
        edge = torch.rand(batch, 1, 1, generator=generator) * 0.3 + 0.02
        mask = torch.sigmoid((1 - distance) / edge).unsqueeze(1)
        image = image * (1 - mask) + colour * mask
    return (image.clamp(0, 1) - 0.5) / 0.5


def train_unet(unet, steps, seed, log):
    generator = torch.Generator().manual_seed(seed)
    alphas_cumprod = torch.from_numpy(np.cumprod(1 - training_betas("linear", 1000))).float()
    optimizer = torch.optim.Adam(unet.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: 0.5 * (1 + math.cos(math.pi * i / steps)))
    unet.train()
    started = time.time()
    for step in range(steps):
        x0 = shapes(16, 64, generator)
        t = torch.randint(0, LARGEST_TIMESTEP, (x0.shape[0],), generator=generator)
        noise = torch.randn(x0.shape, generator=generator)
        abar = alphas_cumprod[t].view(-1, 1, 1, 1)
        xt = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
        loss = F.mse_loss(unet(xt, t.float())[:, :3], noise)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 100 == 0 or step == steps - 1:
            log(f"step {step:5d}  loss {loss.item():.4f}  {time.time() - started:.0f} s")
    unet.eval()


def identity_backbone():
    backbone = SwinIR(**CONFIG["backbone_config"])
    with torch.no_grad():
        backbone.conv_last.weight.zero_()
        backbone.conv_last.bias.zero_()
    return backbone.eval()


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(here, "demo"))
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    config = configs.check({key: dict(value) for key, value in CONFIG.items()}, "the demo configuration")
    unet = UNetModel(**config["unet_config"])
    train_unet(unet, args.steps, args.seed, lambda line: print(line, file=sys.stderr, flush=True))
    with torch.no_grad():
        card = convert.export(unet, identity_backbone(), config, args.out, "demo", DESCRIPTION)
    print(f"wrote {args.out}: UNet {card['unet']['parameters']:,} parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
