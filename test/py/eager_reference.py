"""The project's eager sampler on the small reference checkpoints, run on this machine, so that
the tests can compare whole chains with arithmetic done on the same processor.

    eager_reference.py REFERENCE_DIR OUT_DIR --threads N

REFERENCE_DIR holds reference.json, unet.pth, backbone.pth, lq.npy and xt_eta0.npy (the stored
published tensors). Writes to OUT_DIR:
  step_eta0.npy          one eta = 0 step from the stored x_N (index N-1); the stored first step
                         of the published chain is the same step
  first_step_eta.npy     the transition and one eta step with the eta run's seed, as a generator
                         seeded once draws them (x_N's draw, then the step's)
  restored_eta0.npy, restored_eta.npy
                         whole restores with the reference seeds
  traj_eta0_step{K}.npy  the eta = 0 chain after step K, for the steps reference.json lists
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models"))

import config as configs  # noqa: E402
import networks  # noqa: E402
from eager_sampler import EagerSampler, RespacedSchedule  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("reference")
parser.add_argument("out")
parser.add_argument("--threads", type=int, required=True)
args = parser.parse_args()
torch.set_num_threads(args.threads)
torch.set_grad_enabled(False)


def stored(name):
    return torch.from_numpy(np.load(os.path.join(args.reference, name + ".npy")))


def save(name, tensor):
    np.save(os.path.join(args.out, name + ".npy"), tensor.contiguous().numpy())


with open(os.path.join(args.reference, "reference.json"), encoding="utf-8") as handle:
    sampling = json.load(handle)["sampling"]
config = configs.load(os.path.join(args.reference, "reference.json"))
unet, backbone = networks.load(config, os.path.join(args.reference, "unet.pth"),
                               os.path.join(args.reference, "backbone.pth"))
sampler = EagerSampler(unet, backbone, RespacedSchedule.from_config(config["diffusion_config"]))
lq = stored("lq")
start = sampling["start_step"]
index = torch.tensor([start - 1] * lq.shape[0])
os.makedirs(args.out, exist_ok=True)

save("step_eta0", sampler.ddim_step(stored("xt_eta0"), index, 0.0))

torch.manual_seed(sampling["seed_eta"])
x_start = (backbone(lq).clamp(0.0, 1.0) - 0.5) / 0.5
x_n = sampler.q_sample(x_start, torch.tensor([start] * lq.shape[0]))
save("first_step_eta", sampler.ddim_step(x_n, index, sampling["eta"]))

trajectory = []
save("restored_eta0", sampler.restore(lq, start, 0.0, sampling["seed_eta0"], trajectory))
for step in sampling["trajectory_steps_saved"]:
    save(f"traj_eta0_step{step}", trajectory[step])
save("restored_eta", sampler.restore(lq, start, sampling["eta"], sampling["seed_eta"]))
