"""Training objectives. Both return per-frame losses [B, T] for logging and their mean for the optimiser.

- `diffusion_forcing_loss`: an independent uniform integer noise level per frame (Diffusion Forcing) and an
  independent per-frame action dropout (mask 0 with probability `action_dropout`) for causal action guidance.
- `full_sequence_loss`: one noise level per clip (passive video pretraining, the non-autoregressive baseline).

`denoise(x_noisy, levels [B, T], action_mask [B, T]) -> output` binds the network and its conditioning; with the
schedule's dynamic rescale the clean frames are first scaled by s(k) per frame (DynamiCrafter's training rule).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from .schedule import NoiseSchedule

Denoise = Callable[[Tensor, Tensor, Tensor], Tensor]


@dataclass
class LossOutput:
    loss: Tensor  # scalar: mean over (b, t)
    per_frame: Tensor  # [B, T]: MSE over (C, H, W) of each frame
    levels: Tensor  # [B, T] the noise levels drawn
    action_mask: Tensor  # [B, T] 1 = action kept


def _draw(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device, high: int) -> Tensor:
    return torch.randint(0, high, shape, generator=generator).to(device)


def denoising_loss(denoise: Denoise, schedule: NoiseSchedule, x0: Tensor, levels: Tensor, action_dropout: float,
                   generator: torch.Generator | None = None) -> LossOutput:
    """MSE between the model output and its target at the given per-frame `levels` [B, T]."""
    b, _, t = x0.shape[:3]
    keep = torch.rand((b, t), generator=generator).to(x0.device) >= action_dropout
    action_mask = keep.to(x0.dtype)
    x0 = x0 * schedule.scale(levels, x0)
    noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
    x_noisy = schedule.add_noise(x0, levels, noise)
    target = schedule.target(x0, noise, levels)
    output = denoise(x_noisy, levels, action_mask)
    per_frame = (output.float() - target.float()).square().mean(dim=(1, 3, 4))
    return LossOutput(per_frame.mean(), per_frame, levels, action_mask)


def diffusion_forcing_loss(denoise: Denoise, schedule: NoiseSchedule, x0: Tensor, action_dropout: float = 0.2,
                           generator: torch.Generator | None = None) -> LossOutput:
    """Independent noise level k_{b,t} ~ U{0..K-1} per frame; action mask ~ Bernoulli(1 - p) per frame."""
    b, _, t = x0.shape[:3]
    levels = _draw((b, t), generator, x0.device, schedule.num_train_timesteps)
    return denoising_loss(denoise, schedule, x0, levels, action_dropout, generator)


def full_sequence_loss(denoise: Denoise, schedule: NoiseSchedule, x0: Tensor, action_dropout: float = 0.0,
                       generator: torch.Generator | None = None) -> LossOutput:
    """One noise level per clip, shared by all its frames."""
    b, _, t = x0.shape[:3]
    levels = _draw((b, 1), generator, x0.device, schedule.num_train_timesteps).expand(b, t)
    return denoising_loss(denoise, schedule, x0, levels, action_dropout, generator)
