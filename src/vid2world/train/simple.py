"""A minimal, single-process Diffusion Forcing loop over in-memory clips: what the tests and the offline demo use
to train small pixel-space world models on CPU. (The full trainer, distributed and resumable, builds on this.)"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..diffusion.losses import diffusion_forcing_loss
from ..diffusion.schedule import NoiseSchedule
from ..io.progress import progress_bar
from ..models.embeddings import shift_actions
from ..models.unet import VideoUNet


@dataclass(frozen=True)
class FitConfig:
    steps: int = 300
    batch: int = 8
    clip: int = 8  # frames per training clip
    lr: float = 2e-3
    action_dropout: float = 0.2
    grad_clip: float = 1.0
    seed: int = 0


def fit_world_model(unet: VideoUNet, schedule: NoiseSchedule, frames: np.ndarray, actions: np.ndarray,
                    config: FitConfig = FitConfig(), progress: bool = False,
                    on_step: Callable[[int, float], None] | None = None) -> list[float]:
    """Train `unet` with Diffusion Forcing on episodes `frames` [N, T, H, W, 3] uint8 and `actions` [N, T, A]
    (action t taken after frame t). Random windows of `config.clip` frames. Returns the loss of every step."""
    n, t = frames.shape[:2]
    if actions.shape[:2] != (n, t):
        raise ValueError(f"actions: expected [N={n}, T={t}, A] to match frames, got {actions.shape}")
    if t < config.clip:
        raise ValueError(f"episodes have {t} frames, fewer than a training clip of {config.clip}")
    device = next(unet.parameters()).device
    video = torch.from_numpy(frames).permute(0, 4, 1, 2, 3)  # uint8 [N, 3, T, H, W]
    acts = torch.from_numpy(np.asarray(actions, dtype=np.float32))
    gen = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=config.lr, weight_decay=0.0)
    unet.train()
    losses = []
    for step in progress_bar(range(config.steps), desc="train", unit="step", enabled=progress):
        idx = torch.randint(0, n, (config.batch,), generator=gen)
        start = torch.randint(0, t - config.clip + 1, (config.batch,), generator=gen)
        window = start[:, None] + torch.arange(config.clip)
        x0 = torch.stack([video[i, :, w] for i, w in zip(idx, window)]).float().div(127.5).sub(1).to(device)
        frame_actions = shift_actions(torch.stack([acts[i, w] for i, w in zip(idx, window)])).to(device)
        out = diffusion_forcing_loss(
            lambda x, levels, mask: unet.denoise(x, levels, None, None, frame_actions, mask),
            schedule, x0, config.action_dropout, gen)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), config.grad_clip)
        optimizer.step()
        losses.append(out.loss.item())
        if on_step:
            on_step(step, losses[-1])
    unet.eval()
    return losses
