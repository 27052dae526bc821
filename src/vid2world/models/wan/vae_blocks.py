"""The layers of Wan 2.1's causal video VAE, named as diffusers' `AutoencoderKLWan` names them.

Every temporal layer is causal: an output frame sees only the same and earlier input frames. A layer that
needs earlier frames takes a `FeatureCache`: the frames it kept from the previous chunk of the same clip.
`cache=None` means "this call holds the whole clip from its first frame" and records nothing; running a
clip chunk by chunk through one cache gives the same numbers as one call (what the streams rely on).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class FeatureCache:
    """What each temporal layer of one encoder or decoder still needs from the frames it has seen, keyed by
    the layer itself. Owned by its caller (a stream): two clips in flight need two caches."""

    def __init__(self) -> None:
        self._entries: dict[nn.Module, Any] = {}

    def get(self, layer: nn.Module) -> Any:
        return self._entries.get(layer)

    def set(self, layer: nn.Module, value: Any) -> None:
        self._entries[layer] = value

    def __len__(self) -> int:
        return len(self._entries)


def _read(cache: FeatureCache | None, layer: nn.Module) -> Any:
    return None if cache is None else cache.get(layer)


def _write(cache: FeatureCache | None, layer: nn.Module, value: Any) -> None:
    if cache is not None:
        cache.set(layer, value)


def per_frame(module: nn.Module, x: Tensor) -> Tensor:
    """Apply a 2-D `module` to every frame of x [B, C, T, H, W]."""
    b, c, t, h, w = x.shape
    y = module(x.transpose(1, 2).reshape(b * t, c, h, w))
    return y.reshape(b, t, *y.shape[1:]).transpose(1, 2)


class CausalConv3d(nn.Conv3d):
    """A 3-D conv padded with zeros in space on both sides and, in time, only before the clip: `2 * time_pad`
    zero frames before the first chunk, the last input frames of the previous chunk before later ones."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int | tuple[int, int, int], time_pad: int = 0,
                 space_pad: int = 0) -> None:
        super().__init__(in_ch, out_ch, kernel, padding=(0, space_pad, space_pad))
        self.history = 2 * time_pad

    def forward(self, x: Tensor, cache: FeatureCache | None = None) -> Tensor:
        if self.history == 0:
            return super().forward(x)
        previous = _read(cache, self)  # always `history` frames: the first chunk's are zero-padded
        x = F.pad(x, (0, 0, 0, 0, self.history, 0)) if previous is None else torch.cat([previous, x], dim=2)
        _write(cache, self, x[:, :, -self.history:].clone())
        return super().forward(x)


class RMSNorm(nn.Module):
    """Unit L2 norm over channels times sqrt(C) and a learned per-channel gain (no bias in Wan 2.1)."""

    def __init__(self, dim: int, video: bool = True) -> None:
        super().__init__()
        self.scale = dim ** 0.5
        self.gamma = nn.Parameter(torch.ones(dim, *(1,) * (3 if video else 2)))

    def forward(self, x: Tensor) -> Tensor:
        # half-precision norms are computed in float32: squaring overflows fp16 for large activations
        low = x.dtype in (torch.float16, torch.bfloat16)
        return F.normalize(x.float() if low else x, dim=1).to(x.dtype) * self.scale * self.gamma


class ResidualBlock(nn.Module):
    """norm-SiLU-conv twice over causal 3x3x3 convs, plus a 1x1x1 `conv_shortcut` when the width changes."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = RMSNorm(in_dim)
        self.conv1 = CausalConv3d(in_dim, out_dim, 3, time_pad=1, space_pad=1)
        self.norm2 = RMSNorm(out_dim)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = CausalConv3d(out_dim, out_dim, 3, time_pad=1, space_pad=1)
        self.conv_shortcut = CausalConv3d(in_dim, out_dim, 1) if in_dim != out_dim else nn.Identity()

    def forward(self, x: Tensor, cache: FeatureCache | None = None) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)), cache)
        h = self.conv2(self.dropout(F.silu(self.norm2(h))), cache)
        return self.conv_shortcut(x) + h


class AttentionBlock(nn.Module):
    """Single-head self-attention among the pixels of each frame (no attention across time)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = RMSNorm(dim, video=False)
        self.to_qkv = nn.Conv2d(dim, 3 * dim, 1)
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, x: Tensor, cache: FeatureCache | None = None) -> Tensor:
        return x + per_frame(self._attend, x)

    def _attend(self, frames: Tensor) -> Tensor:
        n, c, h, w = frames.shape
        qkv = self.to_qkv(self.norm(frames)).reshape(n, 3, c, h * w).permute(1, 0, 3, 2)
        out = F.scaled_dot_product_attention(*(part.unsqueeze(1) for part in qkv.unbind(0)))
        return self.proj(out.squeeze(1).transpose(1, 2).reshape(n, c, h, w))


class Downsample(nn.Module):
    """Halve height and width (pad right/bottom, stride-2 conv); with `temporal`, also halve time: frame 0
    is kept as is and each later output frame is a stride-2 conv over (previous kept frame, two new ones)."""

    def __init__(self, dim: int, temporal: bool) -> None:
        super().__init__()
        self.temporal = temporal
        self.resample = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(dim, dim, 3, stride=2))
        if temporal:
            self.time_conv = nn.Conv3d(dim, dim, (3, 1, 1), stride=(2, 1, 1))

    def forward(self, x: Tensor, cache: FeatureCache | None = None) -> Tensor:
        x = per_frame(self.resample, x)
        if not self.temporal:
            return x
        previous, t = _read(cache, self), x.shape[2]
        first_chunk = previous is None
        if t % 2 != int(first_chunk):
            which, parity = ("a first", "an odd") if first_chunk else ("a later", "an even")
            raise ValueError(f"Wan VAE temporal downsample got {t} frames in {which} chunk; "
                             f"expected {parity} count (1 + 2k first, then 2k)")
        if first_chunk:
            out = x[:, :, :1] if t == 1 else torch.cat([x[:, :, :1], self.time_conv(x)], dim=2)
        else:
            out = self.time_conv(torch.cat([previous, x], dim=2))
        _write(cache, self, x[:, :, -1:].clone())
        return out


class Upsample(nn.Module):
    """Double height and width (nearest, then a conv that halves the channels); with `temporal`, first
    double time: frame 0 stays one frame, each later frame becomes two (a causal conv with 2x channels)."""

    def __init__(self, dim: int, temporal: bool) -> None:
        super().__init__()
        self.temporal = temporal
        self.resample = nn.Sequential(nn.Upsample(scale_factor=(2.0, 2.0), mode="nearest-exact"),
                                      nn.Conv2d(dim, dim // 2, 3, padding=1))
        if temporal:
            self.time_conv = CausalConv3d(dim, 2 * dim, (3, 1, 1), time_pad=1)

    def forward(self, x: Tensor, cache: FeatureCache | None = None) -> Tensor:
        if self.temporal:
            seen_first = _read(cache, self) is not None
            _write(cache, self, True)
            kept, rest = (x[:, :, :0], x) if seen_first else (x[:, :, :1], x[:, :, 1:])
            if rest.shape[2]:
                x = torch.cat([kept, _interleave_pairs(self.time_conv(rest, cache))], dim=2)
        return per_frame(self.resample, x)


def _interleave_pairs(y: Tensor) -> Tensor:
    """[B, 2C, T, H, W] -> [B, C, 2T, H, W]: channel half j of frame i becomes frame 2i + j."""
    b, c2, t, h, w = y.shape
    return y.reshape(b, 2, c2 // 2, t, h, w).permute(0, 2, 3, 1, 4, 5).reshape(b, c2 // 2, 2 * t, h, w)


class MidBlock(nn.Module):
    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.resnets = nn.ModuleList([ResidualBlock(dim, dim, dropout), ResidualBlock(dim, dim, dropout)])
        self.attentions = nn.ModuleList([AttentionBlock(dim)])

    def forward(self, x: Tensor, cache: FeatureCache | None = None) -> Tensor:
        return self.resnets[1](self.attentions[0](self.resnets[0](x, cache)), cache)


class UpBlock(nn.Module):
    """One decoder level: `num_res_blocks + 1` residual blocks, then (but at the last level) an upsampler."""

    def __init__(self, in_dim: int, out_dim: int, num_res_blocks: int, dropout: float,
                 upsample: str | None) -> None:
        super().__init__()
        widths = [in_dim] + [out_dim] * num_res_blocks
        self.resnets = nn.ModuleList(ResidualBlock(w, out_dim, dropout) for w in widths)
        self.upsamplers = None if upsample is None else nn.ModuleList([Upsample(out_dim, upsample == "3d")])

    def forward(self, x: Tensor, cache: FeatureCache | None = None) -> Tensor:
        for block in self.resnets:
            x = block(x, cache)
        return x if self.upsamplers is None else self.upsamplers[0](x, cache)


class WanEncoder(nn.Module):
    """Pixels [B, in_channels, 1 + 4k, H, W] -> moments [B, 2*z_dim, 1 + k, H/8, W/8] (Wan 2.1's config)."""

    def __init__(self, in_channels: int, base_dim: int, z_dim: int, dim_mult: tuple[int, ...],
                 num_res_blocks: int, temporal_downsample: tuple[bool, ...], dropout: float) -> None:
        super().__init__()
        dims = [base_dim * m for m in (1, *dim_mult)]
        self.conv_in = CausalConv3d(in_channels, dims[0], 3, time_pad=1, space_pad=1)
        layers: list[nn.Module] = []
        for i, (width, out) in enumerate(zip(dims[:-1], dims[1:])):
            layers += [ResidualBlock(width if j == 0 else out, out, dropout) for j in range(num_res_blocks)]
            if i < len(dim_mult) - 1:
                layers.append(Downsample(out, temporal_downsample[i]))
        self.down_blocks = nn.ModuleList(layers)
        self.mid_block = MidBlock(dims[-1], dropout)
        self.norm_out = RMSNorm(dims[-1])
        self.conv_out = CausalConv3d(dims[-1], 2 * z_dim, 3, time_pad=1, space_pad=1)

    def forward(self, x: Tensor, cache: FeatureCache | None = None) -> Tensor:
        x = self.conv_in(x, cache)
        for layer in self.down_blocks:
            x = layer(x, cache)
        return self.conv_out(F.silu(self.norm_out(self.mid_block(x, cache))), cache)


class WanDecoder(nn.Module):
    """Latents [B, z_dim, 1 + k, h, w] -> pixels [B, out_channels, 1 + 4k, 8h, 8w] (for Wan 2.1's config)."""

    def __init__(self, out_channels: int, base_dim: int, z_dim: int, dim_mult: tuple[int, ...],
                 num_res_blocks: int, temporal_upsample: tuple[bool, ...], dropout: float) -> None:
        super().__init__()
        dims = [base_dim * m for m in (dim_mult[-1], *reversed(dim_mult))]
        self.conv_in = CausalConv3d(z_dim, dims[0], 3, time_pad=1, space_pad=1)
        self.mid_block = MidBlock(dims[0], dropout)
        blocks, last = [], len(dim_mult) - 1
        for i, (width, out) in enumerate(zip(dims[:-1], dims[1:])):
            mode = None if i == last else ("3d" if temporal_upsample[i] else "2d")
            # every level after the first starts from its predecessor's upsampler, which halves the channels
            blocks.append(UpBlock(width // 2 if i > 0 else width, out, num_res_blocks, dropout, mode))
        self.up_blocks = nn.ModuleList(blocks)
        self.norm_out = RMSNorm(dims[-1])
        self.conv_out = CausalConv3d(dims[-1], out_channels, 3, time_pad=1, space_pad=1)

    def forward(self, z: Tensor, cache: FeatureCache | None = None) -> Tensor:
        x = self.mid_block(self.conv_in(z, cache), cache)
        for block in self.up_blocks:
            x = block(x, cache)
        return self.conv_out(F.silu(self.norm_out(x)), cache)
