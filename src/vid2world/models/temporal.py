"""The layers that mix information across frames, other than attention.

Each keeps the parameter names of the DynamiCrafter module it replaces (`weight`, `bias`), so checkpoints load
unchanged; what differs between the original and a causalized model is only how they treat the time axis:
- `TemporalGroupNorm`: GroupNorm on [B, C, T, H, W] whose statistics pool the whole clip, frames 0..t, or frame t;
- `TemporalConv`: Conv3d with a (k, 1, 1) kernel, padded on both sides or on the left (past) only;
- `OutputConv`: the final 3x3 conv, optionally causal along image height (the official code's quirk).

The normalisations are pure functions (`clip_group_norm`, `causal_group_norm`, `frame_group_norm`) with tests.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def clip_group_norm(x: Tensor, groups: int, weight: Tensor | None, bias: Tensor | None, eps: float) -> Tensor:
    """GroupNorm with statistics over (C/G, T, H, W): frame t depends on every frame of the clip."""
    return F.group_norm(x.float(), groups, _f32(weight), _f32(bias), eps).to(x.dtype)


def frame_group_norm(x: Tensor, groups: int, weight: Tensor | None, bias: Tensor | None, eps: float) -> Tensor:
    """GroupNorm with statistics over (C/G, H, W) of each frame alone: stateless and strictly causal."""
    b, c, t, h, w = x.shape
    frames = x.float().permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
    out = F.group_norm(frames, groups, _f32(weight), _f32(bias), eps)
    return out.reshape(b, t, c, h, w).permute(0, 2, 1, 3, 4).to(x.dtype)


def causal_group_norm(x: Tensor, groups: int, weight: Tensor | None, bias: Tensor | None, eps: float) -> Tensor:
    """GroupNorm whose statistics for frame t pool frames 0..t (cumulative): strictly causal.

    Running sums of h and h^2 per group, accumulated in float32. Values are shifted by frame 0's group mean before
    squaring (a constant shift leaves the variance unchanged and is itself causal), which keeps E[h^2] - E[h]^2
    from cancelling catastrophically.
    """
    b, c, t, h, w = x.shape
    g = x.float().reshape(b, groups, c // groups, t, h, w)
    per_frame = (c // groups) * h * w
    shift = g[:, :, :, :1].mean(dim=(2, 3, 4, 5), keepdim=True)
    centred = g - shift
    s1 = centred.sum(dim=(2, 4, 5)).cumsum(dim=-1)  # [B, G, T]
    s2 = centred.square().sum(dim=(2, 4, 5)).cumsum(dim=-1)
    count = per_frame * torch.arange(1, t + 1, device=x.device, dtype=torch.float32)
    mean = s1 / count
    var = (s2 / count - mean.square()).clamp_min(0.0)
    mean = mean[:, :, None, :, None, None]
    inv_std = torch.rsqrt(var[:, :, None, :, None, None] + eps)
    out = ((centred - mean) * inv_std).reshape(b, c, t, h, w)
    if weight is not None:
        out = out * weight.float()[None, :, None, None, None]
    if bias is not None:
        out = out + bias.float()[None, :, None, None, None]
    return out.to(x.dtype)


TEMPORAL_NORMS: dict[str, Callable[..., Tensor]] = {
    "clip": clip_group_norm,
    "causal": causal_group_norm,
    "frame": frame_group_norm,
}


def _f32(p: Tensor | None) -> Tensor | None:
    return None if p is None else p.float()


class TemporalGroupNorm(nn.GroupNorm):
    """A GroupNorm applied to [B, C, T, H, W]; `mode` picks which frames its statistics pool (see module doc)."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, mode: str = "clip") -> None:
        super().__init__(num_groups, num_channels, eps=eps, affine=True)
        if mode not in TEMPORAL_NORMS:
            raise ValueError(f"temporal norm mode must be one of {sorted(TEMPORAL_NORMS)}, got {mode!r}")
        self.mode = mode
        self._norm = TEMPORAL_NORMS[mode]

    def forward(self, x: Tensor) -> Tensor:
        return self._norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", mode={self.mode}"


class TemporalConv(nn.Conv3d):
    """Conv3d with a (k, 1, 1) kernel along time; `causal` pads k-1 past frames instead of (k-1)/2 on each side.

    A causal kernel's taps 0..k-1 read frames t-k+1..t; the same weight tensor in a non-causal conv reads
    t-(k-1)/2..t+(k-1)/2. Converting one into the other is `vid2world.causal.transfer_kernel`.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3, causal: bool = False) -> None:
        if kernel % 2 != 1:
            raise ValueError(f"temporal kernel width must be odd, got {kernel}")
        super().__init__(in_channels, out_channels, (kernel, 1, 1), padding=(0 if causal else kernel // 2, 0, 0))
        self.causal = causal

    def forward(self, x: Tensor) -> Tensor:
        if self.causal:
            x = F.pad(x, (0, 0, 0, 0, self.kernel_size[0] - 1, 0))
        return super().forward(x)


class OutputConv(nn.Conv2d):
    """The UNet's final 3x3 conv. `height_causal` reproduces the official Vid2World quirk: row y sees rows
    y-2..y only (two rows of zero padding on top, none below); width stays symmetric."""

    def __init__(self, in_channels: int, out_channels: int, height_causal: bool = False) -> None:
        super().__init__(in_channels, out_channels, 3, padding=0 if height_causal else 1)
        self.height_causal = height_causal

    def forward(self, x: Tensor) -> Tensor:
        if self.height_causal:
            x = F.pad(x, (1, 1, 2, 0))
        return super().forward(x)
