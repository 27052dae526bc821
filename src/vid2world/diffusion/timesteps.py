"""DDIM timestep subsets and scheduling matrices (rows = denoising steps, columns = each frame's noise level).

A scheduling matrix holds integer levels; level -1 means "clean" (the end of sampling). Each row transition
r -> r+1 denoises every frame whose level drops and leaves the others as they are.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

SPACINGS = ("trailing", "leading", "linspace", "uniform")
CLEAN = -1


def shift_levels(levels: np.ndarray, shift: float, n: int) -> np.ndarray:
    """Levels moved toward noise by a flow model's timestep shift (Wan: 3-5): noise fraction s = (k + 1) / n
    becomes shift s / (1 + (shift - 1) s), the sampling schedule of diffusers' flow schedulers; shift 1 is the
    identity. Levels that collide after rounding are kept once."""
    s = (levels + 1) / n
    shifted = np.round(n * shift * s / (1 + (shift - 1) * s)).astype(np.int64) - 1
    return np.unique(np.clip(shifted, 0, n - 1))


def ddim_timesteps(steps: int, spacing: str = "trailing", num_train_timesteps: int = 1000,
                   shift: float = 1.0) -> Tensor:
    """Ascending DDIM levels. trailing: 19, 39, ..., 999 (50 steps); leading (diffusers): 0, 20, ..., 980;
    linspace: round(linspace(0, 999, N)); uniform (lvdm's 'uniform'): 1, 21, ..., 981; then moved by a flow
    model's timestep `shift` (`shift_levels`; 1: unchanged)."""
    n = num_train_timesteps
    if not (isinstance(shift, (int, float)) and np.isfinite(shift) and shift > 0):
        raise ValueError(f"shift must be a finite number > 0 (1: none), got {shift!r}")
    if not 1 <= steps <= n:
        raise ValueError(f"steps must be in 1..{n}, got {steps}")
    if spacing == "trailing":
        levels = np.flip(np.round(np.arange(n, 0, -n / steps))).astype(np.int64) - 1
    elif spacing == "leading":
        levels = np.arange(steps, dtype=np.int64) * (n // steps)
    elif spacing == "linspace":
        levels = np.round(np.linspace(0, n - 1, steps)).astype(np.int64)
    elif spacing == "uniform":
        levels = np.arange(0, n, n // steps, dtype=np.int64)[:steps] + 1
    else:
        raise ValueError(f"spacing must be one of {SPACINGS}, got {spacing!r}")
    if shift != 1.0:
        levels = shift_levels(levels, float(shift), n)
    return torch.from_numpy(levels.copy())


def history_level(timesteps: Tensor, setting: int | str) -> int:
    """The level history frames are held at: "penultimate" (the second-lowest DDIM level, 39 for 50 trailing
    steps: the official code), "clean" (level 0, no noise), or an integer (the paper: 20)."""
    if setting == "penultimate":
        return int(timesteps[1]) if len(timesteps) > 1 else int(timesteps[0])
    if setting == "clean":
        return 0
    if isinstance(setting, int) and 0 <= setting < 1000:
        return setting
    raise ValueError(f"history_level must be 'penultimate', 'clean' or an int in 0..999, got {setting!r}")


def _descending(timesteps: Tensor) -> Tensor:
    return torch.cat([timesteps.flip(0), torch.tensor([CLEAN])])


def full_sequence_matrix(timesteps: Tensor, frames: int) -> Tensor:
    """Every frame at the same level in every row: [steps + 1, frames]."""
    return _descending(timesteps)[:, None].expand(-1, frames).clone()


def autoregressive_matrix(timesteps: Tensor, history: int, level_of_history: int) -> Tensor:
    """History frames held at one level, the newest frame denoised over all steps: [steps + 1, history + 1]."""
    rows = _descending(timesteps)
    matrix = torch.full((len(rows), history + 1), level_of_history, dtype=torch.long)
    matrix[:, -1] = rows
    return matrix


def pyramid_matrix(timesteps: Tensor, frames: int, lag: int = 1) -> Tensor:
    """Diffusion Forcing's pyramid: frame j starts denoising `lag` steps after frame j-1 (earlier frames are always
    less noisy): [steps + 1 + lag * (frames - 1), frames]."""
    rows = _descending(timesteps)
    total = len(rows) + lag * (frames - 1)
    index = (torch.arange(total)[:, None] - lag * torch.arange(frames)[None, :]).clamp(0, len(rows) - 1)
    return rows[index]
