"""Compiles a model directory's UNet ahead of time with torch.export and AOTInductor.

    python3 models/aot_compile.py MODEL_DIR --out CACHE_DIR --device cpu|cuda[:N]
        --dtype float32|float16|bfloat16 --batch 1,8 [--size H[xW]] [--threads T]

Writes one package per batch size, CACHE_DIR/<name>.pt2, and beside it <name>.json: the key
the engine's loader compares before it uses the package (format, torch version, device kind
and instruction set or GPU architecture, dtype, batch, size, and the UNet file's sha256), the
compile time, and the largest difference from the eager network on one random input.

Prints one JSON object per line on stdout as it goes ({"event": "compiling" | "compiled" |
"done", ...}), so a caller can show progress. Failures: "DIFFACE_ERROR {code, message}" on
stderr and exit code 2.

The package holds the weights: it is made for one model file, and its key names that file.
The network compiled is the published formulation (eager forward) in the published precision
(only the torso's convolutions converted), with the same inputs and output as the
TorchScript export: x [B, 3, H, W] float32 and t [B] float32 in, float32 out.
"""

import argparse
import json
import os
import sys
import tempfile
import time

import torch

import checkpoint
import networks
from errors import ConvertError
from unet import UNetModel

FORMAT = 1
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


def read_card(model_dir):
    path = os.path.join(model_dir, "difface.json")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as error:
        raise ConvertError("EMODELDIR", f"'{model_dir}' has no readable difface.json ({error}); "
                                        "give a model directory made by 'difface convert' or 'difface models fetch'")


def unet_weights(model_dir, entry):
    """The UNet's state dict: from a published checkpoint (read as tensors only) or from the
    TorchScript export the converter wrote (a TorchScript archive runs no Python)."""
    path = os.path.join(model_dir, entry["file"])
    if "architecture" in entry:
        return checkpoint.read_state_dict(path, "UNet")
    try:
        return torch.jit.load(path, map_location="cpu").state_dict()
    except Exception as error:  # torch raises several types for unreadable archives
        raise ConvertError("EMODELDIR", f"the UNet export '{path}' cannot be read ({error}); convert it again")


def build_unet(model_dir, card):
    entry = card.get("unet")
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise ConvertError("EMODELDIR", f"difface.json in '{model_dir}' has no UNet configuration")
    unet = UNetModel(**entry["config"]).eval()
    checkpoint.load_strictly(unet, unet_weights(model_dir, entry), "UNet", entry["file"])
    return unet


def device_tag(device):
    """What the generated code is specific to: the CPU's vector instructions, or the GPU's architecture."""
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return f"cuda-sm{major}{minor}"
    return "cpu-" + torch.backends.cpu.get_cpu_capability().lower()


def package_name(tag, dtype, batch, height, width):
    return f"unet-{tag}-{dtype}-b{batch}-{height}x{width}"


def parse_size(text, card):
    if text is None:
        side = int(card["unet"]["config"].get("image_size", 512))
        return side, side
    parts = text.lower().split("x")
    try:
        sizes = [int(part) for part in parts]
    except ValueError:
        sizes = []
    if len(sizes) not in (1, 2) or min(sizes) < 8:
        raise ConvertError("EARG", f"--size must be H or HxW in pixels, got '{text}'")
    return sizes[0], sizes[-1]


def parse_batches(text):
    try:
        batches = sorted({int(part) for part in text.split(",")})
    except ValueError:
        batches = []
    if not batches or batches[0] < 1 or batches[-1] > 64:
        raise ConvertError("EARG", f"--batch must list batch sizes from 1 to 64, like 1,8; got '{text}'")
    return batches


def compile_one(unet, device, dtype_name, batch, height, width, out_dir, key):
    name = package_name(key["device"], dtype_name, batch, height, width)
    emit("compiling", name=name, batch=batch)
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(batch)
    x = torch.randn(batch, 3, height, width, generator=generator).to(device)
    t = torch.linspace(10, 990, batch).to(device)
    with torch.no_grad():
        program = torch.export.export(unet, (x, t))
        # Written under a temporary name and moved into place, so a stopped compile never
        # leaves a package that looks complete.
        handle, temporary = tempfile.mkstemp(suffix=".pt2", dir=out_dir)
        os.close(handle)
        torch._inductor.aoti_compile_and_package(program, package_path=temporary)
        seconds = time.perf_counter() - started
        compiled = torch._inductor.aoti_load_package(temporary)
        difference = (compiled(x, t).float() - unet(x, t).float()).abs().max().item()
    package = os.path.join(out_dir, name + ".pt2")
    os.replace(temporary, package)
    record = {**key, "batch": batch, "height": height, "width": width, "file": name + ".pt2",
              "compileSeconds": round(seconds, 3), "maxDifferenceFromEager": difference,
              "compiledAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with open(os.path.join(out_dir, name + ".json"), "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2)
    emit("compiled", name=name, batch=batch, seconds=record["compileSeconds"], maxDifference=difference)
    return record


def compile_directory(args):
    card = read_card(args.model_dir)
    height, width = parse_size(args.size, card)
    batches = parse_batches(args.batch)
    if args.dtype not in DTYPES:
        raise ConvertError("EARG", f"--dtype must be one of {', '.join(DTYPES)}, got '{args.dtype}'")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConvertError("EDEVICE", "--device cuda was asked for, but this PyTorch sees no CUDA GPU")
    if device.type == "cpu" and args.dtype != "float32":
        raise ConvertError("EARG", "the CPU runs float32 only; use --dtype float32 or a CUDA device")
    if args.threads:
        torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    unet = build_unet(args.model_dir, card).to(device)
    if args.dtype != "float32":
        networks.convert_torso_convolutions(unet, DTYPES[args.dtype])
    key = {"format": FORMAT, "torch": torch.__version__.split("+")[0], "device": device_tag(device),
           "dtype": args.dtype, "unetSha256": card["unet"].get("sha256", "")}
    records = [compile_one(unet, device, args.dtype, batch, height, width, args.out, key) for batch in batches]
    emit("done", packages=records)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Compile a difface UNet ahead of time (AOTInductor).")
    parser.add_argument("model_dir")
    parser.add_argument("--out", required=True, help="folder for the packages")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--batch", default="1")
    parser.add_argument("--size", help="H or HxW; the UNet's image_size when left out")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_grad_enabled(False)
    try:
        compile_directory(args)
    except ConvertError as error:
        sys.stderr.write("DIFFACE_ERROR " + json.dumps({"code": error.code, "message": error.message}) + "\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
