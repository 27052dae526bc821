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
from .timesteps import CLEAN, autoregressive_matrix


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
    if schedule.flow:  # back from variance-preserving units to the flow's (schedule.py); clean (abar 1): c = 1
        scale = schedule.flow_scale(next_levels.clamp_min(0), x)
        if final_alpha_one:
            scale = torch.where((next_levels == CLEAN)[:, None, :, None, None], torch.ones_like(scale), scale)
        x_next = x_next * scale.to(x.dtype)
    moving = (next_levels != levels)[:, None, :, None, None]
    return torch.where(moving, x_next, x), x0


class DDIMSampler:
    """Per-frame DDIM as an object a rollout steps through: `transitions()` lists the (level, next level) moves of
    the newest frame, `step` makes one. Another sampler (few-step, another update rule) plugs into a session by
    offering the same three names.

    The moves are the newest frame's column of the autoregressive scheduling matrix (`autoregressive_matrix`):
    the matrix drives the session, and `sample_matrix` runs whole matrices through the same `step`."""

    def __init__(self, schedule: NoiseSchedule, timesteps: Tensor, eta: float = 1.0,
                 final_alpha_one: bool = False) -> None:
        self.schedule, self.timesteps, self.eta, self.final_alpha_one = schedule, timesteps, eta, final_alpha_one

    @property
    def needs_noise(self) -> bool:
        """Whether `step` takes fresh noise (stochastic DDIM, eta > 0)."""
        return self.eta > 0

    def transitions(self) -> list[tuple[int, int]]:
        """The newest frame's moves, noisiest first, ending at CLEAN."""
        column = autoregressive_matrix(self.timesteps, 0, CLEAN)[:, -1].tolist()
        return list(zip(column[:-1], column[1:]))

    def step(self, x: Tensor, v: Tensor, level: int | Tensor, next_level: int | Tensor,
             noise: Tensor | None) -> Tensor:
        """x [B, C, T, H, W] at `level` (an int, [T] or [B, T]) moved to `next_level` given the model output `v`."""
        def as_levels(value: int | Tensor) -> Tensor:
            return torch.tensor([value], device=x.device) if isinstance(value, int) else value.to(x.device)

        out, _ = ddim_update(self.schedule, x, v, as_levels(level), as_levels(next_level), self.eta, noise,
                             self.final_alpha_one)
        return out


def sample_matrix(sampler: DDIMSampler, denoise: Callable[[Tensor, Tensor], Tensor], x: Tensor, matrix: Tensor,
                  generator: torch.Generator | None = None) -> Tensor:
    """Run a scheduling matrix [R + 1, T] on x [B, C, T, H, W] with `denoise(x, levels[B, T]) -> output`,
    recomputing every frame at every row (full-sequence, pyramid, or a recomputed autoregressive window)."""
    b = x.shape[0]
    for r in range(matrix.shape[0] - 1):
        levels = matrix[r].to(x.device).expand(b, -1)
        next_levels = matrix[r + 1].to(x.device).expand(b, -1)
        if torch.equal(levels, next_levels):
            continue
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device) \
            if sampler.needs_noise else None
        x = sampler.step(x, denoise(x, levels.clamp_min(0)), levels, next_levels, noise)
    return x
