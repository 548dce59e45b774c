"""RetinaFace with a ResNet-50 body: the face detector of the published whole-photo chain.

Built so that its state dict has the names and shapes of ``detection_Resnet50_Final.pth``
(once DataParallel's ``module.`` is taken off): ``body.*`` is torchvision's ResNet-50 up to
``layer4`` (no pooling head), then a feature pyramid over layers 2-4 (``fpn.*``), a context
module per level (``ssh1-3.*``) and three 1x1 heads per level, each predicting two anchors per
cell.

Input: a BGR image in 0-255 with the means (104, 117, 123) taken off, [B, 3, H, W].
Output, per anchor in the order of the prior boxes (level by level, row by row, anchor by
anchor): box offsets [B, N, 4], class probabilities [B, N, 2] (softmax; column 1 is "face")
and landmark offsets [B, N, 10]. Decoding them against the priors is the engine's job
(cpp/retinaface.cpp).

Behaviours of the published network kept on purpose:
- with 256 channels, the pyramid's and context modules' LeakyReLUs have slope 0;
- the upper pyramid levels are brought to the lower ones' size by nearest interpolation.
"""

from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from photo_layers import FrozenBatchNorm2d

CHANNELS = 256


def conv_bn(inputs: int, outputs: int, kernel: int, stride: int = 1, slope: Optional[float] = None) -> nn.Sequential:
    """Convolution without bias, batch norm and, when `slope` is given, a LeakyReLU (names 0, 1, 2)."""
    layers: List[nn.Module] = [nn.Conv2d(inputs, outputs, kernel, stride, kernel // 2, bias=False), FrozenBatchNorm2d(outputs)]
    if slope is not None:
        layers.append(nn.LeakyReLU(slope))
    return nn.Sequential(*layers)


class Bottleneck(nn.Module):
    """torchvision's ResNet-50 block: 1x1, 3x3 (carrying the stride), 1x1 to four times the width."""

    def __init__(self, inputs: int, width: int, stride: int, project: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, width, 1, bias=False)
        self.bn1 = FrozenBatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = FrozenBatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = FrozenBatchNorm2d(width * 4)
        self.relu = nn.ReLU()
        self.downsample: Optional[nn.Module] = None
        if project:
            self.downsample = nn.Sequential(nn.Conv2d(inputs, width * 4, 1, stride, bias=False), FrozenBatchNorm2d(width * 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x
        if self.downsample is not None:
            shortcut = self.downsample(x)
        return self.relu(out + shortcut)


def resnet_layer(inputs: int, width: int, blocks: int, stride: int) -> nn.Sequential:
    layers = [Bottleneck(inputs, width, stride, True)]
    layers += [Bottleneck(width * 4, width, 1, False) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ResNet50Body(nn.Module):
    """ResNet-50 to layer4; returns the outputs of layers 2, 3 and 4 (strides 8, 16, 32)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = FrozenBatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = resnet_layer(64, 64, 3, 1)
        self.layer2 = resnet_layer(256, 128, 4, 2)
        self.layer3 = resnet_layer(512, 256, 6, 2)
        self.layer4 = resnet_layer(1024, 512, 3, 2)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer2(self.layer1(x))
        c3 = self.layer3(c2)
        c4 = self.layer4(c3)
        return c2, c3, c4


class FeaturePyramid(nn.Module):
    def __init__(self, inputs: List[int], channels: int):
        super().__init__()
        self.output1 = conv_bn(inputs[0], channels, 1, slope=0.0)
        self.output2 = conv_bn(inputs[1], channels, 1, slope=0.0)
        self.output3 = conv_bn(inputs[2], channels, 1, slope=0.0)
        self.merge1 = conv_bn(channels, channels, 3, slope=0.0)
        self.merge2 = conv_bn(channels, channels, 3, slope=0.0)

    def forward(self, c2: torch.Tensor, c3: torch.Tensor, c4: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p1 = self.output1(c2)
        p2 = self.output2(c3)
        p3 = self.output3(c4)
        p2 = self.merge2(p2 + F.interpolate(p3, size=[p2.size(2), p2.size(3)], mode="nearest"))
        p1 = self.merge1(p1 + F.interpolate(p2, size=[p1.size(2), p1.size(3)], mode="nearest"))
        return p1, p2, p3


class ContextModule(nn.Module):
    """The SSH context module: 3x3, 5x5 and 7x7 receptive fields side by side (halves and quarters of the channels)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv3X3 = conv_bn(channels, channels // 2, 3)
        self.conv5X5_1 = conv_bn(channels, channels // 4, 3, slope=0.0)
        self.conv5X5_2 = conv_bn(channels // 4, channels // 4, 3)
        self.conv7X7_2 = conv_bn(channels // 4, channels // 4, 3, slope=0.0)
        self.conv7x7_3 = conv_bn(channels // 4, channels // 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        narrow = self.conv5X5_1(x)
        wide = self.conv7X7_2(narrow)
        return F.relu(torch.cat([self.conv3X3(x), self.conv5X5_2(narrow), self.conv7x7_3(wide)], dim=1))


class Head(nn.Module):
    """A 1x1 convolution predicting `values` numbers for each of two anchors per cell, as [B, cells * 2, values]."""

    def __init__(self, channels: int, values: int):
        super().__init__()
        self.values = values
        self.conv1x1 = nn.Conv2d(channels, 2 * values, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1x1(x).permute(0, 2, 3, 1).contiguous()
        return out.view(out.shape[0], -1, self.values)


def heads(values: int) -> nn.ModuleList:
    return nn.ModuleList([Head(CHANNELS, values) for _ in range(3)])


class RetinaFace(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = ResNet50Body()
        self.fpn = FeaturePyramid([512, 1024, 2048], CHANNELS)
        self.ssh1 = ContextModule(CHANNELS)
        self.ssh2 = ContextModule(CHANNELS)
        self.ssh3 = ContextModule(CHANNELS)
        self.ClassHead = heads(2)
        self.BboxHead = heads(4)
        self.LandmarkHead = heads(10)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c2, c3, c4 = self.body(x)
        p1, p2, p3 = self.fpn(c2, c3, c4)
        features = [self.ssh1(p1), self.ssh2(p2), self.ssh3(p3)]
        boxes: List[torch.Tensor] = []
        classes: List[torch.Tensor] = []
        landmarks: List[torch.Tensor] = []
        for i, head in enumerate(self.BboxHead):
            boxes.append(head(features[i]))
        for i, head in enumerate(self.ClassHead):
            classes.append(head(features[i]))
        for i, head in enumerate(self.LandmarkHead):
            landmarks.append(head(features[i]))
        return torch.cat(boxes, dim=1), F.softmax(torch.cat(classes, dim=1), dim=-1), torch.cat(landmarks, dim=1)
