"""One test case for a configuration: random checkpoints in the published format, inputs,
and what this project's eager networks and eager sampler compute on them.

    eager_case.py CONFIG.json OUT_DIR --style S --seed N --side H --start K --eta E

Writes OUT_DIR/unet.pth, backbone.pth, config.json (random_checkpoint.py), x.npy, t.npy,
lq.npy, unet_out.npy, backbone_out.npy and restored.npy (restore with --start, --eta and
torch.manual_seed(N + 1) before the transition).
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "models"))

import config as configs  # noqa: E402
import networks  # noqa: E402
import random_checkpoint  # noqa: E402
from eager_sampler import EagerSampler, RespacedSchedule  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("config")
parser.add_argument("out")
parser.add_argument("--style", default="plain")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--side", type=int, required=True)
parser.add_argument("--start", type=int, required=True)
parser.add_argument("--eta", type=float, required=True)
parser.add_argument("--threads", type=int, default=0)
args = parser.parse_args()
if args.threads:
    torch.set_num_threads(args.threads)

random_checkpoint.main(["--config", args.config, "--out", args.out, "--seed", str(args.seed), "--style", args.style])
config = configs.load(os.path.join(args.out, "config.json"))
unet, backbone = networks.load(config, os.path.join(args.out, "unet.pth"), os.path.join(args.out, "backbone.pth"))

generator = torch.Generator().manual_seed(args.seed)
channels = config["unet_config"]["in_channels"]
x = torch.randn(2, channels, args.side, args.side, generator=generator)
t = torch.tensor([3.0, 700.0])
lq = torch.floor(torch.rand(2, channels, args.side, args.side, generator=generator) * 256).clamp(max=255) / 255
diffusion = config["diffusion_config"]
schedule = RespacedSchedule.from_config(diffusion)
sampler = EagerSampler(unet, backbone, schedule)
with torch.no_grad():
    outputs = {
        "x": x, "t": t, "lq": lq,
        "unet_out": unet(x, t),
        "backbone_out": backbone(lq),
        "restored": sampler.restore(lq, args.start, args.eta, args.seed + 1),
    }
for name, value in outputs.items():
    np.save(os.path.join(args.out, name + ".npy"), value.contiguous().numpy())
