"""An eager PyTorch DifFace sampler, written the way the published sampler is written.

It is the yardstick the engine is measured against: the tests compare the engine's
results with it on configurations the reference tensors do not cover, and the benchmarks
time the engine against it on the same weights and threads. It is never used at inference.

The schedule lives in numpy float64 arrays and every coefficient is read out per step and
cast to float32, as the published GaussianDiffusion does; noise is drawn with randn_like.
"""

import numpy as np
import torch


def training_betas(noise_schedule, steps):
    if noise_schedule == "linear":
        scale = 1000 / steps
        return np.linspace(scale * 0.0001, scale * 0.02, steps, dtype=np.float64)
    if noise_schedule == "cosine":
        def alpha_bar(t):
            return np.cos((t + 0.008) / 1.008 * np.pi / 2) ** 2
        return np.array([min(1 - alpha_bar((i + 1) / steps) / alpha_bar(i / steps), 0.999) for i in range(steps)],
                        dtype=np.float64)
    raise ValueError(f"unknown noise schedule {noise_schedule!r}")


def kept_timesteps(steps, respacing):
    if not respacing:
        return list(range(steps))
    if respacing.startswith("ddim"):
        wanted = int(respacing[len("ddim"):])
        for stride in range(1, steps):
            if len(range(0, steps, stride)) == wanted:
                return list(range(0, steps, stride))
        raise ValueError(f"no integer stride gives {wanted} steps")
    counts = [int(c) for c in respacing.split(",")]
    per, extra = divmod(steps, len(counts))
    kept, start = set(), 0
    for index, count in enumerate(counts):
        size = per + (1 if index < extra else 0)
        stride = 1 if count <= 1 else (size - 1) / (count - 1)
        position = 0.0
        for _ in range(count):
            kept.add(start + round(position))
            position += stride
        start += size
    return sorted(kept)


class RespacedSchedule:
    """The respaced chain's cumulative alphas, float64, recomputed from its own betas."""

    def __init__(self, steps, noise_schedule, respacing, rescale_timesteps=False):
        alphas_cumprod = np.cumprod(1.0 - training_betas(noise_schedule, steps))
        self.timestep_map = kept_timesteps(steps, respacing)
        last, betas = 1.0, []
        for t in self.timestep_map:
            betas.append(1 - alphas_cumprod[t] / last)
            last = alphas_cumprod[t]
        self.alphas_cumprod = np.cumprod(1.0 - np.array(betas))
        self.alphas_cumprod_prev = np.append(1.0, self.alphas_cumprod[:-1])
        self.sqrt_alphas_cumprod = np.sqrt(self.alphas_cumprod)
        self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - self.alphas_cumprod)
        self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod)
        self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod - 1)
        self.time_scale = 1000.0 / steps if rescale_timesteps else None

    @classmethod
    def from_config(cls, diffusion):
        """The schedule a configuration's diffusion_config describes, with the published defaults."""
        return cls(diffusion["steps"], diffusion.get("noise_schedule", "linear"),
                   str(diffusion.get("timestep_respacing", "") or ""), diffusion.get("rescale_timesteps", False))


def extract(array, t, shape):
    values = torch.from_numpy(array).to(t.device)[t].float()
    return values.view(-1, *([1] * (len(shape) - 1))).expand(shape)


class EagerSampler:
    def __init__(self, unet, backbone, schedule):
        self.unet = unet
        self.backbone = backbone
        self.schedule = schedule

    def network_time(self, t):
        mapped = torch.tensor(self.schedule.timestep_map, device=t.device)[t]
        if self.schedule.time_scale is not None:
            return mapped.float() * self.schedule.time_scale
        return mapped

    def q_sample(self, x_start, t):
        s = self.schedule
        noise = torch.randn_like(x_start)
        return extract(s.sqrt_alphas_cumprod, t, x_start.shape) * x_start \
            + extract(s.sqrt_one_minus_alphas_cumprod, t, x_start.shape) * noise

    def ddim_step(self, x, t, eta):
        s = self.schedule
        out = self.unet(x, self.network_time(t))
        eps = torch.split(out, x.shape[1], dim=1)[0]
        pred_xstart = (extract(s.sqrt_recip_alphas_cumprod, t, x.shape) * x
                       - extract(s.sqrt_recipm1_alphas_cumprod, t, x.shape) * eps).clamp(-1, 1)
        alpha_bar = extract(s.alphas_cumprod, t, x.shape)
        alpha_bar_prev = extract(s.alphas_cumprod_prev, t, x.shape)
        sigma = eta * torch.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar)) * torch.sqrt(1 - alpha_bar / alpha_bar_prev)
        noise = torch.randn_like(x)
        mean = pred_xstart * torch.sqrt(alpha_bar_prev) + torch.sqrt(1 - alpha_bar_prev - sigma ** 2) * eps
        nonzero = (t != 0).float().view(-1, *([1] * (len(x.shape) - 1)))
        return mean + nonzero * sigma * noise

    @torch.no_grad()
    def restore(self, lq, start_step, eta, seed, trajectory=None):
        """lq in [0, 1] -> restored faces in [0, 1]; one generator seeded right before the transition."""
        estimate = self.backbone(lq)
        estimate.clamp_(0.0, 1.0)
        torch.manual_seed(seed)
        batch = lq.shape[0]
        x = self.q_sample((estimate - 0.5) / 0.5, torch.tensor([start_step] * batch, device=lq.device))
        for i in reversed(range(start_step)):
            x = self.ddim_step(x, torch.tensor([i] * batch, device=lq.device), eta)
            if trajectory is not None:
                trajectory.append(x)
        return (x * 0.5 + 0.5).clamp(0.0, 1.0)
