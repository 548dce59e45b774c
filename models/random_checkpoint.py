"""Random-weight checkpoints in the published format, for tests and benchmarks.

    python3 models/random_checkpoint.py (--config C.json | --layout official-layout.json | --published
        | --published-inpainting) --out DIR [--seed N] [--style plain|ddp|wrapped|ddp-wrapped]
        [--format zip|legacy] [--dtype float32|float16|bfloat16] [--published-names]

Writes DIR/unet.pth, DIR/backbone.pth and DIR/config.json (the configuration, in the JSON
form `difface convert --config` reads). With --layout, the networks are built from the
layout file's configuration and their state dicts must list exactly its names and shapes.
--format legacy writes torch.save's format from before PyTorch 1.6 (five pickles, then the
raw storages) instead of the zip archive. --dtype stores the floating tensors in half
precision. --published-names names the files as the published ones are named
(iddpm_ffhq512_ema500000.pth, swinir_restoration512_L1.pth; for inpainting
iddpm_ffhq256_ema750000.pth, lama_inpainting256.pth). The weights are random: such
checkpoints prove the plumbing, they restore no faces. Batch-norm statistics are random too
(running variances positive), so that every tensor of a LaMa estimator changes its output.
"""

import argparse
import collections
import json
import os
import sys

import torch

import config as configs
import networks


def randomized(module, generator):
    """The module's state dict with every floating tensor drawn at random around its default.

    An OrderedDict carrying the module's _metadata, as module.state_dict() returns it, so the
    saved file has the structure of a published one."""
    original = module.state_dict()
    state = collections.OrderedDict()
    state._metadata = original._metadata
    for name, tensor in original.items():
        if name.endswith("attn_mask") or not tensor.is_floating_point():
            state[name] = tensor.clone()  # derived buffers must keep their exact values
            continue
        noise = torch.randn(tensor.shape, generator=generator)
        if name.endswith("running_var"):
            state[name] = 1.0 + 0.1 * noise.abs()
        elif tensor.dim() >= 2:
            fan_in = tensor[0].numel()
            state[name] = noise / fan_in ** 0.5
        elif name.endswith("weight"):
            state[name] = 1.0 + 0.1 * noise  # norm scales
        else:
            state[name] = 0.05 * noise
    return state


def check_layout(state, layout, what):
    listed = [(name, list(shape)) for name, shape in layout.items()]
    built = [(name, list(tensor.shape)) for name, tensor in state.items()]
    if listed != built:
        raise SystemExit(f"the {what} built from the layout's configuration does not have the layout's state dict")


PUBLISHED_NAMES = {
    "restoration": {"unet": "iddpm_ffhq512_ema500000.pth", "backbone": "swinir_restoration512_L1.pth"},
    "inpainting": {"unet": "iddpm_ffhq256_ema750000.pth", "backbone": "lama_inpainting256.pth"},
}
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def stored_as(state, dtype):
    """Floating tensors cast to the storage dtype; integer buffers kept as they are."""
    return renamed(state, lambda name: name, lambda tensor: tensor.to(dtype) if tensor.is_floating_point() else tensor)


def renamed(state, rename, convert=lambda tensor: tensor):
    """A copy of a state dict with new names (and tensors), its _metadata renamed alike."""
    copy = collections.OrderedDict((rename(name), convert(tensor)) for name, tensor in state.items())
    metadata = getattr(state, "_metadata", None)
    if metadata is not None:
        copy._metadata = collections.OrderedDict((rename(key) if key else key, value) for key, value in metadata.items())
    return copy


def styled(state, style):
    if style in ("ddp", "ddp-wrapped"):
        state = renamed(state, lambda name: "module." + name)
    if style in ("wrapped", "ddp-wrapped"):
        state = {"state_dict": state}
    return state


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="JSON with unet_config, backbone_config, diffusion_config")
    source.add_argument("--layout", help="a layout JSON such as official-layout.json")
    source.add_argument("--published", action="store_true", help="the published restoration configuration")
    source.add_argument("--published-inpainting", action="store_true", help="the published inpainting configuration")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--style", default="plain", choices=["plain", "ddp", "wrapped", "ddp-wrapped"])
    parser.add_argument("--format", default="zip", choices=["zip", "legacy"])
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    parser.add_argument("--published-names", action="store_true")
    args = parser.parse_args(argv)

    if args.published or args.published_inpainting:
        document = configs.published("inpainting" if args.published_inpainting else "restoration")
    else:
        with open(args.config or args.layout, encoding="utf-8") as handle:
            document = json.load(handle)
    task = document.get("task", "restoration")
    config = {key: document[key] for key in ("unet_config", "backbone_config", "diffusion_config")}
    if task != "restoration":
        config["task"] = task
    sampling = document.get("sampling") or document.get("sampling_defaults") or {}
    defaults = configs.published(task)["sampling"]
    config["sampling"] = {key: sampling.get(key, value) for key, value in defaults.items()}
    config["sampling"]["image_size"] = config["unet_config"]["image_size"]
    configs.check(config, args.config or args.layout or "the published configuration")

    generator = torch.Generator().manual_seed(args.seed)
    unet, backbone = (randomized(network, generator) for network in networks.build(config))
    if args.layout:
        check_layout(unet, document["unet_state_dict"], "UNet")
        check_layout(backbone, document["backbone_state_dict"], "backbone")

    os.makedirs(args.out, exist_ok=True)
    names = PUBLISHED_NAMES[task] if args.published_names else {"unet": "unet.pth", "backbone": "backbone.pth"}
    for role, state in (("unet", unet), ("backbone", backbone)):
        torch.save(styled(stored_as(state, DTYPES[args.dtype]), args.style), os.path.join(args.out, names[role]),
                   _use_new_zipfile_serialization=args.format == "zip")
    with open(os.path.join(args.out, "config.json"), "w", encoding="utf-8") as handle:
        json.dump(config, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
