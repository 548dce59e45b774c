"""The two networks of a configuration, built and filled from checkpoints: the UNet, and the
backbone (SwinIR for restoration, LaMa's FFCResNetGenerator for inpainting).

Every Python entry point (the converter, the benchmarks' eager side, the tests' reference
runs) builds the networks through here, so a configuration means the same thing everywhere.
"""

import torch

import checkpoint
from config import task_of
from errors import ConvertError
from lama import FFCResNetGenerator
from swinir import SwinIR
from unet import UNetModel


def build(config, published_backbone=False):
    """The UNet and the backbone of a configuration, in eval mode, with their initial weights.
    ``published_backbone`` builds SwinIR in the published formulation (same weights, same
    result within float32 rounding, the published order of operations: the benchmark's baseline)."""
    try:
        unet = UNetModel(**config["unet_config"])
    except (TypeError, ValueError, AssertionError) as error:
        raise ConvertError("ECONFIG", f"unet_config cannot build a UNet: {error}")
    inpainting = task_of(config) == "inpainting"
    try:
        if inpainting:
            backbone = FFCResNetGenerator(**config["backbone_config"])
        else:
            backbone = SwinIR(**config["backbone_config"], published=published_backbone)
    except (TypeError, ValueError, AssertionError) as error:
        what = "a LaMa estimator" if inpainting else "a SwinIR backbone"
        raise ConvertError("ECONFIG", f"backbone_config cannot build {what}: {error}")
    return unet.eval(), backbone.eval()


def convert_torso_convolutions(unet, dtype):
    """The published fp16 mode's UNet: only the torso's convolutions change type."""
    for part in (unet.input_blocks, unet.middle_block, unet.output_blocks):
        for module in part.modules():
            if isinstance(module, (torch.nn.Conv1d, torch.nn.Conv2d)):
                module.weight.data = module.weight.data.to(dtype)
                module.bias.data = module.bias.data.to(dtype)
    return unet


def load(config, unet_path, backbone_path, published_backbone=False):
    """Both networks, filled strictly from their checkpoints (read with weights_only=True)."""
    unet, backbone = build(config, published_backbone)
    checkpoint.load_strictly(unet, checkpoint.read_state_dict(unet_path, "UNet"), "UNet", unet_path)
    checkpoint.load_strictly(backbone, checkpoint.read_state_dict(backbone_path, "backbone"), "backbone",
                             backbone_path)
    return unet, backbone
