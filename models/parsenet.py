"""ParseNet: the face-parsing network whose labels make the published paste mask.

Built so that its state dict has the names and shapes of ``parsing_parsenet.pth`` (a plain
state dict, as released with CodeFormer's face library and used by DifFace's copy of it):

- ``encoder.0``: a 3x3 convolution, RGB to 64 channels;
- ``encoder.1-4``: residual blocks that halve the size (64 -> 128 -> 256 -> 256 -> 256);
- ``body.0-9``: residual blocks at 1/16 of the size, 256 channels;
- ``decoder.0-3``: residual blocks that double it (256 -> 256 -> 256 -> 128 -> 64);
- ``out_mask_conv`` (19 labels) and ``out_img_conv`` (an RGB image the paste never uses, kept
  so that the published file fills the network exactly).

Every convolution sees its input padded by reflection; a block's convolutions are followed by
frozen batch norm, the first by LeakyReLU(0.2); the shortcut of a block that changes the size
or the width is a plain convolution (with bias) that does the same.

Input: RGB mapped to [-1, 1], [B, 3, H, W] with H and W multiples of 16 (the published tool
feeds 512 x 512 faces). Output: the 19 labels' scores, [B, 19, H, W].
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from photo_layers import FrozenBatchNorm2d

BASE_CHANNELS = 64
WIDEST = 256
NARROWEST = 32
SIZE_STEPS = 4       # 512 down to 32 and back, as the published network is built for 512 faces
BODY_BLOCKS = 10
LABELS = 19


class Norm(nn.Module):
    """Holds the batch norm one level down, where the published file names it (``norm.norm``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = FrozenBatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


class ConvLayer(nn.Module):
    """Optional nearest doubling, reflection pad, 3x3 convolution (stride 2 to halve), norm, activation."""

    def __init__(self, cin: int, cout: int, halve: bool = False, double: bool = False, norm: bool = False,
                 activate: bool = False):
        super().__init__()
        self.double = double
        self.activate = activate
        self.conv2d = nn.Conv2d(cin, cout, 3, 2 if halve else 1, bias=not norm)
        self.norm = Norm(cout) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.double:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = self.norm(self.conv2d(F.pad(x, [1, 1, 1, 1], mode="reflect")))
        if self.activate:
            x = F.leaky_relu(x, 0.2)
        return x


class ResidualBlock(nn.Module):
    def __init__(self, cin: int, cout: int, change: str = "none"):
        super().__init__()
        halve, double = change == "down", change == "up"
        if change == "none" and cin == cout:
            self.shortcut_func = nn.Identity()
        else:
            self.shortcut_func = ConvLayer(cin, cout, halve=halve, double=double)
        # Halving happens in the second convolution, doubling before the first, as published.
        self.conv1 = ConvLayer(cin, cout, double=double, norm=True, activate=True)
        self.conv2 = ConvLayer(cout, cout, halve=halve, norm=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut_func(x) + self.conv2(self.conv1(x))


def clip(channels: int) -> int:
    return max(NARROWEST, min(channels, WIDEST))


class ParseNet(nn.Module):
    def __init__(self):
        super().__init__()
        encoder = [ConvLayer(3, BASE_CHANNELS)]
        width = BASE_CHANNELS
        for _ in range(SIZE_STEPS):
            encoder.append(ResidualBlock(clip(width), clip(width * 2), "down"))
            width *= 2
        self.encoder = nn.Sequential(*encoder)
        self.body = nn.Sequential(*[ResidualBlock(clip(width), clip(width)) for _ in range(BODY_BLOCKS)])
        decoder = []
        for _ in range(SIZE_STEPS):
            decoder.append(ResidualBlock(clip(width), clip(width // 2), "up"))
            width //= 2
        self.decoder = nn.Sequential(*decoder)
        self.out_img_conv = ConvLayer(clip(width), 3)
        self.out_mask_conv = ConvLayer(clip(width), LABELS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.encoder(x)
        return self.out_mask_conv(self.decoder(features + self.body(features)))
