"""The full chains of the small reference configuration, computed on this machine by this
project's eager networks and eager sampler (written the way the published sampler is).

    reference_chains.py REFERENCE_DIR OUT_DIR [--threads N]

A 100-step chain on random weights is chaotic: another processor or another libtorch rounds
a few kernels differently and lands far from chains stored elsewhere. So the engine's chains
are checked against these, computed in the same test run with the same libtorch. Writes
OUT_DIR/restored_eta0.npy, restored_eta.npy and traj_eta0_step{N}.npy for each saved step N.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "models"))

import checkpoint  # noqa: E402
import config as configs  # noqa: E402
from eager_sampler import EagerSampler, RespacedSchedule  # noqa: E402
from swinir import SwinIR  # noqa: E402
from unet import UNetModel  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("reference")
parser.add_argument("out")
parser.add_argument("--threads", type=int, default=0)
args = parser.parse_args()
if args.threads:
    torch.set_num_threads(args.threads)

config_file = os.path.join(args.reference, "reference.json")
config = configs.load(config_file)
with open(config_file, encoding="utf-8") as handle:
    sampling = json.load(handle)["sampling"]
unet = UNetModel(**config["unet_config"]).eval()
backbone = SwinIR(**config["backbone_config"]).eval()
for network, name, file in [(unet, "UNet", "unet.pth"), (backbone, "backbone", "backbone.pth")]:
    checkpoint.load_strictly(network, checkpoint.read_state_dict(os.path.join(args.reference, file), name), name, "")

diffusion = config["diffusion_config"]
schedule = RespacedSchedule(diffusion["steps"], diffusion.get("noise_schedule", "linear"),
                            str(diffusion.get("timestep_respacing", "") or ""), diffusion.get("rescale_timesteps", False))
sampler = EagerSampler(unet, backbone, schedule)
lq = torch.from_numpy(np.load(os.path.join(args.reference, "lq.npy")))
start = sampling["start_step"]

os.makedirs(args.out, exist_ok=True)
trajectory = []
outputs = {
    "restored_eta0": sampler.restore(lq, start, 0.0, sampling["seed_eta0"], trajectory),
    "restored_eta": sampler.restore(lq, start, sampling["eta"], sampling["seed_eta"]),
}
for step in sampling["trajectory_steps_saved"]:
    outputs[f"traj_eta0_step{step}"] = trajectory[step]
for name, value in outputs.items():
    np.save(os.path.join(args.out, name + ".npy"), value.contiguous().numpy())
