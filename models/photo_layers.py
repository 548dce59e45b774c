"""Layers the three whole-photo networks share.

Batch norm here is frozen (inference only) and keeps no ``num_batches_tracked`` counter: the
counter changes nothing at inference, and some published files carry it while others do not,
so the engine ignores it when it fills a network (cpp/architecture.cpp).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


class FrozenBatchNorm2d(nn.Module):
    """Batch norm with running statistics, as nn.BatchNorm2d computes it in eval mode."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


def randomise_batch_norm_statistics(network, generator):
    """Batch norm statistics away from 0 and 1, so that a check on random weights sees them used."""
    with torch.no_grad():
        for name, tensor in network.state_dict().items():
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            elif name.endswith("running_mean"):
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.1)
    return network
