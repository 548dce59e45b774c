"""The improved-DDPM UNet that DifFace uses as its diffusion prior.

Built from the published configuration keys (see ``unet_config`` in a model card) so that
the published configuration yields the published state-dict layout: same names, shapes and
order. Every block takes ``(x, emb)`` so that the network scripts to TorchScript as one
graph that serves any batch size.

Two behaviours of the published network are kept on purpose, because checkpoints depend
on them:
- ``attention_resolutions`` is compared with the feature map's side length, which starts
  at ``image_size`` and halves at each level (so [32, 16, 8] puts attention where the map
  is 32, 16 and 8 pixels wide for a 512 input).
- attention blocks of the decoder ignore ``num_heads`` (they always get the default of 1
  head unless ``num_head_channels`` is set).

Each block has two forms that compute the same values, bit for bit:
- ``published_forward``, the published code's sequence of module calls, which eager code
  runs: it is the yardstick the engine is measured and checked against;
- the exported form (``forward`` under TorchScript), which skips no-op casts, computes the
  embedding's activation once for all blocks and activates in place.

Reduced precision follows the published fp16 mode: the engine converts only the
convolutions of the torso (``input_blocks``, ``middle_block``, ``output_blocks``); the
torso then runs in that dtype, while GroupNorm, the timestep embedding, the linear layers
and the output head stay in float32.
"""

import math
from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F


class GroupNorm32(nn.GroupNorm):
    """GroupNorm over 32 groups, always computed in float32."""

    def __init__(self, channels: int):
        super().__init__(32, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting() and x.dtype == torch.float32:
            return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)
        return F.group_norm(x.float(), self.num_groups, self.weight, self.bias, self.eps).to(x.dtype)


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Cosines then sines of t at geometrically spaced frequencies (period up to 10000)."""
    half = dim // 2
    steps = torch.arange(0, half, dtype=torch.float32, device=t.device)
    freqs = torch.exp(-math.log(10000.0) * steps / half)
    args = t[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2 == 1:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class EmbConv2d(nn.Conv2d):
    """A plain 3x3 convolution that fits in a block sequence (it ignores the embedding)."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight, self.bias)


class BlockSequence(nn.Sequential):
    """Children run in order, each given the timestep embedding."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        for layer in self:
            x = layer(x, emb)
        return x


class Downsample(nn.Module):
    """Halves the spatial size: a strided 3x3 convolution, or 2x2 average pooling."""

    def __init__(self, channels: int, use_conv: bool):
        super().__init__()
        self.use_conv = use_conv
        if use_conv:
            self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)
        else:
            self.op = nn.AvgPool2d(kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Upsample(nn.Module):
    """Doubles the spatial size by nearest neighbour, then an optional 3x3 convolution."""

    def __init__(self, channels: int, use_conv: bool):
        super().__init__()
        self.use_conv = use_conv
        if use_conv:
            self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        else:
            self.conv = nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.conv(x)


class Resample(nn.Module):
    """Parameter-free up/down sampling inside a residual block (resblock_updown)."""

    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "up":
            return F.interpolate(x, scale_factor=2.0, mode="nearest")
        if self.mode == "down":
            return F.avg_pool2d(x, kernel_size=2, stride=2)
        return x


class ResBlock(nn.Module):
    """Residual block conditioned on the timestep embedding (FiLM when scale_shift)."""

    def __init__(self, channels: int, emb_channels: int, dropout: float, out_channels: int,
                 scale_shift: bool, resample: str = "none"):
        super().__init__()
        self.scale_shift = scale_shift
        self.in_layers = nn.Sequential(
            GroupNorm32(channels),
            nn.SiLU(),
            nn.Conv2d(channels, out_channels, 3, padding=1),
        )
        self.resample_h = Resample(resample)
        self.resample_x = Resample(resample)
        self.updown = resample != "none"
        self.emb_layers = nn.Sequential(
            nn.SiLU(),
            nn.Linear(emb_channels, 2 * out_channels if scale_shift else out_channels),
        )
        self.out_layers = nn.Sequential(
            GroupNorm32(out_channels),
            nn.SiLU(),
            nn.Dropout(p=float(dropout)),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
        )
        if out_channels == channels:
            self.skip_connection = nn.Identity()
        else:
            self.skip_connection = nn.Conv2d(channels, out_channels, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """Under TorchScript, ``emb`` arrives already activated (see UNetModel.forward)."""
        if not torch.jit.is_scripting():
            return self.published_forward(x, emb)
        h = F.silu(self.in_layers[0](x), inplace=True)
        if self.updown:
            h = self.resample_h(h)
            x = self.resample_x(x)
        h = self.in_layers[2](h)
        film = self.emb_layers[1](emb).to(h.dtype)[:, :, None, None]
        if self.scale_shift:
            scale, shift = torch.chunk(film, 2, dim=1)
            h = self.out_layers[0](h) * (1 + scale) + shift
        else:
            h = self.out_layers[0](h + film)
        h = self.out_layers[3](self.out_layers[2](F.silu(h, inplace=True)))
        return self.skip_connection(x) + h

    @torch.jit.unused
    def published_forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        if self.updown:
            h = self.in_layers[1](self.in_layers[0](x))
            h = self.in_layers[2](self.resample_h(h))
            x = self.resample_x(x)
        else:
            h = self.in_layers(x)
        film = self.emb_layers(emb).type(h.dtype)[:, :, None, None]
        if self.scale_shift:
            scale, shift = torch.chunk(film, 2, dim=1)
            h = self.out_layers[0](h) * (1 + scale) + shift
            h = self.out_layers[1:](h)
        else:
            h = self.out_layers(h + film)
        return self.skip_connection(x) + h


class AttentionBlock(nn.Module):
    """Self-attention over all positions of a feature map.

    ``legacy_order`` selects how the fused qkv channels are split: per head first (the
    original layout, used by the published checkpoint) or q/k/v first.
    """

    def __init__(self, channels: int, num_heads: int, num_head_channels: int, legacy_order: bool):
        super().__init__()
        if num_head_channels == -1:
            self.num_heads = num_heads
        else:
            if channels % num_head_channels != 0:
                raise ValueError(
                    f"attention width {channels} is not a multiple of num_head_channels {num_head_channels}")
            self.num_heads = channels // num_head_channels
        self.legacy_order = legacy_order
        self.norm = GroupNorm32(channels)
        self.qkv = nn.Conv1d(channels, channels * 3, 1)
        self.proj_out = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        b, c, height, width = x.shape
        flat = x.reshape(b, c, height * width)
        qkv = self.qkv(self.norm(flat))
        length = height * width
        ch = c // self.num_heads
        if self.legacy_order:
            q, k, v = qkv.reshape(b * self.num_heads, ch * 3, length).split(ch, dim=1)
        else:
            q, k, v = qkv.chunk(3, dim=1)
            q = q.reshape(b * self.num_heads, ch, length)
            k = k.reshape(b * self.num_heads, ch, length)
            v = v.reshape(b * self.num_heads, ch, length)
        # Both q and k carry ch^-1/4 so that half-precision logits stay in range.
        scale = 1.0 / math.sqrt(math.sqrt(ch))
        if torch.jit.is_scripting():
            logits = torch.bmm((q * scale).transpose(1, 2), k * scale)
        else:
            logits = torch.einsum("bct,bcs->bts", q * scale, k * scale)
        weights = torch.softmax(logits.float(), dim=-1).to(logits.dtype)
        if torch.jit.is_scripting():
            attended = torch.bmm(v, weights.transpose(1, 2))
        else:
            attended = torch.einsum("bts,bcs->bct", weights, v)
        attended = attended.reshape(b, c, length)
        return (flat + self.proj_out(attended)).reshape(b, c, height, width)


class UNetModel(nn.Module):
    """The improved-DDPM UNet: ``forward(x, t)`` returns eps and variance channels."""

    def __init__(self, image_size: int, in_channels: int, model_channels: int, out_channels: int,
                 num_res_blocks, attention_resolutions, dropout: float = 0.0,
                 channel_mult=(1, 2, 4, 8), conv_resample: bool = True, dims: int = 2,
                 num_classes=None, use_fp16: bool = False, num_heads: int = 1,
                 num_head_channels: int = -1, num_heads_upsample: int = -1,
                 use_scale_shift_norm: bool = False, resblock_updown: bool = False,
                 use_new_attention_order: bool = False, use_checkpoint: bool = False):
        super().__init__()
        if dims != 2:
            raise ValueError(f"unet_config.dims = {dims}: only 2-D images are supported")
        if num_classes is not None:
            raise ValueError("unet_config.num_classes is set: class-conditional UNets are not supported")
        if isinstance(num_res_blocks, int):
            num_res_blocks = [num_res_blocks] * len(channel_mult)
        if len(num_res_blocks) != len(channel_mult):
            raise ValueError(
                f"unet_config.num_res_blocks has {len(num_res_blocks)} entries but channel_mult has "
                f"{len(channel_mult)}: give one count per level")
        self.model_channels = model_channels
        emb_dim = model_channels * 4
        legacy = not use_new_attention_order

        self.time_embed = nn.Sequential(
            nn.Linear(model_channels, emb_dim),
            nn.SiLU(),
            nn.Linear(emb_dim, emb_dim),
        )

        ch = first_ch = int(channel_mult[0] * model_channels)
        self.input_blocks = nn.ModuleList([BlockSequence(EmbConv2d(in_channels, ch, 3, padding=1))])
        skip_channels: List[int] = [ch]
        side = image_size
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks[level]):
                out_ch = int(mult * model_channels)
                layers: List[nn.Module] = [
                    ResBlock(ch, emb_dim, dropout, out_ch, use_scale_shift_norm)]
                ch = out_ch
                if side in attention_resolutions:
                    layers.append(AttentionBlock(ch, num_heads, num_head_channels, legacy))
                self.input_blocks.append(BlockSequence(*layers))
                skip_channels.append(ch)
            if level != len(channel_mult) - 1:
                if resblock_updown:
                    down: nn.Module = ResBlock(ch, emb_dim, dropout, ch, use_scale_shift_norm, "down")
                else:
                    down = Downsample(ch, conv_resample)
                self.input_blocks.append(BlockSequence(down))
                skip_channels.append(ch)
                side //= 2

        self.middle_block = BlockSequence(
            ResBlock(ch, emb_dim, dropout, ch, use_scale_shift_norm),
            AttentionBlock(ch, num_heads, num_head_channels, legacy),
            ResBlock(ch, emb_dim, dropout, ch, use_scale_shift_norm),
        )

        self.output_blocks = nn.ModuleList([])
        for level in reversed(range(len(channel_mult))):
            mult = channel_mult[level]
            for i in range(num_res_blocks[level] + 1):
                out_ch = int(model_channels * mult)
                layers = [ResBlock(ch + skip_channels.pop(), emb_dim, dropout, out_ch,
                                   use_scale_shift_norm)]
                ch = out_ch
                if side in attention_resolutions:
                    # The published decoder passes num_head_channels but not num_heads.
                    layers.append(AttentionBlock(ch, 1, num_head_channels, legacy))
                if level > 0 and i == num_res_blocks[level]:
                    if resblock_updown:
                        layers.append(ResBlock(ch, emb_dim, dropout, ch, use_scale_shift_norm, "up"))
                    else:
                        layers.append(Upsample(ch, conv_resample))
                    side *= 2
                self.output_blocks.append(BlockSequence(*layers))

        self.out = nn.Sequential(
            GroupNorm32(ch),
            nn.SiLU(),
            nn.Conv2d(first_ch, out_channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """x: [B, C, H, W]; timesteps: [B] in original (not respaced) steps."""
        if not torch.jit.is_scripting():
            return self.published_forward(x, timesteps)
        emb = self.time_embed[0](sinusoidal_embedding(timesteps, self.model_channels))
        emb = self.time_embed[2](F.silu(emb, inplace=True))
        # What every block's emb_layers would compute first, computed once.
        emb = F.silu(emb)
        # The torso runs in the dtype its convolutions hold (float32 unless the engine
        # converted them); the head always runs in the caller's dtype.
        h = self.torso(x.to(self.middle_block[0].in_layers[2].weight.dtype), emb)
        return self.out[2](F.silu(self.out[0](h.to(x.dtype)), inplace=True))

    def torso(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """Encoder, middle and decoder, with the skip connections between them."""
        skips: List[torch.Tensor] = []
        for block in self.input_blocks:
            h = block(h, emb)
            skips.append(h)
        h = self.middle_block(h, emb)
        for block in self.output_blocks:
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
        return h

    @torch.jit.unused
    def published_forward(self, x: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        emb = self.time_embed(sinusoidal_embedding(timesteps, self.model_channels))
        h = self.torso(x.type(self.middle_block[0].in_layers[2].weight.dtype), emb)
        return self.out(h.type(x.dtype))
