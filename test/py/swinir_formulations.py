"""SwinIR's faster formulation against its published one, on small configurations with random
weights (models/random_checkpoint.py's draw), eager and as TorchScript. Prints one JSON object:

    {"torch": ..., "fusedAttention": bool, "cases": [{"name", "input", "output", "resolution",
     "features", "shiftedBlocks", "padded", "largest", "maxDiff": {"eager", "script", "unfused"},
     "unshiftedDiff", "strides": {"published", "eager", "script"}}]}

"unfused" is the faster formulation without scaled_dot_product_attention (as torch 1.13 exports
it). "largest" is the published output's largest magnitude, so that a difference is read
against outputs that are not near zero; "unshiftedDiff" is how far the published network
lands with no block shifted, so a formulation that got the shift or its mask wrong would show;
"strides" are the outputs' memory layouts, which decide where the sampler's noise lands.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "models"))

from random_checkpoint import randomized  # noqa: E402
from swinir import FUSED_ATTENTION, SwinIR, SwinTransformerBlock, WindowAttention  # noqa: E402

SMALL = {"img_size": 16, "patch_size": 1, "in_chans": 3, "embed_dim": 24, "depths": [2, 2], "num_heads": [2, 2],
         "window_size": 8, "mlp_ratio": 2, "sf": 4, "img_range": 1.0, "upsampler": "nearest+conv",
         "resi_connection": "1conv", "unshuffle": True, "unshuffle_scale": 4}

# (name, backbone_config, input shapes). Window 4 over a 12 x 12 build, with inputs that are
# no multiple of the window (reflect-padded) and other sizes than the build (masks recomputed).
CASES = [
    ("published layout, small (unshuffle 4, nearest+conv)", SMALL,
     [(1, 3, 64, 64), (2, 3, 64, 64), (1, 3, 96, 64)]),
    ("plain head, window 4, odd sizes", dict(SMALL, upsampler="", sf=1, unshuffle=False, unshuffle_scale=None,
                                            window_size=4, img_size=12, depths=[3, 2], num_heads=[3, 2]),
     [(1, 3, 12, 12), (2, 3, 13, 19), (1, 3, 31, 9)]),
    ("nearest+conv x8 (the published head: three doublings), window 4",
     dict(SMALL, sf=8, unshuffle_scale=8, img_size=8, window_size=4), [(1, 3, 64, 64), (1, 3, 128, 64)]),
    ("pixelshuffle x2, 3conv, window 4", dict(SMALL, upsampler="pixelshuffle", sf=2, unshuffle=False,
                                              unshuffle_scale=None, window_size=4, img_size=8,
                                              resi_connection="3conv", embed_dim=32),
     [(1, 3, 8, 8), (2, 3, 10, 15)]),
    ("pixelshuffledirect x3, window 4", dict(SMALL, upsampler="pixelshuffledirect", sf=3, unshuffle=False,
                                             unshuffle_scale=None, window_size=4, img_size=8),
     [(1, 3, 8, 8), (2, 3, 9, 14)]),
]


def filled(config, published, state):
    network = SwinIR(**config, published=published).eval()
    network.load_state_dict(state)
    return network


def unfused(network):
    for module in network.modules():
        if isinstance(module, WindowAttention):
            module.fused = False
    return network


def unshifted(network):
    for module in network.modules():
        if isinstance(module, SwinTransformerBlock):
            module.shift = 0
    return network


def run_case(name, config, shapes, generator):
    published = SwinIR(**config, published=True).eval()
    state = randomized(published, generator)
    published.load_state_dict(state)
    fast = filled(config, False, state)
    scripted = torch.jit.script(filled(config, False, state))
    plain = unfused(filled(config, False, state))
    no_shift = unshifted(filled(config, True, state))
    blocks = [m for m in published.modules() if isinstance(m, SwinTransformerBlock)]
    window = config["window_size"]
    scale = config["sf"] if config.get("unshuffle") else 1
    results = []
    for shape in shapes:
        x = torch.rand(shape, generator=generator)
        expected = published(x)
        side = (shape[2] + (-shape[2]) % window) // scale, (shape[3] + (-shape[3]) % window) // scale
        results.append({
            "name": name, "input": list(shape), "output": list(expected.shape),
            "resolution": list(blocks[0].resolution), "features": list(side),
            "shiftedBlocks": sum(1 for b in blocks if b.shift > 0),
            "padded": shape[2] % window != 0 or shape[3] % window != 0,
            "largest": expected.abs().max().item(),
            "maxDiff": {label: (expected - network(x)).abs().max().item()
                        for label, network in (("eager", fast), ("script", scripted), ("unfused", plain))},
            "unshiftedDiff": (expected - no_shift(x)).abs().max().item(),
            "strides": {label: list(network(x).stride()) for label, network in
                        (("published", published), ("eager", fast), ("script", scripted))},
        })
    return results


def main():
    torch.set_grad_enabled(False)
    generator = torch.Generator().manual_seed(18)
    cases = [result for name, config, shapes in CASES for result in run_case(name, config, shapes, generator)]
    print(json.dumps({"torch": torch.__version__, "fusedAttention": FUSED_ATTENTION, "cases": cases}))


if __name__ == "__main__":
    main()
