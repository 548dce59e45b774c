"""Eager outputs of this project's networks on a checkpoint pair, for one call each.

    network_outputs.py CONFIG.json UNET.pth BACKBONE.pth OUT_DIR --side H [--threads N]

Writes OUT_DIR/x.npy, t.npy, lq.npy (random inputs, fixed seed), unet_out.npy, backbone_out.npy.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "models"))

import config as configs  # noqa: E402
import networks  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("config")
parser.add_argument("unet")
parser.add_argument("backbone")
parser.add_argument("out")
parser.add_argument("--side", type=int, required=True)
parser.add_argument("--threads", type=int, default=0)
args = parser.parse_args()
if args.threads:
    torch.set_num_threads(args.threads)
torch.set_grad_enabled(False)

config = configs.load(args.config)
unet, backbone = networks.load(config, args.unet, args.backbone)

generator = torch.Generator().manual_seed(5)
x = torch.randn(1, 3, args.side, args.side, generator=generator)
t = torch.tensor([400.0])
lq = torch.rand(1, 3, args.side, args.side, generator=generator)
os.makedirs(args.out, exist_ok=True)
started = time.time()
unet_out = unet(x, t)
middle = time.time()
backbone_out = backbone(lq)
sys.stderr.write(f"eager UNet {middle - started:.1f} s, backbone {time.time() - middle:.1f} s\n")
for name, value in {"x": x, "t": t, "lq": lq, "unet_out": unet_out, "backbone_out": backbone_out}.items():
    np.save(os.path.join(args.out, name + ".npy"), value.contiguous().numpy())
