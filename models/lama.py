"""LaMa's FFCResNetGenerator, the estimator DifFace diffuses for inpainting.

Built from the published keys (``input_nc``, ``output_nc``, ``ngf``, ``n_downsampling``,
``n_blocks``, ``add_out_act`` and the three ``*_conv_kwargs``) so that the published
configuration yields the published state-dict layout: the same names, shapes and order as
``lama_inpainting256.pth``. Everything sits in one ``nn.Sequential`` called ``model``, as in
the published network, because the checkpoint's names (``model.5.conv1.ffc.convg2g.fu.bn.weight``)
are indices into it.

The published network passes ``(local, global)`` pairs between its Fast Fourier
Convolutions and tells a missing half by ``type(x) is tuple`` and the integer 0, which
TorchScript cannot compile. Here every stage of ``model`` maps a pair to a pair, the missing
half being ``None``: the plain layers (padding, transposed convolutions, batch norms,
activations) act on the local half and carry the other. The arithmetic is the published
one, operation for operation; what the published code adds that cannot change a value
(``+ 0`` for a missing half, ``* 1`` for an absent gate) is left out.

Only what the published estimator uses is built: no local Fourier unit, no gates, no
spatial transforms, no output FFC block. Anything else is refused with ValueError, so that
a configuration never silently means something else.
"""

from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

Pair = Tuple[torch.Tensor, Optional[torch.Tensor]]


class FourierUnit(nn.Module):
    """A 1x1 convolution in the frequency domain: real FFT, conv + BN + ReLU on (real, imag), inverse FFT."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv_layer = nn.Conv2d(in_channels * 2, out_channels * 2, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels * 2)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        spectrum = torch.fft.rfftn(x, dim=[-2, -1], norm="ortho")
        # Each channel becomes two, its real part then its imaginary part, side by side.
        parts = torch.view_as_real(spectrum).permute(0, 1, 4, 2, 3).contiguous()
        parts = parts.view(batch, -1, parts.shape[3], parts.shape[4])
        parts = self.relu(self.bn(self.conv_layer(parts)))
        parts = parts.view(batch, -1, 2, parts.shape[2], parts.shape[3]).permute(0, 1, 3, 4, 2).contiguous()
        return torch.fft.irfftn(torch.view_as_complex(parts), s=[x.shape[-2], x.shape[-1]], dim=[-2, -1], norm="ortho")


class SpectralTransform(nn.Module):
    """The global-to-global path of an FFC: halve the channels, a Fourier unit with a skip, restore them."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.downsample = nn.AvgPool2d(kernel_size=(2, 2), stride=2) if stride == 2 else nn.Identity()
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, out_channels // 2, kernel_size=1, bias=False),
            nn.BatchNorm2d(out_channels // 2),
            nn.ReLU(inplace=True),
        )
        self.fu = FourierUnit(out_channels // 2, out_channels // 2)
        self.conv2 = nn.Conv2d(out_channels // 2, out_channels, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(self.downsample(x))
        return self.conv2(x + self.fu(x))


def _conv_or_none(in_channels, out_channels, kernel_size, stride, padding, dilation, padding_type):
    if in_channels == 0 or out_channels == 0:
        return None
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, 1, False,
                     padding_mode=padding_type)


class FFC(nn.Module):
    """Fast Fourier Convolution: local and global channels, each feeding both, the global-to-global path spectral."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, ratio_gin: float, ratio_gout: float,
                 stride: int = 1, padding: int = 0, dilation: int = 1, padding_type: str = "reflect"):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"an FFC's stride must be 1 or 2, got {stride}")
        in_global = int(in_channels * ratio_gin)
        out_global = int(out_channels * ratio_gout)
        in_local, out_local = in_channels - in_global, out_channels - out_global
        if in_local == 0 or out_local == 0:
            raise ValueError("ratio_gin and ratio_gout must leave local channels (values below 1)")
        self.convl2l = _conv_or_none(in_local, out_local, kernel_size, stride, padding, dilation, padding_type)
        self.convl2g = _conv_or_none(in_local, out_global, kernel_size, stride, padding, dilation, padding_type)
        self.convg2l = _conv_or_none(in_global, out_local, kernel_size, stride, padding, dilation, padding_type)
        self.convg2g = SpectralTransform(in_global, out_global, stride) if in_global > 0 and out_global > 0 else None

    def forward(self, x_l: torch.Tensor, x_g: Optional[torch.Tensor]) -> Pair:
        assert self.convl2l is not None
        out_l = self.convl2l(x_l)
        if self.convg2l is not None:
            assert x_g is not None
            out_l = out_l + self.convg2l(x_g)
        out_g: Optional[torch.Tensor] = None
        if self.convl2g is not None:
            out_g = self.convl2g(x_l)
            if self.convg2g is not None:
                assert x_g is not None
                out_g = out_g + self.convg2g(x_g)
        return out_l, out_g


class FFC_BN_ACT(nn.Module):
    """An FFC, then a batch norm and a ReLU on each half that exists."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, ratio_gin: float, ratio_gout: float,
                 stride: int = 1, padding: int = 0, dilation: int = 1, padding_type: str = "reflect"):
        super().__init__()
        self.ffc = FFC(in_channels, out_channels, kernel_size, ratio_gin, ratio_gout, stride, padding, dilation,
                       padding_type)
        out_global = int(out_channels * ratio_gout)
        self.bn_l = nn.BatchNorm2d(out_channels - out_global)
        self.act_l = nn.ReLU(inplace=True)
        self.bn_g = nn.BatchNorm2d(out_global) if out_global > 0 else None
        self.act_g = nn.ReLU(inplace=True) if out_global > 0 else None

    def forward(self, x: Pair) -> Pair:
        x_l, x_g = self.ffc(x[0], x[1])
        x_l = self.act_l(self.bn_l(x_l))
        if x_g is not None and self.bn_g is not None and self.act_g is not None:
            x_g = self.act_g(self.bn_g(x_g))
        return x_l, x_g


class FFCResnetBlock(nn.Module):
    """Two 3x3 FFC_BN_ACTs with a skip on each half."""

    def __init__(self, dim: int, ratio_gin: float, ratio_gout: float, padding_type: str):
        super().__init__()
        self.conv1 = FFC_BN_ACT(dim, dim, 3, ratio_gin, ratio_gout, padding=1, padding_type=padding_type)
        self.conv2 = FFC_BN_ACT(dim, dim, 3, ratio_gin, ratio_gout, padding=1, padding_type=padding_type)

    def forward(self, x: Pair) -> Pair:
        id_l, id_g = x
        x_l, x_g = self.conv2(self.conv1(x))
        assert id_g is not None and x_g is not None
        return id_l + x_l, id_g + x_g


class ConcatTupleLayer(nn.Module):
    """The two halves as one tensor again, local channels first."""

    def forward(self, x: Pair) -> Pair:
        x_l, x_g = x
        if x_g is None:
            return x_l, None
        return torch.cat([x_l, x_g], dim=1), None


# The plain layers of `model`, each taking and giving a pair and acting on its local half.
# They subclass the torch layers so that their weights keep the published names.

class ReflectionPad2d(nn.ReflectionPad2d):
    def forward(self, x: Pair) -> Pair:
        return F.pad(x[0], self.padding, "reflect"), x[1]


class Conv2d(nn.Conv2d):
    def forward(self, x: Pair) -> Pair:
        return self._conv_forward(x[0], self.weight, self.bias), x[1]


class ConvTranspose2d(nn.ConvTranspose2d):
    def forward(self, x: Pair) -> Pair:
        return F.conv_transpose2d(x[0], self.weight, self.bias, self.stride, self.padding, self.output_padding,
                                  self.groups, self.dilation), x[1]


class BatchNorm2d(nn.BatchNorm2d):
    """Inference only: normalised with the running statistics, as eval() makes the published layer do."""

    def forward(self, x: Pair) -> Pair:
        return F.batch_norm(x[0], self.running_mean, self.running_var, self.weight, self.bias, False, 0.0,
                            self.eps), x[1]


class ReLU(nn.ReLU):
    def forward(self, x: Pair) -> Pair:
        return F.relu(x[0], inplace=True), x[1]


class Sigmoid(nn.Sigmoid):
    def forward(self, x: Pair) -> Pair:
        return torch.sigmoid(x[0]), x[1]


class Tanh(nn.Tanh):
    def forward(self, x: Pair) -> Pair:
        return torch.tanh(x[0]), x[1]


OUTPUT_ACTIVATIONS = {"sigmoid": Sigmoid, "tanh": Tanh, True: Tanh}


class PairSequence(nn.Sequential):
    """nn.Sequential over pairs (TorchScript types an unannotated forward's input as a tensor)."""

    def forward(self, x: Pair) -> Pair:
        for stage in self:
            x = stage(x)
        return x


def _ratios(kwargs, what):
    kwargs = dict(kwargs or {})
    if kwargs.pop("enable_lfu", False):
        raise ValueError(f"{what}: the local Fourier unit (enable_lfu) is not supported; the published estimator has none")
    if kwargs.pop("gated", False):
        raise ValueError(f"{what}: gated FFCs are not supported; the published estimator has none")
    ratio_gin = float(kwargs.pop("ratio_gin", 0))
    ratio_gout = float(kwargs.pop("ratio_gout", 0))
    if kwargs:
        raise ValueError(f"{what}: unknown keys {', '.join(sorted(map(str, kwargs)))}")
    return ratio_gin, ratio_gout


class FFCResNetGenerator(nn.Module):
    """Reflection pad and 7x7 FFC; strided FFC downsamplings; FFC residual blocks; transposed-convolution
    upsamplings; reflection pad, 7x7 convolution and the output activation."""

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 64, n_downsampling: int = 3, n_blocks: int = 9,
                 padding_type: str = "reflect", add_out_act="sigmoid", max_features: int = 1024,
                 init_conv_kwargs=None, downsample_conv_kwargs=None, resnet_conv_kwargs=None,
                 spatial_transform_layers=None, out_ffc: bool = False):
        super().__init__()
        if n_blocks < 1 or n_downsampling < 1:
            raise ValueError("n_blocks and n_downsampling must be at least 1")
        if spatial_transform_layers or out_ffc:
            raise ValueError("spatial transforms and an output FFC block are not supported; the published estimator has neither")
        if add_out_act not in OUTPUT_ACTIVATIONS and add_out_act not in (False, None):
            raise ValueError(f"add_out_act must be 'sigmoid', 'tanh' or false, got {add_out_act!r}")
        init_in, init_out = _ratios(init_conv_kwargs, "init_conv_kwargs")
        down_in, down_out = _ratios(downsample_conv_kwargs, "downsample_conv_kwargs")
        block_in, block_out = _ratios(resnet_conv_kwargs, "resnet_conv_kwargs")

        # As published, only the residual blocks take padding_type; the first convolution and the
        # downsamplings always pad by reflection.
        layers = [ReflectionPad2d(3), FFC_BN_ACT(input_nc, ngf, 7, init_in, init_out)]
        for i in range(n_downsampling):
            # The last downsampling hands the residual blocks their global channels.
            ratio_gout = block_in if i == n_downsampling - 1 else down_out
            layers.append(FFC_BN_ACT(min(max_features, ngf * 2 ** i), min(max_features, ngf * 2 ** (i + 1)), 3,
                                     down_in, ratio_gout, stride=2, padding=1))
        bottleneck = min(max_features, ngf * 2 ** n_downsampling)
        layers += [FFCResnetBlock(bottleneck, block_in, block_out, padding_type) for _ in range(n_blocks)]
        layers.append(ConcatTupleLayer())
        for i in range(n_downsampling):
            channels = ngf * 2 ** (n_downsampling - i)
            layers += [ConvTranspose2d(min(max_features, channels), min(max_features, channels // 2), kernel_size=3,
                                       stride=2, padding=1, output_padding=1),
                       BatchNorm2d(min(max_features, channels // 2)), ReLU(inplace=True)]
        layers += [ReflectionPad2d(3), Conv2d(ngf, output_nc, kernel_size=7, padding=0)]
        if add_out_act not in (False, None):
            layers.append(OUTPUT_ACTIVATIONS[add_out_act]())
        self.model = PairSequence(*layers)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        start: Pair = (input, None)
        return self.model(start)[0]
