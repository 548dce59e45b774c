"""What the project's eager inpainting sampler computes on random checkpoints, run on this
machine, so that the tests can hold the engine to it.

    eager_inpainting_case.py CHECKPOINT_DIR OUT_DIR --start K --seed S --threads N

CHECKPOINT_DIR holds unet.pth, backbone.pth and config.json (random_checkpoint.py). Writes to
OUT_DIR:
  image.npy, mask.npy            two faces at the networks' size with rectangular holes
                                 (the first's holes exactly 0, the second's left as they were)
  lama_in.npy, lama_out.npy      LaMa's input (holes at 0, then the mask) and its output
  step_x.npy, step_y0.npy, step_noise.npy
                                 a state x_t, the known image in [-1, 1] and z for one step
  step_x0.npy, step_prev.npy     that step's refined x-hat_0 and x_{t-1} at index K - 1
  inpainted.npy                  the whole inpainting of image/mask with seed S
  odd_image.npy, odd_mask.npy, odd_inpainted.npy
                                 one face of another size (resized through the networks and back)
  refine.json                    the closed-form refinement against autograd's, over many draws
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
from eager_inpainting import EagerInpainter, masking_regularizer_step  # noqa: E402
from eager_sampler import RespacedSchedule  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("checkpoints")
parser.add_argument("out")
parser.add_argument("--start", type=int, required=True)
parser.add_argument("--seed", type=int, required=True)
parser.add_argument("--threads", type=int, required=True)
args = parser.parse_args()
torch.set_num_threads(args.threads)
torch.set_grad_enabled(False)
os.makedirs(args.out, exist_ok=True)


def save(name, tensor):
    np.save(os.path.join(args.out, name + ".npy"), tensor.contiguous().numpy())


config = configs.load(os.path.join(args.checkpoints, "config.json"))
unet, lama = networks.load(config, os.path.join(args.checkpoints, "unet.pth"), os.path.join(args.checkpoints, "backbone.pth"))
side = config["unet_config"]["image_size"]
gamma = config["sampling"]["gamma"]
eta = config["sampling"]["eta"]
sampler = EagerInpainter(unet, lama, RespacedSchedule.from_config(config["diffusion_config"]), side)
generator = torch.Generator().manual_seed(args.seed)


def faces(batch, height, width):
    """Faces with 8-bit values, as decoded images have them."""
    return torch.floor(torch.rand(batch, 3, height, width, generator=generator) * 256).clamp(max=255) / 255


def holes(batch, height, width):
    mask = torch.zeros(batch, 1, height, width)
    for b in range(batch):
        top, left = 4 + 3 * b, 6 + 5 * b
        mask[b, :, top:top + height // 3, left:left + width // 2] = 1
    return mask


image = faces(2, side, side)
mask = holes(2, side, side)
image[0:1] = image[0:1] * (1 - mask[0:1])
save("image", image)
save("mask", mask)

lama_in = torch.cat([image * (1 - mask), mask], dim=1)
save("lama_in", lama_in)
save("lama_out", lama(lama_in))

index = args.start - 1
x = torch.randn(2, 3, side, side, generator=generator)
y0 = (image * (1 - mask) - 0.5) / 0.5
noise = torch.randn(2, 3, side, side, generator=generator)
previous, x0 = sampler.inpaint_step(x, torch.tensor([index] * 2), eta, y0, mask, gamma, noise)
for name, value in (("step_x", x), ("step_y0", y0), ("step_noise", noise), ("step_x0", x0), ("step_prev", previous)):
    save(name, value)

save("inpainted", sampler.inpaint(image, mask, args.start, eta, gamma, args.seed)[0])

odd_image = faces(1, side + 16, side - 8)
odd_mask = holes(1, side + 16, side - 8)
save("odd_image", odd_image)
save("odd_mask", odd_mask)
save("odd_inpainted", sampler.inpaint(odd_image, odd_mask, args.start, eta, gamma, args.seed)[0])

# The refinement's closed form, as the engine computes it, against autograd's gradient step.
worst = {"gamma_half": 0.0, "other_gammas": 0.0}
for trial in range(50):
    x0 = (torch.rand(2, 3, side, side, generator=generator) * 2 - 1)
    known = torch.rand(2, 3, side, side, generator=generator) * 2 - 1
    holes_now = (torch.rand(2, 1, side, side, generator=generator) > 0.6).float()
    for g in (0.5, 0.1, 0.3, 0.9, 1.0):
        closed = x0 - (x0 - known) * 2.0 * (1.0 - holes_now) * g
        autograd = masking_regularizer_step(x0, known, holes_now, g)
        key = "gamma_half" if g == 0.5 else "other_gammas"
        worst[key] = max(worst[key], (closed - autograd).abs().max().item())
with open(os.path.join(args.out, "refine.json"), "w", encoding="utf-8") as handle:
    json.dump(worst, handle)
