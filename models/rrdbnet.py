"""RRDBNet at scale 2: the Real-ESRGAN x2plus network that upscales a whole photo's background.

Built so that its state dict has the names and shapes of ``RealESRGAN_x2plus.pth`` (the
``params_ema`` entry): ``conv_first`` on the photo folded into 2x2 cells (12 channels),
``body.0-22`` residual-in-residual dense blocks (``rdb1-3.conv1-5``, growth 32), ``conv_body``,
then two nearest-neighbour doublings (``conv_up1``, ``conv_up2``), ``conv_hr`` and ``conv_last``.

Input: RGB in [0, 1], [B, 3, H, W] with H and W even. Output: RGB, [B, 3, 2H, 2W], not clamped.
"""

from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F

# Every LeakyReLU has slope 0.2, and both levels of blocks add their residual branch scaled
# by 0.2, as the published network does (literals: TorchScript takes no float globals).


def fold(x: torch.Tensor, cell: int) -> torch.Tensor:
    """Each cell x cell block of pixels into channels: [B, C, H, W] -> [B, C cell^2, H / cell, W / cell].

    Channel order: channel-major, then the row within the cell, then the column."""
    b, c, h, w = x.shape
    x = x.view(b, c, h // cell, cell, w // cell, cell)
    return x.permute(0, 1, 3, 5, 2, 4).reshape(b, c * cell * cell, h // cell, w // cell)


class DenseBlock(nn.Module):
    """Five 3x3 convolutions, each seeing the block's input and every earlier output."""

    def __init__(self, features: int, growth: int):
        super().__init__()
        self.conv1 = nn.Conv2d(features, growth, 3, 1, 1)
        self.conv2 = nn.Conv2d(features + growth, growth, 3, 1, 1)
        self.conv3 = nn.Conv2d(features + 2 * growth, growth, 3, 1, 1)
        self.conv4 = nn.Conv2d(features + 3 * growth, growth, 3, 1, 1)
        self.conv5 = nn.Conv2d(features + 4 * growth, features, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seen: List[torch.Tensor] = [x]
        seen.append(F.leaky_relu(self.conv1(torch.cat(seen, 1)), 0.2))
        seen.append(F.leaky_relu(self.conv2(torch.cat(seen, 1)), 0.2))
        seen.append(F.leaky_relu(self.conv3(torch.cat(seen, 1)), 0.2))
        seen.append(F.leaky_relu(self.conv4(torch.cat(seen, 1)), 0.2))
        return self.conv5(torch.cat(seen, 1)) * 0.2 + x


class ResidualInResidual(nn.Module):
    def __init__(self, features: int, growth: int):
        super().__init__()
        self.rdb1 = DenseBlock(features, growth)
        self.rdb2 = DenseBlock(features, growth)
        self.rdb3 = DenseBlock(features, growth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    def __init__(self, features: int = 64, blocks: int = 23, growth: int = 32):
        super().__init__()
        self.conv_first = nn.Conv2d(3 * 4, features, 3, 1, 1)
        self.body = nn.Sequential(*[ResidualInResidual(features, growth) for _ in range(blocks)])
        self.conv_body = nn.Conv2d(features, features, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(features, features, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(features, features, 3, 1, 1)
        self.conv_hr = nn.Conv2d(features, features, 3, 1, 1)
        self.conv_last = nn.Conv2d(features, 3, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv_first(fold(x, 2))
        feat = feat + self.conv_body(self.body(feat))
        feat = F.leaky_relu(self.conv_up1(F.interpolate(feat, scale_factor=2.0, mode="nearest")), 0.2)
        feat = F.leaky_relu(self.conv_up2(F.interpolate(feat, scale_factor=2.0, mode="nearest")), 0.2)
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))
