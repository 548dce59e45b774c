"""Where a UNet call's time goes, kernel by kernel: the eager published network against a
compiled package (AOTInductor, made by models/aot_compile.py), on the same weights.

    kernels.py MODEL_DIR --device cuda --dtype float16 --batch 8 [--package P.pt2] --out FILE.json

MODEL_DIR is a model directory (difface.json with the UNet); the package, when given, must
have been compiled from it for this device, dtype, batch and the UNet's image size. Each side
is warmed up, then one call is profiled. Kernels are grouped into what they do (convolution
and matrix products, normalisation, elementwise, attention, copies, other) by their names,
and the report keeps the 25 costliest kernels of each side.

(Not named profile.py: Python puts this folder first on its path, and the standard
library's cProfile, which torch imports, would then import this file as `profile`.)
"""

import argparse
import json
import os
import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models"))

import aot_compile  # noqa: E402
import networks  # noqa: E402

GROUPS = (
    ("convolution/matmul", ("conv", "gemm", "cutlass", "sm90", "sm80", "xmma", "implicit", "winograd", "mm_", "addmm",
                            "bmm", "mkldnn_convolution", "cudnn")),
    ("attention/softmax", ("softmax", "attention", "flash", "fmha")),
    ("normalisation", ("group_norm", "groupnorm", "native_group_norm", "norm", "welford", "reduction", "red_")),
    ("copy/layout", ("copy", "cat", "transpose", "permute", "nchw", "nhwc", "contiguous", "memcpy")),
    ("elementwise", ("elementwise", "silu", "add", "mul", "vectorized", "pointwise", "poi_", "unrolled", "fused")),
)


def group_of(name):
    lowered = name.lower()
    for group, needles in GROUPS:
        if any(needle in lowered for needle in needles):
            return group
    return "other"


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def profiled(call, device, warmup=3):
    for _ in range(warmup):
        call()
    synchronize(device)
    started = time.perf_counter()
    call()
    synchronize(device)
    wall = time.perf_counter() - started
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        call()
        synchronize(device)
    kernels = {}
    for event in prof.key_averages():
        if device.type == "cuda":
            seconds = getattr(event, "self_device_time_total", getattr(event, "self_cuda_time_total", 0)) / 1e6
            if seconds <= 0 or event.key.startswith("aten::") or event.key.startswith("cuda"):
                continue
        else:
            seconds = event.self_cpu_time_total / 1e6
            if seconds <= 0 or not event.key.startswith("aten::") and "kernel" not in event.key.lower():
                continue
        entry = kernels.setdefault(event.key, {"seconds": 0.0, "calls": 0})
        entry["seconds"] += seconds
        entry["calls"] += event.count
    groups = {}
    for name, entry in kernels.items():
        group = groups.setdefault(group_of(name), {"seconds": 0.0, "kernels": 0, "calls": 0})
        group["seconds"] += entry["seconds"]
        group["kernels"] += 1
        group["calls"] += entry["calls"]
    top = sorted(kernels.items(), key=lambda item: -item[1]["seconds"])[:25]
    return {
        "wallSeconds": wall,
        "kernelSeconds": sum(entry["seconds"] for entry in kernels.values()),
        "launches": sum(entry["calls"] for entry in kernels.values()),
        "groups": dict(sorted(groups.items(), key=lambda item: -item[1]["seconds"])),
        "top": [{"kernel": name[:160], **entry} for name, entry in top],
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="float16")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--package")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    device = torch.device(args.device)
    card = aot_compile.read_card(args.model_dir)
    unet = aot_compile.build_unet(args.model_dir, card).to(device)
    if args.dtype != "float32":
        networks.convert_torso_convolutions(unet, aot_compile.DTYPES[args.dtype])
    side = int(card["unet"]["config"]["image_size"])
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 3, side, side, generator=generator).to(device)
    t = torch.linspace(10, 990, args.batch).to(device)
    report = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "dtype": args.dtype, "batch": args.batch, "side": side,
              "eager": profiled(lambda: unet(x, t), device)}
    if args.package:
        compiled = torch._inductor.aoti_load_package(args.package)
        report["compiled"] = profiled(lambda: compiled(x, t), device)
        report["compiledMaxDifference"] = (compiled(x, t).float() - unet(x, t).float()).abs().max().item()
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    for side_name in ("eager", "compiled"):
        if side_name in report:
            part = report[side_name]
            print(f"{side_name}: {part['wallSeconds'] * 1e3:.1f} ms wall, {part['kernelSeconds'] * 1e3:.1f} ms in "
                  f"{part['launches']} kernels: " + ", ".join(f"{g} {v['seconds'] * 1e3:.1f} ms"
                                                           for g, v in part["groups"].items()))


if __name__ == "__main__":
    main()
