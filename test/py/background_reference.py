"""Random Real-ESRGAN x2plus weights in the published file's layout, and what the published
upsampler makes of a small photo with them, for test/background.test.ts.

    python3 background_reference.py OUT HEIGHT WIDTH TILE PAD

Writes OUT/RealESRGAN_x2plus.pth ({"params_ema": state dict}, as released), OUT/input.npy
([1, 3, H, W] in [0, 1]), OUT/tiled.npy (tiles of TILE with PAD of context) and
OUT/whole.npy (the photo in one piece), each [1, 3, 2H, 2W] in 8-bit levels / 255. The
tiling here is written from the published upsampler's description, apart from the engine's.
"""

import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models"))
from rrdbnet import RRDBNet  # noqa: E402


def random_network():
    torch.manual_seed(15)
    network = RRDBNet().eval()
    # Centred on grey, the output stays in [0, 1] for most of the photo (about 4% is clamped),
    # so clamping and rounding are exercised but do not hide what the network computed.
    with torch.no_grad():
        network.conv_last.bias.fill_(0.5)
    return network


def upscale(network, image, tile, pad):
    h, w = image.shape[2], image.shape[3]
    x = F.pad(image, (0, w % 2, 0, h % 2), mode="reflect")
    ph, pw = x.shape[2], x.shape[3]
    if tile == 0:
        out = network(x)
    else:
        out = torch.zeros(1, 3, 2 * ph, 2 * pw)
        for top in range(0, ph, tile):
            for left in range(0, pw, tile):
                bottom, right = min(top + tile, ph), min(left + tile, pw)
                t0, l0 = max(top - pad, 0), max(left - pad, 0)
                t1, l1 = min(bottom + pad, ph), min(right + pad, pw)
                piece = network(x[:, :, t0:t1, l0:l1])
                dy, dx = 2 * (top - t0), 2 * (left - l0)
                out[:, :, 2 * top:2 * bottom, 2 * left:2 * right] = \
                    piece[:, :, dy:dy + 2 * (bottom - top), dx:dx + 2 * (right - left)]
    out = out[:, :, :2 * h, :2 * w].clamp(0, 1)
    return torch.round(out * 255.0) / 255.0


def main():
    out_dir, height, width, tile, pad = sys.argv[1], *map(int, sys.argv[2:6])
    network = random_network()
    torch.save({"params_ema": network.state_dict()}, os.path.join(out_dir, "RealESRGAN_x2plus.pth"))
    image = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        tiled = upscale(network, image, tile, pad)
        whole = upscale(network, image, 0, 0)
    np.save(os.path.join(out_dir, "input.npy"), image.numpy())
    np.save(os.path.join(out_dir, "tiled.npy"), tiled.numpy())
    np.save(os.path.join(out_dir, "whole.npy"), whole.numpy())


if __name__ == "__main__":
    main()
