"""SwinIR, the restoration backbone that gives DifFace its first estimate.

Built from the published configuration keys (see ``backbone_config`` in a model card) so
that the published configuration yields the published state-dict layout, including the two
buffers the published checkpoint stores (``relative_position_index`` and, for shifted
windows, ``attn_mask``). The input is a face in [0, 1]; with ``unshuffle`` it is first folded
into ``sf * sf`` times more channels at 1/sf of the size, and the "nearest+conv" head
brings it back to full size, so the output has the input's size.

Behaviours of the published network kept on purpose:
- the pixel-unshuffle factor is ``sf``; ``unshuffle_scale`` only sets the channel count;
- the RGB mean (0.4488, 0.4371, 0.4040) is taken off before and added back after;
- windows and shifts are sized from ``img_size`` (the feature size the network was built
  for); a window never exceeds that size, and a block whose window covers it is not shifted;
- the first LeakyReLU (after ``conv_before_upsample``) has slope 0.01, the later ones 0.2.

Two formulations compute the same network. ``published=True`` is the published arithmetic,
step by step (roll, partition into windows, attention with its bias and mask added one after
the other, merge, roll back); the benchmark's eager baseline and the tests' yardstick use it.
The default rearranges the work, not the result (the same within float32 rounding):
- LayerNorms, linear layers and the MLP act on each token alone, so the tokens can stay in
  window order for a whole block; the cyclic shift and the partition become one row gather
  per block, from the previous block's order straight into this one's;
- the relative-position bias and the shift mask are added once, as one attention mask, and
  on torch 2 the attention runs as ``scaled_dot_product_attention`` (a fused kernel on the
  CPU) instead of matmul, softmax, matmul;
- the stage convolutions and the upsampling head run on channels-last images (the stages'
  token layout [B, H*W, C] is one already, so nothing is transposed), and the output comes
  back in the memory layout the published network gives it, on which the sampler's noise
  draws depend;
- each nearest doubling and the 3x3 convolution after it run as one stride-2 transposed
  convolution (DoublingConv), with fewer multiply-adds and no doubled image.
"""

from typing import Final, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


def to_windows(x: torch.Tensor, size: int) -> torch.Tensor:
    """[B, H, W, C] -> [B * (H/size) * (W/size), size, size, C]."""
    b, h, w, c = x.shape
    x = x.view(b, h // size, size, w // size, size, c)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, size, size, c)


def from_windows(windows: torch.Tensor, size: int, h: int, w: int) -> torch.Tensor:
    """Inverse of to_windows."""
    c = windows.shape[-1]
    b = windows.shape[0] // ((h // size) * (w // size))
    x = windows.view(b, h // size, w // size, size, size, c)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(b, h, w, c)


def relative_position_index(size: int) -> torch.Tensor:
    """For every pair of positions in a size x size window, the row of its bias in the table."""
    rows = torch.arange(size).repeat_interleave(size)
    cols = torch.arange(size).repeat(size)
    d_row = rows[:, None] - rows[None, :] + size - 1
    d_col = cols[:, None] - cols[None, :] + size - 1
    return d_row * (2 * size - 1) + d_col


def shifted_window_mask(h: int, w: int, size: int, shift: int) -> torch.Tensor:
    """Additive mask (0 or -100) that keeps a shifted window from mixing regions that the
    cyclic shift brought together: [windows, size*size, size*size]."""
    region = torch.zeros((1, h, w, 1))
    bounds_h = [(0, h - size), (h - size, h - shift), (h - shift, h)]
    bounds_w = [(0, w - size), (w - size, w - shift), (w - shift, w)]
    label = 0
    for h0, h1 in bounds_h:
        for w0, w1 in bounds_w:
            region[:, h0:h1, w0:w1, :] = label
            label += 1
    labels = to_windows(region, size).view(-1, size * size)
    differs = labels[:, None, :] - labels[:, :, None]
    return differs.masked_fill(differs != 0, -100.0).masked_fill(differs == 0, 0.0)


def window_order(h: int, w: int, size: int, shift: int, device: torch.device) -> torch.Tensor:
    """The row-major token index behind each position of the windows of an h x w grid rolled by
    -shift, in the order to_windows lists them: gathering tokens with it does the roll and the
    partition at once."""
    rows = (torch.arange(h, device=device) + shift) % h
    cols = (torch.arange(w, device=device) + shift) % w
    grid = rows[:, None] * w + cols[None, :]
    return grid.view(h // size, size, w // size, size).permute(0, 2, 1, 3).reshape(-1)


# Whether this torch has the fused attention (torch 2); an export made without it loads on
# libtorch 1.13 too.
FUSED_ATTENTION = hasattr(F, "scaled_dot_product_attention")


def double_size(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


def doubling_taps() -> torch.Tensor:
    """Which 3x3 taps fall on each of the 4 taps of the transposed convolution, along one axis:
    doubling repeats every input row, so output row 2i reads rows i-1 (tap 0) and i (taps 1
    and 2), and output row 2i+1 reads rows i (taps 0 and 1) and i+1 (tap 2)."""
    return torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


class DoublingConv(nn.Conv2d):
    """A 3x3 convolution (zero padding 1) of the input doubled in size by nearest neighbour.
    Outside the published formulation it runs as one stride-2 transposed convolution with
    4x4 taps summed from the 3x3 ones: 16 multiply-adds per input pixel and channel pair
    instead of 36, and the doubled image is never made."""

    published: Final[bool]

    def __init__(self, channels: int, published: bool):
        super().__init__(channels, channels, 3, 1, 1)
        self.published = published
        # Not in the state dict: the published layout stays as it is.
        self.register_buffer("taps", doubling_taps(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.published:
            return self._conv_forward(double_size(x), self.weight, self.bias)
        taps = self.taps.float()
        weight = torch.einsum("ut,vs,oits->iouv", [taps, taps, self.weight.float()]).to(self.weight.dtype)
        return F.conv_transpose2d(x, weight, self.bias, stride=2, padding=1)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside each window, with a learned relative position bias."""

    published: Final[bool]
    fused: Final[bool]

    def __init__(self, dim: int, window: int, num_heads: int, qkv_bias: bool, qk_scale: Optional[float],
                 published: bool = False):
        super().__init__()
        self.published = published
        self.fused = FUSED_ATTENTION and not published
        self.window = window
        self.num_heads = num_heads
        self.scale = float(qk_scale) if qk_scale else (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window - 1) * (2 * window - 1), num_heads))
        self.register_buffer("relative_position_index", relative_position_index(window))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def position_bias(self) -> torch.Tensor:
        n = self.window * self.window
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(n, n, -1).permute(2, 0, 1).contiguous()

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        if self.published:
            return self.published_attention(x, mask)
        return self.masked_attention(x, mask)

    def attention_mask(self, mask: Optional[torch.Tensor], windows: int) -> torch.Tensor:
        """The position bias plus the shift mask: [windows or 1, heads, n, n]."""
        bias = self.position_bias().unsqueeze(0)
        if mask is None:
            return bias
        combined = bias + mask.unsqueeze(1)
        # Every image of the batch has the same windows; a 4-D mask keeps the fused kernels.
        per_image = mask.shape[0]
        if windows != per_image:
            combined = combined.repeat(windows // per_image, 1, 1, 1)
        return combined

    def masked_attention(self, x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        windows, n, c = x.shape
        qkv = self.qkv(x).view(windows, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        bias = self.attention_mask(mask, windows)
        if self.fused:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
        else:
            out = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * self.scale + bias, dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(windows, n, c))

    def published_attention(self, x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        windows, n, c = x.shape
        qkv = self.qkv(x).reshape(windows, n, 3, self.num_heads, c // self.num_heads)
        qkv = qkv.permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * self.scale) @ k.transpose(-2, -1)
        attn = attn + self.position_bias().unsqueeze(0)
        if mask is not None:
            per_image = mask.shape[0]
            attn = attn.view(windows // per_image, per_image, self.num_heads, n, n)
            attn = (attn + mask.unsqueeze(1).unsqueeze(0)).view(-1, self.num_heads, n, n)
        attn = torch.softmax(attn, dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(windows, n, c))


class SwinTransformerBlock(nn.Module):
    """``forward`` takes and gives tokens in row-major order (the published formulation);
    ``windowed`` takes and gives them in this block's window order (see window_order)."""

    def __init__(self, dim: int, resolution: Tuple[int, int], num_heads: int, window: int,
                 shift: int, mlp_ratio: float, qkv_bias: bool, qk_scale: Optional[float],
                 published: bool = False):
        super().__init__()
        self.resolution = resolution
        if min(resolution) <= window:
            window = min(resolution)
            shift = 0
        self.window = window
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, num_heads, qkv_bias, qk_scale, published)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        if shift > 0:
            self.register_buffer("attn_mask", shifted_window_mask(resolution[0], resolution[1], window, shift))
        else:
            self.attn_mask: Optional[torch.Tensor] = None

    def window_mask(self, h: int, w: int, like: torch.Tensor) -> Optional[torch.Tensor]:
        if self.shift == 0:
            return None
        mask = self.attn_mask
        if mask is not None and h == self.resolution[0] and w == self.resolution[1]:
            return mask
        # Another size than the network was built for: the published code recomputes it too.
        return shifted_window_mask(h, w, self.window, self.shift).to(device=like.device, dtype=like.dtype)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, length, c = x.shape
        y = self.norm1(x).view(b, h, w, c)
        if self.shift > 0:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        windows = to_windows(y, self.window).view(-1, self.window * self.window, c)
        windows = self.attn(windows, self.window_mask(h, w, windows))
        y = from_windows(windows.view(-1, self.window, self.window, c), self.window, h, w)
        if self.shift > 0:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + y.reshape(b, h * w, c)
        return x + self.mlp(self.norm2(x))

    def window_order(self, h: int, w: int, device: torch.device) -> torch.Tensor:
        return window_order(h, w, self.window, self.shift, device)

    def windowed(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, length, c = x.shape
        n = self.window * self.window
        y = self.attn(self.norm1(x).view(-1, n, c), self.window_mask(h, w, x))
        x = x + y.view(b, length, c)
        return x + self.mlp(self.norm2(x))


class BasicLayer(nn.Module):
    published: Final[bool]

    def __init__(self, dim: int, resolution: Tuple[int, int], depth: int, num_heads: int, window: int,
                 mlp_ratio: float, qkv_bias: bool, qk_scale: Optional[float], published: bool = False):
        super().__init__()
        self.published = published
        self.blocks = nn.ModuleList([
            SwinTransformerBlock(dim, resolution, num_heads, window, 0 if i % 2 == 0 else window // 2,
                                 mlp_ratio, qkv_bias, qk_scale, published)
            for i in range(depth)])

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        if self.published:
            for block in self.blocks:
                x = block(x, h, w)
            return x
        # held[j]: the row-major index of the token in row j of x.
        held = torch.arange(h * w, device=x.device)
        for block in self.blocks:
            order = block.window_order(h, w, x.device)
            x = block.windowed(x.index_select(1, torch.argsort(held)[order]), h, w)
            held = order
        return x.index_select(1, torch.argsort(held))


def make_residual_conv(dim: int, kind: str) -> nn.Module:
    if kind == "1conv":
        return nn.Conv2d(dim, dim, 3, 1, 1)
    if kind == "3conv":
        return nn.Sequential(
            nn.Conv2d(dim, dim // 4, 3, 1, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(dim // 4, dim // 4, 1, 1, 0), nn.LeakyReLU(0.2),
            nn.Conv2d(dim // 4, dim, 3, 1, 1))
    raise ValueError(f"backbone_config.resi_connection = {kind!r}: expected '1conv' or '3conv'")


class RSTB(nn.Module):
    """Residual Swin Transformer block: a stack of Swin blocks, a convolution, a skip."""

    published: Final[bool]

    def __init__(self, dim: int, resolution: Tuple[int, int], depth: int, num_heads: int, window: int,
                 mlp_ratio: float, qkv_bias: bool, qk_scale: Optional[float], resi_connection: str,
                 published: bool = False):
        super().__init__()
        self.published = published
        self.residual_group = BasicLayer(dim, resolution, depth, num_heads, window, mlp_ratio,
                                         qkv_bias, qk_scale, published)
        self.conv = make_residual_conv(dim, resi_connection)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, length, c = x.shape
        y = self.residual_group(x, h, w)
        if self.published:
            y = self.conv(y.transpose(1, 2).reshape(b, c, h, w))
            return y.flatten(2).transpose(1, 2) + x
        # [B, H*W, C] is the memory of a channels-last [B, C, H, W] image: no transposes.
        y = self.conv(y.view(b, h, w, c).permute(0, 3, 1, 2))
        return y.permute(0, 2, 3, 1).reshape(b, length, c) + x


class PatchEmbed(nn.Module):
    """Feature map to token sequence, with an optional LayerNorm."""

    def __init__(self, dim: int, use_norm: bool):
        super().__init__()
        self.use_norm = use_norm
        self.norm = nn.LayerNorm(dim) if use_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.flatten(2).transpose(1, 2))


class PixelShuffleUpsample(nn.Sequential):
    """Convolutions to 4x (or 9x) channels and pixel shuffles, for the 'pixelshuffle' head."""

    def __init__(self, scale: int, feat: int):
        layers: List[nn.Module] = []
        if scale & (scale - 1) == 0:
            while scale > 1:
                layers += [nn.Conv2d(feat, 4 * feat, 3, 1, 1), nn.PixelShuffle(2)]
                scale //= 2
        elif scale == 3:
            layers += [nn.Conv2d(feat, 9 * feat, 3, 1, 1), nn.PixelShuffle(3)]
        else:
            raise ValueError(f"backbone_config.sf = {scale}: the 'pixelshuffle' head needs 2^n or 3")
        super().__init__(*layers)


UPSAMPLERS = ("nearest+conv", "pixelshuffle", "pixelshuffledirect", "")


class SwinIR(nn.Module):
    """``forward(x)`` maps a [B, 3, H, W] face in [0, 1] to its restored estimate.

    ``published`` (not a configuration key) chooses the published formulation over the
    faster one; both have the same state dict."""

    published: Final[bool]

    def __init__(self, img_size=64, patch_size=1, in_chans=3, embed_dim=96, depths=(6, 6, 6, 6),
                 num_heads=(6, 6, 6, 6), window_size=7, mlp_ratio=4.0, qkv_bias=True, qk_scale=None,
                 drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.1, ape=False, patch_norm=True,
                 use_checkpoint=False, sf=4, img_range=1.0, upsampler="", resi_connection="1conv",
                 unshuffle=False, unshuffle_scale=None, published=False):
        super().__init__()
        self.published = published
        if upsampler is None:
            upsampler = ""
        if upsampler not in UPSAMPLERS:
            raise ValueError(f"backbone_config.upsampler = {upsampler!r}: expected one of {UPSAMPLERS}")
        if ape:
            raise ValueError("backbone_config.ape = true: absolute position embeddings are not supported")
        if patch_size != 1:
            raise ValueError(f"backbone_config.patch_size = {patch_size}: only 1 is supported")
        if len(depths) != len(num_heads):
            raise ValueError("backbone_config.depths and num_heads must have the same length")
        if unshuffle and unshuffle_scale is None:
            raise ValueError("backbone_config.unshuffle is set but unshuffle_scale is not")
        feat = 64
        self.img_range = float(img_range)
        self.upscale = int(sf)
        self.upsampler = upsampler
        self.window_size = int(window_size)
        mean = [0.4488, 0.4371, 0.4040] if in_chans == 3 else [0.0] * in_chans
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)

        first_in = in_chans * unshuffle_scale ** 2 if unshuffle else in_chans
        if unshuffle:
            self.conv_first = nn.Sequential(nn.PixelUnshuffle(sf), nn.Conv2d(first_in, embed_dim, 3, 1, 1))
        else:
            self.conv_first = nn.Conv2d(first_in, embed_dim, 3, 1, 1)

        side = img_size if isinstance(img_size, (list, tuple)) else (img_size, img_size)
        resolution = (int(side[0]), int(side[1]))
        self.patch_embed = PatchEmbed(embed_dim, patch_norm)
        self.layers = nn.ModuleList([
            RSTB(embed_dim, resolution, depths[i], num_heads[i], window_size, mlp_ratio, qkv_bias,
                 qk_scale, resi_connection, published)
            for i in range(len(depths))])
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = make_residual_conv(embed_dim, resi_connection)

        # Every head module exists (as Identity where unused) so that TorchScript sees one type.
        self.conv_before_upsample: nn.Module = nn.Identity()
        self.upsample: nn.Module = nn.Identity()
        self.conv_up1: nn.Module = nn.Identity()
        self.conv_up2: nn.Module = nn.Identity()
        self.conv_up3: nn.Module = nn.Identity()
        self.conv_hr: nn.Module = nn.Identity()
        if upsampler == "pixelshuffle":
            self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, feat, 3, 1, 1), nn.LeakyReLU())
            self.upsample = PixelShuffleUpsample(self.upscale, feat)
            self.conv_last = nn.Conv2d(feat, in_chans, 3, 1, 1)
        elif upsampler == "pixelshuffledirect":
            self.upsample = nn.Sequential(
                nn.Conv2d(embed_dim, self.upscale ** 2 * in_chans, 3, 1, 1), nn.PixelShuffle(self.upscale))
            self.conv_last = nn.Identity()
        elif upsampler == "nearest+conv":
            self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, feat, 3, 1, 1), nn.LeakyReLU())
            self.conv_up1 = DoublingConv(feat, published)
            if self.upscale == 4 or self.upscale == 8:
                self.conv_up2 = DoublingConv(feat, published)
            if self.upscale == 8:
                self.conv_up3 = DoublingConv(feat, published)
            self.conv_hr = nn.Conv2d(feat, feat, 3, 1, 1)
            self.conv_last = nn.Conv2d(feat, in_chans, 3, 1, 1)
        else:
            self.conv_last = nn.Conv2d(embed_dim, in_chans, 3, 1, 1)

    def deep_features(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = self.patch_embed(x)
        for layer in self.layers:
            tokens = layer(tokens, h, w)
        # A view of the tokens (no copy) whose strides, as the published code makes them, decide
        # the layout of everything after it (see in_layout_of).
        return self.norm(tokens).transpose(1, 2).reshape(b, c, h, w)

    def head_input(self, body: torch.Tensor) -> torch.Tensor:
        """The upsampling head runs channels-last in the faster formulation: its convolutions
        at full size are faster on it."""
        if self.published:
            return body
        return body.contiguous(memory_format=torch.channels_last)

    def in_layout_of(self, out: torch.Tensor, body: torch.Tensor) -> torch.Tensor:
        """The head's output in the memory layout the published network gives it: that of the
        sum of the deep and shallow features, which torch makes contiguous for a batch of one
        and channels-last for more on the CPU. The sampler's randn_like draws in memory order,
        so the layout decides which draw lands on which pixel."""
        if self.published:
            return out
        if body.is_contiguous():
            return out.contiguous()
        return out.contiguous(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2], x.shape[3]
        pad_h = (self.window_size - h % self.window_size) % self.window_size
        pad_w = (self.window_size - w % self.window_size) % self.window_size
        x = F.pad(x, [0, pad_w, 0, pad_h], mode="reflect")
        mean = self.mean.to(x.dtype)
        x = (x - mean) * self.img_range
        if self.upsampler == "pixelshuffle":
            x = self.conv_first(x)
            body = self.conv_after_body(self.deep_features(x)) + x
            x = self.conv_last(self.upsample(self.conv_before_upsample(self.head_input(body))))
            x = self.in_layout_of(x, body)
        elif self.upsampler == "pixelshuffledirect":
            x = self.conv_first(x)
            body = self.conv_after_body(self.deep_features(x)) + x
            x = self.in_layout_of(self.upsample(self.head_input(body)), body)
        elif self.upsampler == "nearest+conv":
            x = self.conv_first(x)
            body = self.conv_after_body(self.deep_features(x)) + x
            x = F.leaky_relu(self.conv_up1(self.conv_before_upsample(self.head_input(body))), 0.2)
            if self.upscale == 4 or self.upscale == 8:
                x = F.leaky_relu(self.conv_up2(x), 0.2)
            if self.upscale == 8:
                x = F.leaky_relu(self.conv_up3(x), 0.2)
            x = self.in_layout_of(self.conv_last(F.leaky_relu(self.conv_hr(x), 0.2)), body)
        else:
            first = self.conv_first(x)
            x = x + self.conv_last(self.conv_after_body(self.deep_features(first)) + first)
        x = x / self.img_range + mean
        return x[:, :, :h * self.upscale, :w * self.upscale]
