"""Few-step distillation: a student world model that samples in 1-2 unguided steps what its teacher samples with a
preset's steps and guidance (`vid2world distill`, docs/training.md).

The student starts as a copy of the teacher. Each step draws clips of real latents and actions, a context length
k, and one starting noise per clip; the teacher's own session (its cache, guidance and rescale, exactly what a
player gets from the preset) turns that noise into frame k after the k real frames, and the student is trained to
reach the same latent from the same noise in its few DDIM steps, unrolled with their gradients (knowledge
distillation of the deterministic sampler, Luhman & Luhman 2021; the guidance is folded in, so the student runs one
call per step instead of two). The history is clean, as the session commits it, so the student learns the frame it
will be asked for.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from ..io.atomic import atomic_file
from ..io.progress import progress_bar
from ..models.precision import PRECISIONS, autocast
from ..world.frames import check_finite
from ..world.denoise import conditioning_of, denoise
from ..world.sampling import FastPreset, Sampling
from ..world.session import make_sampler
from ..world.world_model import WorldModel
from .ema import EMA
from .in_memory import EpisodeSampler
from .optim import lr_at, optimizer_step, set_lr


@dataclass(frozen=True)
class DistillConfig:
    steps: int = 600
    batch: int = 16
    lr: float = 1e-4
    warmup: int = 20
    decay: bool = True  # cosine to lr/10 after the warm-up
    grad_clip: float = 1.0
    ema_decay: float | None = 0.99
    precision: str = "bf16"  # the student's training passes (the teacher samples at its preset's precision)
    seed: int = 0
    student_steps: int = 1  # DDIM steps the student samples with (guidance off)
    student_precision: str = "fp32"  # the student's `fast` preset precision (fp32 is faster for one frame on CPU)
    teacher_preset: str = "fast"
    teacher_steps: int | None = None  # overrides of the teacher's preset
    teacher_guidance: float | None = None
    # the share of steps whose context the student makes itself (self-forcing): a student taught on real histories
    # only drifts in long sessions (docs/results.md); 0 keeps the runs made before this setting
    own_context: float = 0.0

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "student_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"distill.{name}: expected an integer >= 1, got {value!r}")
        if not 0 < self.student_steps <= 4:
            raise ValueError(f"distill.student_steps: 1..4 steps (each is unrolled with its gradient), got "
                             f"{self.student_steps}")
        if not (isinstance(self.own_context, (int, float)) and 0 <= self.own_context <= 1):
            raise ValueError(f"distill.own_context: a share in [0, 1], got {self.own_context!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ValueError(f"distill.lr: expected a positive number, got {self.lr!r}")
        for name in ("precision", "student_precision"):
            if getattr(self, name) not in PRECISIONS:
                raise ValueError(f"distill.{name}: one of {PRECISIONS}, got {getattr(self, name)!r}")


def teacher_sampling(teacher: WorldModel, config: DistillConfig) -> Sampling:
    return teacher.sampling(config.teacher_preset, steps=config.teacher_steps, guidance=config.teacher_guidance)


def make_student(teacher: WorldModel, config: DistillConfig, source: str) -> WorldModel:
    """A copy of the teacher whose presets both sample in `student_steps` unguided deterministic steps."""
    student = copy.deepcopy(teacher)
    guidance = replace(teacher.sampler.guidance, scale=1.0)
    # deterministic (eta 0) after clean history: as it is trained (the teacher keeps its own history level)
    student.sampler = replace(teacher.sampler, steps=config.student_steps, guidance=guidance, eta=0.0,
                              history_level="clean",
                              fast=FastPreset(config.student_steps, 1.0, config.student_precision))
    student.metadata = {**teacher.metadata, "distilled_from": source, "distill": asdict(config)}
    return student


@torch.no_grad()
def teacher_frames(teacher: WorldModel, sampling: Sampling, latents: Tensor, frame_actions: Tensor | None,
                   noise: Tensor, seed: int) -> Tensor:
    """The teacher's next latent [B, C, 1, h, w] after context `latents` [B, C, k, h, w] (the last frame of
    `frame_actions` [B, k + 1, A] is the action it follows), from `noise`."""
    k = latents.shape[2]
    context_actions = None if frame_actions is None else frame_actions[:, :k]
    session = teacher.latent_session(latents, context_actions, sampling=sampling, seed=seed)
    return session.step_latent(None if frame_actions is None else frame_actions[:, k], noise=noise)


def student_frames(student: WorldModel, latents: Tensor, frame_actions: Tensor | None, noise: Tensor) -> Tensor:
    """The student's next latent, from `noise` after clean context `latents`, through its sampler's steps with
    the window recomputed at each (the same numbers as its cached session's)."""
    sampler, history = make_sampler(student.schedule, student.sampler)
    k = latents.shape[2]
    conditioning = conditioning_of(student, latents)
    x = noise
    for level, next_level in sampler.transitions():
        window = torch.cat([latents, x.to(latents.dtype)], dim=2)
        levels = torch.full((x.shape[0], k + 1), history, dtype=torch.long, device=x.device)
        levels[:, -1] = level
        out = denoise(student.backbone, window, levels, conditioning, frame_actions, None)
        x = sampler.step(x, out[:, :, -1:].to(x.dtype), level, next_level, None)
    return x


@torch.no_grad()
def own_context(student: WorldModel, latents: Tensor, frame_actions: Tensor | None, seed: int) -> Tensor:
    """Context frames [B, C, k, h, w] the student makes itself: the first real frame, then its own session
    under the clip's actions (self-forcing: the histories it will meet in a long session, not only real ones)."""
    session = student.latent_session(latents[:, :, :1], None if frame_actions is None else frame_actions[:, :1],
                                     sampling=student.sampling("fast"), seed=seed)
    made = [session.step_latent(None if frame_actions is None else frame_actions[:, j])
            for j in range(1, latents.shape[2])]
    return torch.cat([latents[:, :, :1], *made], dim=2).to(latents.dtype)


def distill_loss(teacher: WorldModel, student: WorldModel, sampling: Sampling, batch: dict[str, Tensor],
                 k: int, gen: torch.Generator, precision: str, own: bool = False) -> Tensor:
    """Mean squared latent distance between the student's and the teacher's frame k of every clip, after the
    clip's k real frames (or, `own`, after the first real frame and the student's own k - 1)."""
    dtype = next(student.backbone.parameters()).dtype
    latents = batch["latents"][:, :, :k + 1].to(student.device, dtype)
    frame_actions = None
    if "actions" in batch:
        frame_actions = student.latent_actions(batch["actions"][:, :k].to(latents))  # [B, k + 1, A]
    noise = torch.randn(latents[:, :, :1].shape, generator=gen).to(latents)
    seed = int(torch.randint(0, 2 ** 31 - 1, (1,), generator=gen))
    context = own_context(student, latents[:, :, :k], frame_actions, seed) if own else latents[:, :, :k]
    target = teacher_frames(teacher, sampling, context, frame_actions, noise, seed)
    # the student's dropout, if it has any, draws from torch's global stream: seeded from `gen`, so a run resumes
    with torch.random.fork_rng(devices=[]), autocast(precision, student.device):
        torch.manual_seed(seed)
        x = student_frames(student, context, frame_actions, noise)
    return torch.nn.functional.mse_loss(x.float(), target.float())


def _save_state(path: Path, step: int, student: WorldModel, optimizer, ema: EMA | None, gen: torch.Generator,
                losses: list[float], wall_s: float) -> None:
    state = {"step": step, "backbone": student.backbone.state_dict(), "optimizer": optimizer.state_dict(),
             "ema": None if ema is None else ema.state_dict(), "generator": gen.get_state(), "losses": losses,
             "wall_s": wall_s}
    with atomic_file(path) as tmp:
        torch.save(state, tmp)


def _load_state(path: Path, student: WorldModel, optimizer, ema: EMA | None, gen: torch.Generator
                ) -> tuple[int, list[float], float]:
    state = torch.load(path, map_location=student.device, weights_only=True)
    student.backbone.load_state_dict(state["backbone"])
    optimizer.load_state_dict(state["optimizer"])
    if ema is not None:
        ema.load_state_dict(state["ema"])
    gen.set_state(state["generator"])
    return int(state["step"]), list(state["losses"]), float(state.get("wall_s", 0.0))


def distill(teacher: WorldModel, latents: Sequence[np.ndarray], actions: Sequence[np.ndarray] | None,
            config: DistillConfig, source: str = "", progress: bool = False, state: Path | None = None,
            checkpoint_every: int = 50, on_step: Callable[[int, float], None] | None = None
            ) -> tuple[WorldModel, list[float], float]:
    """Distil `teacher` on episodes of its latents ([T, C, h, w] each) and actions ([T, A] each); returns the
    student, the loss of every step and the wall seconds its steps took. With `state`, the run saves itself there
    every `checkpoint_every` steps and goes on from it when it exists (the same steps, batches and noise as an
    unbroken run; the seconds add up over the parts, the steps a stop lost counted once, when redone)."""
    started = time.perf_counter()
    window = teacher.window
    if window < 2:
        raise ValueError(f"distill: the teacher's window holds {window} frame; it needs history to distil")
    if teacher.frames_per_step != 1:
        raise ValueError("distill: a codec that compresses time (several frames per latent) is not supported yet")
    sampler = EpisodeSampler(latents, actions, window, "latents")
    gen = torch.Generator().manual_seed(config.seed)
    sampling = teacher_sampling(teacher, config)
    student = make_student(teacher, config, source)
    student.backbone.requires_grad_(True)
    student.codec.requires_grad_(False)
    params = [p for p in student.backbone.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0, fused=True)
    ema = EMA(student.backbone, config.ema_decay) if config.ema_decay else None
    start, losses, before = (0, [], 0.0) if state is None or not state.is_file() else \
        _load_state(state, student, optimizer, ema, gen)
    student.backbone.train()
    for step in progress_bar(range(start, config.steps), desc="distill", unit="step", enabled=progress,
                             initial=start, total=config.steps):
        set_lr(optimizer, lr_at(step, config.steps, config.lr, config.warmup, config.decay))
        k = int(torch.randint(1, window, (1,), generator=gen))  # context frames of this step's clips
        # drawn only when asked for: runs without own context keep the stream they had before the setting
        own = config.own_context > 0 and bool(torch.rand(1, generator=gen) < config.own_context)
        loss = distill_loss(teacher, student, sampling, sampler.batch(config.batch, gen), k, gen, config.precision,
                            own)
        check_finite(loss.detach(), f"distill loss at step {step}")
        loss.backward()
        optimizer_step(optimizer, params, config.grad_clip, ema, student.backbone)
        losses.append(loss.item())
        if on_step:
            on_step(step, losses[-1])
        if state is not None and ((step + 1) % checkpoint_every == 0 or step + 1 == config.steps):
            _save_state(state, step + 1, student, optimizer, ema, gen, losses,
                        before + time.perf_counter() - started)
    if ema is not None:
        ema.copy_to(student.backbone)
    student.backbone.eval()
    return student, losses, before + time.perf_counter() - started
