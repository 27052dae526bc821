"""Per-frame DDIM: each frame moves from its own level k to its own next level k' (method.md section 7.1).

    x0, eps = split(x, k, v);  x0 <- x0 * s(k') / s(k)                      (dynamic rescale, ratio 1 at the end)
    sigma   = eta * sqrt((1 - abar') / (1 - abar)) * sqrt(1 - abar / abar')
    x'      = sqrt(abar') x0 + sqrt(1 - abar' - sigma^2) eps + sigma z
Level -1 (clean) has abar' = abar_0 (lvdm / the official code) or 1 (`final_alpha_one`). Frames whose level does not
change are returned unchanged.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .schedule import NoiseSchedule
from .timesteps import CLEAN


def ddim_update(schedule: NoiseSchedule, x: Tensor, output: Tensor, levels: Tensor, next_levels: Tensor,
                eta: float, noise: Tensor | None, final_alpha_one: bool = False) -> tuple[Tensor, Tensor]:
    """One DDIM move for every frame of x [B, C, T, H, W] from `levels` to `next_levels` ([B, T] or [T]).

    Returns (x', x0_hat). `noise` (standard normal, shape of x) is needed when eta > 0.
    """
    b, _, t = x.shape[:3]
    levels = levels.expand(b, t) if levels.ndim == 1 else levels
    next_levels = next_levels.expand(b, t) if next_levels.ndim == 1 else next_levels
    current = levels.clamp_min(0)  # a clean frame (-1) that stays clean is evaluated at level 0
    x0, eps = schedule.split(x, current, output)
    if schedule.scale_table is not None:
        toward = torch.where(next_levels == CLEAN, current, next_levels)
        x0 = x0 * (schedule.scale(toward, x) / schedule.scale(current, x))
    abar = schedule.alpha_bar(current, x)
    abar_next = schedule.alpha_bar(next_levels.clamp_min(0), x)
    if final_alpha_one:
        abar_next = torch.where((next_levels == CLEAN)[:, None, :, None, None], torch.ones_like(abar_next), abar_next)
    sigma = eta * ((1 - abar_next) / (1 - abar) * (1 - abar / abar_next)).clamp_min(0).sqrt()
    x_next = abar_next.sqrt().to(x.dtype) * x0 + (1 - abar_next - sigma ** 2).clamp_min(0).sqrt().to(x.dtype) * eps
    if eta > 0:
        if noise is None:
            raise ValueError("ddim_update: eta > 0 needs a noise tensor")
        x_next = x_next + sigma.to(x.dtype) * noise
    moving = (next_levels != levels)[:, None, :, None, None]
    return torch.where(moving, x_next, x), x0


def sample_matrix(schedule: NoiseSchedule, denoise: Callable[[Tensor, Tensor], Tensor], x: Tensor, matrix: Tensor,
                  eta: float = 1.0, generator: torch.Generator | None = None,
                  final_alpha_one: bool = False) -> Tensor:
    """Run a scheduling matrix [R + 1, T] on x [B, C, T, H, W] with `denoise(x, levels[B, T]) -> output`,
    recomputing every frame at every row (full-sequence, pyramid, or a recomputed autoregressive window)."""
    b = x.shape[0]
    for r in range(matrix.shape[0] - 1):
        levels = matrix[r].to(x.device).expand(b, -1)
        next_levels = matrix[r + 1].to(x.device).expand(b, -1)
        if torch.equal(levels, next_levels):
            continue
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device) if eta > 0 else None
        x, _ = ddim_update(schedule, x, denoise(x, levels.clamp_min(0)), levels, next_levels, eta, noise,
                           final_alpha_one)
    return x
