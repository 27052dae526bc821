"""A single-process loop over in-memory episodes, through the trainer's own loss (`clip_loss`): what the offline
demo and the learning test use to train small world models on CPU without writing a dataset. Everything a step
computes is `train()`'s objective; only the batches come from arrays instead of a dataset on disk."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..io.progress import progress_bar
from ..world.world_model import WorldModel
from .objective import Denoiser, Objective, clip_loss


@dataclass(frozen=True)
class FitConfig:
    steps: int = 300
    batch: int = 8
    clip: int = 8  # frames per training clip
    lr: float = 2e-3
    action_dropout: float = 0.2
    grad_clip: float = 1.0
    seed: int = 0


def fit_world_model(model: WorldModel, frames: np.ndarray, actions: np.ndarray, config: FitConfig = FitConfig(),
                    progress: bool = False, on_step: Callable[[int, float], None] | None = None) -> list[float]:
    """Train `model` with Diffusion Forcing on episodes `frames` [N, T, H, W, 3] uint8 and `actions` [N, T, A]
    (action t taken after frame t). Random windows of `config.clip` frames. Returns the loss of every step."""
    n, t = frames.shape[:2]
    if actions.shape[:2] != (n, t):
        raise ValueError(f"actions: expected [N={n}, T={t}, A] to match frames, got {actions.shape}")
    if t < config.clip:
        raise ValueError(f"episodes have {t} frames, fewer than a training clip of {config.clip}")
    video = torch.from_numpy(np.ascontiguousarray(frames))  # uint8 [N, T, H, W, 3]
    acts = torch.from_numpy(np.asarray(actions, dtype=np.float32))
    gen = torch.Generator().manual_seed(config.seed)
    denoiser, objective = Denoiser(model), Objective(action_dropout=config.action_dropout)
    optimizer = torch.optim.AdamW(denoiser.parameters(), lr=config.lr, weight_decay=0.0)
    model.unet.train()
    losses = []
    for step in progress_bar(range(config.steps), desc="train", unit="step", enabled=progress):
        idx = torch.randint(0, n, (config.batch,), generator=gen)
        start = torch.randint(0, t - config.clip + 1, (config.batch,), generator=gen)
        window = start[:, None] + torch.arange(config.clip)
        batch = {"frames": torch.stack([video[i, w] for i, w in zip(idx, window)]),
                 "actions": torch.stack([acts[i, w] for i, w in zip(idx, window)])}
        out = clip_loss(denoiser, model, batch, objective, gen)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(denoiser.parameters(), config.grad_clip)
        optimizer.step()
        losses.append(out.loss.item())
        if on_step:
            on_step(step, losses[-1])
    model.unet.eval()
    return losses
