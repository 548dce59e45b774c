"""Converts published DifFace checkpoints into the engine's model directory.

    python3 models/convert.py --unet U.pth --backbone B.pth [--config C] --out DIR

Writes DIR/unet.pt and DIR/backbone.pt (TorchScript, one export for every batch size) and
DIR/difface.json, the model card the engine loads: configurations, schedule, sampling
defaults, and the sha256 of the source checkpoints and of the exported files.
"""

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile

import torch

import checkpoint
import config as configs
import networks
from errors import ConvertError

CARD_NAME = "difface.json"
CARD_FORMAT = "difface-model"
CARD_VERSION = 1
UNET_FILE = "unet.pt"
BACKBONE_FILE = "backbone.pt"


def package_version():
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        with open(os.path.join(here, "..", "package.json"), encoding="utf-8") as handle:
            return json.load(handle).get("version", "unknown")
    except (OSError, ValueError):
        return "unknown"


def probe_sizes(config):
    """Small input sizes every network of this configuration accepts, for a quick self-check."""
    levels = len(config["unet_config"].get("channel_mult", (1, 2, 4, 8)))
    unet_side = 2 ** (levels - 1) * 2
    backbone = config["backbone_config"]
    if configs.task_of(config) == "inpainting":
        return unet_side, 2 ** int(backbone.get("n_downsampling", 3)) * 4
    backbone_side = int(backbone.get("sf", 4)) * int(backbone.get("window_size", 7)) \
        if backbone.get("unshuffle", False) else int(backbone.get("window_size", 7))
    return unet_side, backbone_side


def check_export(eager, scripted, inputs, what):
    """The scripted network must compute what the eager one computes."""
    with torch.no_grad():
        expected = eager(*inputs)
        got = scripted(*inputs)
    difference = (expected - got).abs().max().item()
    if not difference <= 1e-5:
        raise ConvertError("ECONVERT", f"the TorchScript {what} differs from the eager network by {difference}; "
                                       "please report this with your configuration")


def script(module, path):
    scripted = torch.jit.script(module)
    directory = os.path.dirname(path)
    handle, temporary = tempfile.mkstemp(prefix=".difface-", suffix=".pt", dir=directory)
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    try:
        torch.jit.save(scripted, temporary)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    return scripted


def file_entry(directory, name, module_config, network, source_path):
    path = os.path.join(directory, name)
    entry = {
        "file": name,
        "bytes": os.path.getsize(path),
        "sha256": checkpoint.sha256(path),
        "parameters": sum(p.numel() for p in network.parameters()),
        "config": module_config,
    }
    if source_path is not None:
        entry["source"] = {"file": os.path.basename(source_path), "sha256": checkpoint.sha256(source_path)}
    return entry


def export_record(role):
    """Which torch, Python and difface made a card's files; `role` names what difface did."""
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        role: "difface " + package_version(),
        "createdAt": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
    }


def write_card(directory, card, name=CARD_NAME):
    path = os.path.join(directory, name)
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(card, handle, indent=2)
        handle.write("\n")
    os.replace(temporary, path)


def export(unet, backbone, config, out_dir, kind, description, sources=(None, None)):
    """Scripts both networks into out_dir and writes the model card; returns the card."""
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as error:
        raise ConvertError("EOUTPUT", f"the output folder '{out_dir}' cannot be created: {error.strerror}")
    if not os.access(out_dir, os.W_OK):
        raise ConvertError("EOUTPUT", f"the output folder '{out_dir}' is not writable")
    unet_side, backbone_side = probe_sizes(config)
    scripted_unet = script(unet, os.path.join(out_dir, UNET_FILE))
    scripted_backbone = script(backbone, os.path.join(out_dir, BACKBONE_FILE))
    generator = torch.Generator().manual_seed(0)
    channels = config["unet_config"]["in_channels"]
    x = torch.randn(2, channels, unet_side, unet_side, generator=generator)
    check_export(unet, scripted_unet, (x, torch.tensor([10.0, 500.0])), "UNet")
    lq = torch.rand(1, configs.backbone_channels(config), backbone_side, backbone_side, generator=generator)
    check_export(backbone, scripted_backbone, (lq,), "backbone")
    card = {
        "format": CARD_FORMAT,
        "version": CARD_VERSION,
        "task": configs.task_of(config),
        "kind": kind,
        "description": description,
        "unet": file_entry(out_dir, UNET_FILE, config["unet_config"], unet, sources[0]),
        "backbone": file_entry(out_dir, BACKBONE_FILE, config["backbone_config"], backbone, sources[1]),
        "diffusion": config["diffusion_config"],
        "schedule": configs.schedule_settings(config["diffusion_config"]),
        "sampling": configs.sampling_settings(config),
        "export": export_record("converter"),
    }
    write_card(out_dir, card)
    return card


def convert(unet_path, backbone_path, config_path, out_dir):
    config = configs.load(config_path)
    unet, backbone = networks.load(config, unet_path, backbone_path)
    description = ("DifFace networks converted from " + os.path.basename(unet_path) + " and "
                   + os.path.basename(backbone_path))
    return export(unet, backbone, config, out_dir, "converted", description, (unet_path, backbone_path))


def main(argv=None):
    parser = argparse.ArgumentParser(description="Convert published DifFace checkpoints for the difface engine.")
    parser.add_argument("--unet", required=True, help="diffusion UNet checkpoint (iddpm_ffhq512_ema500000.pth)")
    parser.add_argument("--backbone", required=True, help="SwinIR checkpoint (swinir_restoration512_L1.pth)")
    parser.add_argument("--config", help="published sampling YAML, or JSON with unet_config, backbone_config, "
                                         "diffusion_config; the published configuration when left out")
    parser.add_argument("--out", required=True, help="model directory to write")
    parser.add_argument("--json", action="store_true", help="print the model card as JSON on success")
    args = parser.parse_args(argv)
    torch.set_grad_enabled(False)
    try:
        card = convert(args.unet, args.backbone, args.config, args.out)
    except ConvertError as error:
        report_error(error.code, error.message, args.json)
        return 2
    if args.json:
        print(json.dumps(card))
    else:
        print(f"wrote {args.out} ({card['unet']['parameters']:,} UNet and "
              f"{card['backbone']['parameters']:,} backbone parameters)")
    return 0


def report_error(code, message, as_json):
    if as_json:
        sys.stderr.write("DIFFACE_ERROR " + json.dumps({"code": code, "message": message}) + "\n")
    else:
        sys.stderr.write(f"difface convert: {message}\n")


if __name__ == "__main__":
    sys.exit(main())
