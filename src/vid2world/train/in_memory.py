"""A single-process loop over in-memory episodes, through the trainer's own loss (`clip_loss`): what the learning
test and the bundled models (`vid2world zoo build`) use to train small world models on CPU without the distributed
machinery. Everything a step computes is `train()`'s objective; only the batches come from arrays instead of a
dataset on disk, either frames or latents cached once by the model's codec (`train.latent_cache`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from ..io.progress import progress_bar
from ..world.world_model import WorldModel
from .ema import EMA
from .optim import lr_at, optimizer_step, set_lr
from .objective import Denoiser, Objective, clip_loss
from ..models.precision import autocast


@dataclass(frozen=True)
class FitConfig:
    steps: int = 300
    batch: int = 8
    clip: int = 8  # frames per training clip
    lr: float = 2e-3
    warmup: int = 0  # linear warm-up steps; with `decay` a cosine decay to lr/10 follows
    decay: bool = False
    action_dropout: float = 0.2
    diffusion_forcing: bool = True  # False: one noise level per clip, no actions (passive pretraining)
    grad_clip: float = 1.0
    ema_decay: float | None = None  # the weights left in the model are the average when set
    precision: str = "fp32"  # fp32 | bf16
    seed: int = 0
    # torch.compile the denoiser: 1.1-1.4x per step on 2 CPU cores (it fuses the memory-bound norms, activations and
    # copies), after a compile of about 2.5 minutes cold, seconds with inductor's on-disk cache: for long stages
    compile: bool = False


class EpisodeSampler:
    """Random windows of `clip` steps from episodes of unequal length (frames [T, H, W, 3] uint8 or latents
    [T, C, h, w]; actions [T, A] or None). An episode is drawn uniformly, then a start within it."""

    def __init__(self, episodes: Sequence[np.ndarray], actions: Sequence[np.ndarray] | None, clip: int,
                 key: str) -> None:
        keep = [i for i, e in enumerate(episodes) if len(e) >= clip]
        if not keep:
            raise ValueError(f"no episode has {clip} steps, the length of a training clip")
        self.episodes = [torch.from_numpy(np.array(episodes[i])) for i in keep]  # copies: memory maps are read-only
        self.actions = None if actions is None else [torch.from_numpy(np.array(actions[i], np.float32))
                                                     for i in keep]
        if self.actions is not None and any(len(a) != len(e) for a, e in zip(self.actions, self.episodes)):
            raise ValueError("actions: every episode needs one action per frame")
        self.lengths = torch.tensor([len(e) for e in self.episodes])
        self.clip, self.key = clip, key

    def batch(self, size: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        idx = torch.randint(0, len(self.episodes), (size,), generator=gen)
        spans = self.lengths[idx] - self.clip + 1
        if bool((spans == spans[0]).all()):  # equal lengths: one integer draw, as the first version of this loop
            start = torch.randint(0, int(spans[0]), (size,), generator=gen)
        else:
            start = (torch.rand(size, generator=gen) * spans).long()
        out = {self.key: torch.stack([self.episodes[i][s:s + self.clip] for i, s in zip(idx, start)])}
        if self.key == "latents":
            out["latents"] = out["latents"].transpose(1, 2).float()  # [B, T, C, h, w] -> [B, C, T, h, w]
        if self.actions is not None:
            out["actions"] = torch.stack([self.actions[i][s:s + self.clip] for i, s in zip(idx, start)])
        return out


def fit_world_model(model: WorldModel, frames: Sequence[np.ndarray], actions: Sequence[np.ndarray] | None,
                    config: FitConfig = FitConfig(), progress: bool = False,
                    on_step: Callable[[int, float], None] | None = None, latents: bool = False) -> list[float]:
    """Train `model` on episodes `frames` (uint8 [T, H, W, 3] each, or cached latents [T, C, h, w] each when
    `latents`) and `actions` ([T, A] each, action t taken after frame t; None for passive pretraining), with
    Diffusion Forcing (or one noise level per clip). Returns the loss of every step."""
    if actions is not None and len(actions) != len(frames):
        raise ValueError(f"actions: expected one array per episode ({len(frames)}), got {len(actions)}")
    sampler = EpisodeSampler(frames, actions, config.clip, "latents" if latents else "frames")
    gen = torch.Generator().manual_seed(config.seed)
    denoiser = Denoiser(model)
    step_denoiser = torch.compile(denoiser) if config.compile else denoiser  # shares the parameters
    objective = Objective(diffusion_forcing=config.diffusion_forcing, action_dropout=config.action_dropout)
    # fused: one kernel per parameter instead of a dozen elementwise passes; a fifth of the optimiser's time on CPU
    optimizer = torch.optim.AdamW(denoiser.parameters(), lr=config.lr, weight_decay=0.0, fused=True)
    ema = EMA(denoiser, config.ema_decay) if config.ema_decay else None
    model.unet.train()
    losses = []
    for step in progress_bar(range(config.steps), desc="train", unit="step", enabled=progress):
        set_lr(optimizer, lr_at(step, config.steps, config.lr, config.warmup, config.decay))
        batch = sampler.batch(config.batch, gen)
        with autocast(config.precision, model.device):
            out = clip_loss(step_denoiser, model, batch, objective, gen)
        out.loss.float().backward()
        optimizer_step(optimizer, denoiser.parameters(), config.grad_clip, ema, denoiser)
        losses.append(out.loss.item())
        if on_step:
            on_step(step, losses[-1])
    if ema is not None:
        ema.copy_to(denoiser)
    model.unet.eval()
    return losses
