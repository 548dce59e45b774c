"""An eager PyTorch DifFace inpainting sampler, written the way the published sampler is written.

The yardstick the engine's inpainting is measured against in the tests; never used at
inference. As published (sampler.py and models/gaussian_diffusion.py of DifFace):

- the hole mask is 1 where the image is missing; without a mask file it is where all three
  channels are exactly 0;
- LaMa takes the image (holes at 0) and the mask, and its output, clamped to [0, 1], is
  diffused to step N;
- each DDIM step clips the predicted x_0, refines it by one gradient step of
  gamma * sum((1 - mask) * (x_0 - y_0)^2), computed by autograd, clips it again, and moves
  with the network's raw eps;
- at the end the known pixels of the input are put back.

Faces of another size than the networks' go through them resized (antialiased bicubic), as
published; the mask at the networks' size marks every pixel that a hole pixel reaches
through the resize, and the known pixels are put back at the face's own size.
"""

import torch
import torch.nn.functional as F

from eager_sampler import EagerSampler, extract


def detect_mask(image):
    """1 where the sum over the channels is exactly 0 (published: detect_mask(y0, thres=0))."""
    total = torch.sum(image, dim=1, keepdim=True)
    return torch.where(total == 0, torch.ones_like(total), torch.zeros_like(total))


@torch.enable_grad()
def masking_regularizer_step(x0, y0, mask, gamma):
    """One update of x_0 against gamma * R, R = sum((1 - mask) * mse(x_0, y_0)), by autograd, as published."""
    current = torch.empty_like(x0, dtype=torch.float32).copy_(x0)
    current.requires_grad_(True)
    loss = (F.mse_loss(current, y0, reduction="none") * (1 - mask)).sum()
    grad = torch.autograd.grad(outputs=loss, inputs=current)[0]
    return (current.detach() - gamma * grad).type(x0.dtype)


def resized(x, side):
    return F.interpolate(x, size=(side, side), mode="bicubic", antialias=True)


class EagerInpainter(EagerSampler):
    def __init__(self, unet, lama, schedule, image_size):
        super().__init__(unet, lama, schedule)
        self.image_size = image_size

    def inpaint_step(self, x, t, eta, y0, mask, gamma, noise=None):
        """One DDIM step with the refinement: returns (x_{t-1}, refined and clipped x_0)."""
        s = self.schedule
        out = self.unet(x, self.network_time(t))
        eps = torch.split(out, x.shape[1], dim=1)[0]
        pred_xstart = (extract(s.sqrt_recip_alphas_cumprod, t, x.shape) * x
                       - extract(s.sqrt_recipm1_alphas_cumprod, t, x.shape) * eps).clamp(-1, 1)
        if gamma > 0:
            pred_xstart = masking_regularizer_step(pred_xstart, y0, mask, gamma).clamp(-1, 1)
        alpha_bar = extract(s.alphas_cumprod, t, x.shape)
        alpha_bar_prev = extract(s.alphas_cumprod_prev, t, x.shape)
        sigma = eta * torch.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar)) * torch.sqrt(1 - alpha_bar / alpha_bar_prev)
        if noise is None:
            noise = torch.randn_like(x)
        mean = pred_xstart * torch.sqrt(alpha_bar_prev) + torch.sqrt(1 - alpha_bar_prev - sigma ** 2) * eps
        nonzero = (t != 0).float().view(-1, *([1] * (len(x.shape) - 1)))
        return mean + nonzero * sigma * noise, pred_xstart

    def network_inputs(self, image, mask):
        """The image and mask at the networks' size: holes at 0, the mask binary."""
        side = self.image_size
        if image.shape[-2:] != (side, side):
            image = resized(image, side)
            mask = (resized(mask, side) != 0).to(image.dtype)
        return image * (1 - mask), mask

    @torch.no_grad()
    def inpaint(self, image, mask, start_step, eta, gamma, seed, trajectory=None):
        """image [B, 3, H, W] in [0, 1], mask [B, 1, H, W] (1: missing) -> (inpainted, LaMa's estimate), in [0, 1]."""
        y, m = self.network_inputs(image, mask)
        estimate = self.backbone(torch.cat([y, m], dim=1))
        estimate.clamp_(0.0, 1.0)
        torch.manual_seed(seed)
        batch = image.shape[0]
        x = self.q_sample((estimate - 0.5) / 0.5, torch.tensor([start_step] * batch))
        y0 = (y - 0.5) / 0.5
        for i in reversed(range(start_step)):
            x, _ = self.inpaint_step(x, torch.tensor([i] * batch), eta, y0, m, gamma)
            if trajectory is not None:
                trajectory.append(x)
        sample = (x * 0.5 + 0.5).clamp(0.0, 1.0)
        if sample.shape[-2:] != image.shape[-2:]:
            sample = F.interpolate(sample, size=image.shape[-2:], mode="bicubic", antialias=True).clamp(0.0, 1.0)
        return sample * mask + image * (1 - mask), estimate
