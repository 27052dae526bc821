"""Weight transfer: turn a symmetric temporal kernel into a causal one of the same width (method.md section 3.2).

Kernels have time on the last axis. A non-causal kernel of width K = 2m+1 has taps at offsets -m..m (index i reads
frame t + i - m); the causal kernel returned has taps at offsets -2m..0 (index j reads frame t + j - 2m).

- `shift`: the same numbers; every tap now reads m frames earlier (the output is the original's, delayed by m).
- `masked`: keep the past and present taps, drop the future ones: [w0, w1, w2] -> [0, w0, w1].
- `extrapolative`: drop the future taps but first fold each onto the last p frames through the least-squares
  linear extrapolation z_{t+k} ~ sum_j gamma_{k,j} z_{t-j}; exact on inputs linear in time.
  For K = 3, p = 2: [w0, w1, w2] -> [0, w0 - w2, w1 + 2 w2].
Biases never change (the extrapolation weights sum to 1, so the intercept is 0).
"""

from __future__ import annotations

import torch
from torch import Tensor

TRANSFER_MODES = ("extrapolative", "masked", "shift")


def extrapolation_coefficients(horizon: int, past_points: int) -> Tensor:
    """gamma[k-1, j] for k = 1..horizon, j = 0..p-1: the least-squares line through (t-j, z_{t-j}), j < p,
    evaluated at t+k, as weights on z_{t-j}. Float64, shape [horizon, p]; each row sums to 1.

    gamma_{k,j} = 1/p + (k + (p-1)/2) ((p-1)/2 - j) / S,  S = sum_j ((p-1)/2 - j)^2   (p = 1: gamma = 1).
    """
    p = int(past_points)
    if p < 1:
        raise ValueError(f"past_points must be >= 1, got {past_points}")
    centre = (p - 1) / 2
    j = torch.arange(p, dtype=torch.float64)
    k = torch.arange(1, horizon + 1, dtype=torch.float64)
    spread = ((centre - j) ** 2).sum()
    if spread == 0:  # a single point: constant extrapolation
        return torch.ones(horizon, 1, dtype=torch.float64)
    return 1.0 / p + (k[:, None] + centre) * (centre - j[None, :]) / spread


def transfer_kernel(weight: Tensor, mode: str, past_points: int = 2) -> Tensor:
    """A causal kernel from a non-causal one (time on the last axis; any leading axes). Pure: returns a new tensor.

    `mode`: "extrapolative" | "masked" | "shift"; `past_points` (extrapolative only): how many past frames the
    extrapolation fits, 1 <= p <= K.
    """
    if mode not in TRANSFER_MODES:
        raise ValueError(f"transfer mode must be one of {TRANSFER_MODES}, got {mode!r}")
    width = weight.shape[-1]
    if width % 2 != 1:
        raise ValueError(f"temporal kernel width must be odd (2m+1), got {width} (shape {tuple(weight.shape)})")
    m = width // 2
    if mode == "shift" or m == 0:
        return weight.clone()
    causal = torch.zeros_like(weight)
    causal[..., m:] = weight[..., : m + 1]  # offsets -m..0 keep their weights
    if mode == "masked":
        return causal
    if not 1 <= past_points <= width:
        raise ValueError(f"past_points must be in 1..{width} for a kernel of width {width}, got {past_points}")
    gamma = extrapolation_coefficients(m, past_points).to(weight.dtype)  # [m, p]
    future = weight[..., m + 1:]  # w_1..w_m (offsets +1..+m)
    folded = future @ gamma.to(weight.device)  # [..., p]: weight added to z_{t-j}, j = 0..p-1
    for j in range(past_points):
        causal[..., width - 1 - j] += folded[..., j]
    return causal


def transfer_conv_weight(weight: Tensor, mode: str, axis: int = 2, past_points: int = 2) -> Tensor:
    """`transfer_kernel` on a conv weight whose causal axis is `axis` (2 = time for Conv3d [O, I, T, H, W],
    2 = height for Conv2d [O, I, H, W])."""
    moved = weight.movedim(axis, -1)
    return transfer_kernel(moved, mode, past_points).movedim(-1, axis).contiguous()
