"""The eager-PyTorch side of `npm run bench`: the published sampler's way of running the
networks, on the same weights and threads as the engine. Prints one JSON object.

    eager.py restore CONFIG UNET.pth BACKBONE.pth LQ.npy --seed S --eta E --start N --runs R [--expect X.npy] [--out DIR]
    eager.py calls CONFIG UNET.pth BACKBONE.pth --side H --runs R [--out DIR]
    eager.py flops CONFIG - - --side H    (needs torch.utils.flop_counter, PyTorch 2)
    common: --threads T --device cpu|cuda --dtype float32|float16|bfloat16 [--batches 1,8 --big-runs R]
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))

import config as configs  # noqa: E402
import networks  # noqa: E402
from eager_sampler import EagerSampler, RespacedSchedule  # noqa: E402

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def to_published_precision(unet, backbone, dtype):
    """The published fp16 mode: the UNet torso's convolutions and the whole backbone."""
    networks.convert_torso_convolutions(unet, dtype)
    return backbone.to(dtype)


class Backbone(torch.nn.Module):
    """Runs the backbone in its dtype and hands back float32, as the published restore_func does."""

    def __init__(self, network, dtype):
        super().__init__()
        self.network = network
        self.dtype = dtype

    def forward(self, lq):
        return self.network(lq.to(self.dtype)).float()


def load(args):
    config = configs.load(args.config)
    # The backbone as the published code computes it (its order of operations), not the
    # faster formulation the engine exports: the baseline stays the published one.
    unet, backbone = networks.load(config, args.unet, args.backbone, published_backbone=True)
    dtype = DTYPES[args.dtype]
    unet, backbone = unet.to(args.device), backbone.to(args.device)
    if dtype != torch.float32:
        backbone = to_published_precision(unet, backbone, dtype)
    return config, unet, Backbone(backbone, dtype)


def synchronize(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(run, device):
    synchronize(device)
    started = time.perf_counter()
    result = run()
    synchronize(device)
    return time.perf_counter() - started, result


def restore_command(args):
    config, unet, backbone = load(args)
    diffusion = config["diffusion_config"]
    schedule = RespacedSchedule.from_config(diffusion)
    sampler = EagerSampler(unet, backbone, schedule)
    given = torch.from_numpy(np.load(args.lq)).to(args.device)
    reports = {}
    for batch in [int(b) for b in args.batches.split(",")] if args.batches else [0]:
        lq = given[:1].repeat(batch, 1, 1, 1) if batch else given
        if args.warmup:
            sampler.restore(lq, min(args.warmup, args.start), args.eta, args.seed)
        if args.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        times, restored = [], None
        for _ in range(args.runs if batch <= 1 else args.big_runs):
            seconds, restored = timed(lambda: sampler.restore(lq, args.start, args.eta, args.seed), args.device)
            times.append(seconds)
        report = {"times": times, "best": min(times), "batch": int(lq.shape[0])}
        if args.device.startswith("cuda"):
            report["peakBytes"] = torch.cuda.max_memory_allocated()
        if args.expect:
            expected = torch.from_numpy(np.load(args.expect))
            report["maxDiff"] = (restored.float().cpu() - expected).abs().max().item()
        if args.out:
            os.makedirs(args.out, exist_ok=True)
            np.save(os.path.join(args.out, f"restored_{batch or lq.shape[0]}.npy"), restored.float().cpu().contiguous().numpy())
        reports[str(batch or lq.shape[0])] = report
    if not args.batches:
        return next(iter(reports.values()))
    return {"byBatch": reports}


def calls_command(args):
    config, unet, backbone = load(args)
    generator = torch.Generator().manual_seed(5)
    channels = config["unet_config"]["in_channels"]
    x = torch.randn(1, channels, args.side, args.side, generator=generator).to(args.device)
    t = torch.tensor([400.0], device=args.device)
    lq = torch.rand(1, channels, args.side, args.side, generator=generator).to(args.device)
    for _ in range(args.warmup):
        unet(x, t)
        backbone(lq)
    unet_times, backbone_times = [], []
    for _ in range(args.runs):
        seconds, unet_out = timed(lambda: unet(x, t), args.device)
        unet_times.append(seconds)
        seconds, backbone_out = timed(lambda: backbone(lq), args.device)
        backbone_times.append(seconds)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        for name, value in {"x": x, "t": t, "lq": lq, "unet_out": unet_out, "backbone_out": backbone_out}.items():
            np.save(os.path.join(args.out, name + ".npy"), value.float().cpu().contiguous().numpy())
    return {"unet": {"times": unet_times, "best": min(unet_times)},
            "backbone": {"times": backbone_times, "best": min(backbone_times)}}


def flops_command(args):
    """Floating-point operations of one UNet call and one backbone call (2 per multiply-add)."""
    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        return {"unetFlops": None, "backboneFlops": None, "side": args.side}

    config = configs.load(args.config)
    unet, backbone = (network.to("meta") for network in networks.build(config, published_backbone=True))
    x = torch.zeros(1, 3, args.side, args.side, device="meta")
    counts = {}
    for name, run in (("unet", lambda: unet(x, torch.zeros(1, device="meta"))), ("backbone", lambda: backbone(x))):
        with FlopCounterMode(display=False) as counter:
            run()
        counts[name] = counter.get_total_flops()
    return {"unetFlops": counts["unet"], "backboneFlops": counts["backbone"], "side": args.side}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["restore", "calls", "flops"])
    parser.add_argument("config")
    parser.add_argument("unet")
    parser.add_argument("backbone")
    parser.add_argument("lq", nargs="?")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eta", type=float, default=0.5)
    parser.add_argument("--start", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--batches", help="comma-separated batch sizes, each made of copies of the first face")
    parser.add_argument("--big-runs", type=int, default=1, help="timed runs for batches above 1")
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--expect")
    parser.add_argument("--out")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=list(DTYPES))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    # PyTorch's defaults, as the published code leaves them (on CUDA: cuDNN may use TF32 for
    # float32 convolutions; no cuDNN autotuning).
    torch.set_grad_enabled(False)
    commands = {"restore": restore_command, "calls": calls_command, "flops": flops_command}
    report = commands[args.command](args)
    report.update({"torch": torch.__version__, "threads": torch.get_num_threads(), "device": args.device,
                   "dtype": args.dtype})
    if args.device.startswith("cuda"):
        report["cudnnTf32"] = torch.backends.cudnn.allow_tf32
        report["gpu"] = torch.cuda.get_device_name()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
