"""Weight-less TorchScript exports ("architectures") of a configuration's two networks.

    python3 models/export_architecture.py [--config C] --out DIR

Writes DIR/unet.pt, DIR/backbone.pt and DIR/architecture.json. Each export holds the
network's code and an empty placeholder for every tensor of its state dict, plus the list of
those tensors (name, dtype, shape, parameter or buffer, in the state dict's order) as the
extra file difface-state.txt. The engine fills the placeholders from a published checkpoint
at load time, so a published architecture ships in a few hundred kilobytes and the weights
never pass through Python. Without --config, the published configuration: that export ships
in models/architectures/restoration.

Before writing, each export is filled from its eager network's own weights and checked to
compute what the eager network computes.
"""

import argparse
import json
import os
import sys
import tempfile

import torch

import checkpoint
import config as configs
import networks
from convert import export_record, probe_sizes, write_card
from errors import ConvertError

LAYOUT_FILE = "difface-state.txt"
ARCHITECTURE_CARD = "architecture.json"
FORMAT = "difface-architecture"
VERSION = 1
DTYPE_NAMES = {
    torch.float32: "float32", torch.float64: "float64", torch.float16: "float16", torch.bfloat16: "bfloat16",
    torch.int64: "int64", torch.int32: "int32", torch.int16: "int16", torch.int8: "int8", torch.uint8: "uint8",
    torch.bool: "bool",
}


def layout_text(module):
    """One tab-separated line per state-dict tensor: name, dtype, shape, parameter|buffer."""
    parameters = {name for name, _ in module.named_parameters()}
    lines = []
    for name, tensor in module.state_dict().items():
        shape = ",".join(str(d) for d in tensor.shape)
        kind = "parameter" if name in parameters else "buffer"
        lines.append(f"{name}\t{DTYPE_NAMES[tensor.dtype]}\t{shape}\t{kind}")
    return "\n".join(lines) + "\n"


def tensor_slot(module, name):
    """The module that owns a dotted state-dict name, and the attribute's last part."""
    *path, leaf = name.split(".")
    owner = module
    for part in path:
        owner = getattr(owner, part)
    return owner, leaf


def emptied(module):
    """The module with every state-dict tensor replaced by an empty one of the same dtype."""
    for name, tensor in module.state_dict().items():
        owner, leaf = tensor_slot(module, name)
        getattr(owner, leaf).data = torch.empty(0, dtype=tensor.dtype)
    return module


def filled(scripted, state):
    for name, tensor in state.items():
        owner, leaf = tensor_slot(scripted, name)
        getattr(owner, leaf).data = tensor.clone()
    return scripted


def save(scripted, layout, path):
    """Writes through a temporary folder beside `path`, so the archive's inner folder keeps the file's name."""
    directory = os.path.dirname(path)
    staging = tempfile.mkdtemp(prefix=".difface-", dir=directory)
    staged = os.path.join(staging, os.path.basename(path))
    try:
        torch.jit.save(scripted, staged, _extra_files={LAYOUT_FILE: layout})
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staged, 0o666 & ~umask)
        os.replace(staged, path)
    finally:
        if os.path.exists(staged):
            os.remove(staged)
        os.rmdir(staging)


def largest_difference(expected, got):
    """Over a tensor, or over each of a tuple of tensors (the detector's three outputs)."""
    if isinstance(expected, torch.Tensor):
        return (expected - got).abs().max().item()
    return max(largest_difference(e, g) for e, g in zip(expected, got))


def export_one(network, path, inputs, what):
    """Exports `network` without weights to `path`; returns its parameter count."""
    state = {name: tensor.clone() for name, tensor in network.state_dict().items()}
    layout = layout_text(network)
    parameters = sum(p.numel() for p in network.parameters())
    with torch.no_grad():
        expected = network(*inputs)
    save(torch.jit.script(emptied(network)), layout, path)
    reloaded = filled(torch.jit.load(path), state)
    with torch.no_grad():
        got = reloaded(*inputs)
    difference = largest_difference(expected, got)
    if not difference <= 1e-5:
        raise ConvertError("ECONVERT", f"the weight-less {what} export, filled again, differs from the eager "
                                       f"network by {difference}")
    return parameters


def entry(directory, name, parameters, network_config):
    path = os.path.join(directory, name)
    return {"file": name, "bytes": os.path.getsize(path), "sha256": checkpoint.sha256(path),
            "parameters": parameters, "config": network_config}


def export(config, out_dir, description):
    os.makedirs(out_dir, exist_ok=True)
    unet, backbone = networks.build(config)
    unet_side, backbone_side = probe_sizes(config)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, config["unet_config"]["in_channels"], unet_side, unet_side, generator=generator)
    lq = torch.rand(1, configs.backbone_channels(config), backbone_side, backbone_side, generator=generator)
    unet_parameters = export_one(unet, os.path.join(out_dir, "unet.pt"), (x, torch.tensor([10.0, 500.0])), "UNet")
    backbone_parameters = export_one(backbone, os.path.join(out_dir, "backbone.pt"), (lq,), "backbone")
    card = {
        "format": FORMAT,
        "version": VERSION,
        "task": configs.task_of(config),
        "description": description,
        "networks": {
            "unet": entry(out_dir, "unet.pt", unet_parameters, config["unet_config"]),
            "backbone": entry(out_dir, "backbone.pt", backbone_parameters, config["backbone_config"]),
        },
        "diffusion": config["diffusion_config"],
        "schedule": configs.schedule_settings(config["diffusion_config"]),
        "sampling": configs.sampling_settings(config),
        "export": export_record("exporter"),
    }
    write_card(out_dir, card, ARCHITECTURE_CARD)
    return card


PUBLISHED_DESCRIPTIONS = {
    "restoration": "The published DifFace restoration networks (iddpm_ffhq512_ema500000.pth and "
                   "swinir_restoration512_L1.pth), without their weights",
    "inpainting": "The published DifFace inpainting networks (iddpm_ffhq256_ema750000.pth and "
                  "lama_inpainting256.pth), without their weights",
}


def main(argv=None):
    parser = argparse.ArgumentParser(description="Export weight-less DifFace architectures for the difface engine.")
    parser.add_argument("--config", help="published sampling YAML, or JSON with unet_config, backbone_config, "
                                         "diffusion_config; the published configuration when left out")
    parser.add_argument("--task", choices=configs.TASKS, default="restoration",
                        help="without --config: which published configuration (default restoration)")
    parser.add_argument("--out", required=True, help="folder to write unet.pt, backbone.pt and architecture.json to")
    args = parser.parse_args(argv)
    try:
        config = configs.load(args.config) if args.config is not None else configs.published(args.task)
        description = (PUBLISHED_DESCRIPTIONS[args.task] if args.config is None
                       else "DifFace networks of " + os.path.basename(args.config) + ", without their weights")
        card = export(config, args.out, description)
    except ConvertError as error:
        sys.stderr.write(f"export_architecture: {error.message}\n")
        return 2
    print(f"wrote {args.out} ({card['networks']['unet']['parameters']:,} UNet and "
          f"{card['networks']['backbone']['parameters']:,} backbone parameters to fill)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
