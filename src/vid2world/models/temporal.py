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

from .stream import CacheView


def at_least_float32(x: Tensor) -> Tensor:
    """Half-precision tensors are normalised in float32; float32 and float64 stay as they are."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def group_norm(x: Tensor, groups: int, weight: Tensor | None, bias: Tensor | None, eps: float) -> Tensor:
    """`F.group_norm` computed in at least float32, returned in x's dtype (lvdm's GroupNorm32). Half precision is
    upcast first, except bfloat16 on CPU: that kernel takes float32 weights beside bfloat16 input, accumulates in
    float32 and rounds once, the values the upcast gives (to reduction order) without two conversions of the
    activation each way, which cost more than the norm in a CPU training step."""
    if x.device.type == "cpu":
        layout = _channels_last(x)
        if layout is not None:  # CPU's channels-last GroupNorm kernel is several times slower than two conversions
            return group_norm(x.contiguous(), groups, weight, bias, eps).contiguous(memory_format=layout)
        if x.dtype == torch.bfloat16:
            return F.group_norm(x, groups, _cast(weight, torch.float32), _cast(bias, torch.float32), eps)
    h = at_least_float32(x)
    return F.group_norm(h, groups, _cast(weight, h.dtype), _cast(bias, h.dtype), eps).to(x.dtype)


def clip_group_norm(x: Tensor, groups: int, weight: Tensor | None, bias: Tensor | None, eps: float) -> Tensor:
    """GroupNorm with statistics over (C/G, T, H, W): frame t depends on every frame of the clip."""
    return group_norm(x, groups, weight, bias, eps)


def frame_group_norm(x: Tensor, groups: int, weight: Tensor | None, bias: Tensor | None, eps: float) -> Tensor:
    """GroupNorm with statistics over (C/G, H, W) of each frame alone: stateless and strictly causal."""
    b, c, t, h, w = x.shape
    out = group_norm(x.transpose(1, 2).reshape(b * t, c, h, w), groups, weight, bias, eps)
    return out.reshape(b, t, c, h, w).transpose(1, 2)


def causal_group_norm(x: Tensor, groups: int, weight: Tensor | None, bias: Tensor | None, eps: float) -> Tensor:
    """GroupNorm whose statistics for frame t pool frames 0..t (cumulative): strictly causal.

    Running sums of h and h^2 per group, accumulated in float32. Values are shifted by frame 0's group mean before
    squaring (a constant shift leaves the variance unchanged and is itself causal), which keeps E[h^2] - E[h]^2
    from cancelling catastrophically.
    """
    b, c, t, h, w = x.shape
    g = at_least_float32(x).reshape(b, groups, c // groups, t, h, w)
    per_frame = (c // groups) * h * w
    shift = g[:, :, :, :1].mean(dim=(2, 3, 4, 5), keepdim=True)
    centred = g - shift
    s1 = centred.sum(dim=(2, 4, 5)).cumsum(dim=-1)  # [B, G, T]
    s2 = centred.square().sum(dim=(2, 4, 5)).cumsum(dim=-1)
    count = per_frame * torch.arange(1, t + 1, device=x.device, dtype=g.dtype)
    mean = s1 / count
    var = (s2 / count - mean.square()).clamp_min(0.0)
    mean = mean[:, :, None, :, None, None]
    inv_std = torch.rsqrt(var[:, :, None, :, None, None] + eps)
    out = ((centred - mean) * inv_std).reshape(b, c, t, h, w)
    if weight is not None:
        out = out * weight.to(g.dtype)[None, :, None, None, None]
    if bias is not None:
        out = out + bias.to(g.dtype)[None, :, None, None, None]
    return out.to(x.dtype)


TEMPORAL_NORMS: dict[str, Callable[..., Tensor]] = {
    "clip": clip_group_norm,
    "causal": causal_group_norm,
    "frame": frame_group_norm,
}


def _channels_last(x: Tensor) -> torch.memory_format | None:
    """The channels-last format x is laid out in, or None (contiguous, or some other strides)."""
    layout = {4: torch.channels_last, 5: torch.channels_last_3d}.get(x.dim())
    return layout if layout is not None and not x.is_contiguous() and x.is_contiguous(memory_format=layout) else None


def _cast(p: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    return None if p is None else p.to(dtype)


class TemporalGroupNorm(nn.GroupNorm):
    """A GroupNorm applied to [B, C, T, H, W]; `mode` picks which frames its statistics pool (see module doc).

    With a stream (`CacheView`), the frames given follow the frames already committed to it (`causal` mode reads
    their merged moments from its cache slot; `frame` mode needs nothing).
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, mode: str = "clip") -> None:
        super().__init__(num_groups, num_channels, eps=eps, affine=True)
        if mode not in TEMPORAL_NORMS:
            raise ValueError(f"temporal norm mode must be one of {sorted(TEMPORAL_NORMS)}, got {mode!r}")
        self.mode = mode
        self._norm = TEMPORAL_NORMS[mode]
        self.cache_slot = -1  # numbered by VideoUNet

    def forward(self, x: Tensor, stream: CacheView | None = None) -> Tensor:
        if stream is None or self.mode == "frame":
            return self._norm(x, self.num_groups, self.weight, self.bias, self.eps)
        if self.mode == "clip":
            raise RuntimeError("a clip-wide temporal GroupNorm has no causal state: it cannot run on a stream "
                               "(recompute the window instead, or use temporal_norm 'frame' or 'causal')")
        return self._streamed_causal(x, stream)

    def _streamed_causal(self, x: Tensor, stream: CacheView) -> Tensor:
        """`causal_group_norm` continuing from the committed frames: per-frame moments combined with Chan's rule."""
        b, c, t, h, w = x.shape
        g = at_least_float32(x).reshape(b, self.num_groups, c // self.num_groups, t, h, w)
        mean_f = g.mean(dim=(2, 4, 5))  # [B, G, t]
        m2_f = (g - mean_f[:, :, None, :, None, None]).square().sum(dim=(2, 4, 5))
        per_frame = (c // self.num_groups) * h * w
        past = stream.read(self.cache_slot) if stream.cache.slots[self.cache_slot] is not None else None
        if past is None:
            count, mean, m2 = g.new_zeros(b, 1), torch.zeros_like(mean_f[..., 0]), torch.zeros_like(mean_f[..., 0])
        else:  # the rows' merged moments over their valid slots (count 0 for a row that has none)
            mean, m2, count = past[2], past[3], past[4]
        means, inv_stds = [], []
        for j in range(t):
            count, mean, m2 = _combine(count, mean, m2, per_frame, mean_f[..., j], m2_f[..., j])
            means.append(mean)
            inv_stds.append(torch.rsqrt(m2 / count + self.eps))
        mean_t = torch.stack(means, dim=-1)[:, :, None, :, None, None]
        inv_t = torch.stack(inv_stds, dim=-1)[:, :, None, :, None, None]
        out = ((g - mean_t) * inv_t).reshape(b, c, t, h, w)
        out = out * self.weight.to(g.dtype)[None, :, None, None, None] + self.bias.to(g.dtype)[None, :, None, None, None]
        if stream.commit and stream.capacity:
            self._commit(stream, mean_f, m2_f, per_frame)
        return out.to(x.dtype)

    def _commit(self, stream: CacheView, mean_f: Tensor, m2_f: Tensor, per_frame: int) -> None:
        """Write the new frames' moments into each row's ring, then merge each row's valid slots once here, not at
        every denoising step that reads them."""
        cap, t = stream.capacity, mean_f.shape[-1]
        groups = mean_f.shape[1]
        means, m2s, merged_mean, merged_m2, merged_count = stream.ensure(
            self.cache_slot, [(groups, cap), (groups, cap), (groups,), (groups,), (1,)], mean_f)
        index = torch.tensor(stream.row_list(), device=mean_f.device)
        for j in range(max(0, t - cap), t):
            position = stream.ring_positions(j).to(mean_f.device)
            means[index, :, position], m2s[index, :, position] = mean_f[..., j], m2_f[..., j]
        filled = torch.tensor([min(f + t, cap) for f in stream.fills()], device=mean_f.device)[:, None]
        n, mean, m2 = mean_f.new_zeros(len(index), 1), torch.zeros_like(mean_f[..., 0]), torch.zeros_like(mean_f[..., 0])
        row_means, row_m2s = means[index], m2s[index]
        for slot in range(cap):
            merged = _combine(n, mean, m2, per_frame, row_means[..., slot], row_m2s[..., slot])
            n, mean, m2 = (torch.where(filled > slot, a, b) for a, b in zip(merged, (n, mean, m2)))
        merged_mean[index], merged_m2[index], merged_count[index] = mean, m2, n

    def extra_repr(self) -> str:
        return super().extra_repr() + f", mode={self.mode}"


def _combine(n_a: Tensor, mean_a: Tensor, m2_a: Tensor, n_b: float, mean_b: Tensor, m2_b: Tensor):
    """Merge the moments of two sets (Chan et al.): counts (per row, [B, 1]), means and sums of squared deviations
    ([B, G])."""
    n = n_a + n_b
    delta = mean_b - mean_a
    return n, mean_a + delta * (n_b / n), m2_a + m2_b + delta.square() * (n_a * n_b / n)


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
        self.cache_slot = -1  # numbered by VideoUNet

    def forward(self, x: Tensor, stream: CacheView | None = None) -> Tensor:
        past = self.kernel_size[0] - 1
        if stream is None:
            return super().forward(F.pad(x, (0, 0, 0, 0, past, 0)) if self.causal else x)
        if not self.causal:
            raise RuntimeError("a non-causal temporal conv cannot run on a stream")
        state = stream.stored(self.cache_slot)  # (last k-1 inputs, their taps' share of the next output) per row
        if x.shape[2] == 1 and not stream.commit:
            return self._next_frame(x, None if state is None else state[1], stream.repeat)
        # before frame 0 a causal conv sees zero padding
        previous = x.new_zeros(x.shape[0], x.shape[1], past, *x.shape[3:]) if state is None else \
            stream.read(self.cache_slot)[0]
        extended = torch.cat([previous, x], dim=2)  # a new tensor: the slot below is written in place
        # one committed frame: the share computed at the last commit; several: the plain conv
        out = self._next_frame(x, None if state is None else state[1], 1) if x.shape[2] == 1 else \
            super().forward(extended)
        if stream.commit:
            tail = extended[:, :, -past:]
            stream.write(self.cache_slot, (tail, self._taps(tail, 0)))
        return out

    def _taps(self, frames: Tensor, first: int) -> Tensor:
        """Taps first..first+n-1 applied to frames [B, C, n, H, W] and summed, no bias: [B, C_out, H, W]. One
        matmul over (C, n): Conv3d's (k, 1, 1) kernel on a single output frame takes a slow unfold path."""
        b, c, n, h, w = frames.shape
        weight = self.weight[:, :, first:first + n, 0, 0].reshape(self.out_channels, c * n)
        return torch.matmul(weight, frames.reshape(b, c * n, h * w)).reshape(b, self.out_channels, h, w)

    def _next_frame(self, x: Tensor, past: Tensor | None, repeat: int) -> Tensor:
        """One new frame [B, C, 1, H, W] after the committed ones, whose taps' share (`past`, [rows, C_out, H, W],
        the batch = `repeat` x rows) was computed once at commit: the hot path of a cached rollout, where the
        history is fixed over a frame's denoising steps and its guidance passes."""
        out = self._taps(x, self.kernel_size[0] - 1)
        if past is not None:
            out = (out.unflatten(0, (repeat, -1)) + past).flatten(0, 1)
        if self.bias is not None:
            out = out + self.bias[:, None, None].to(out.dtype)
        return out[:, :, None]


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
