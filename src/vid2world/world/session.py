"""`RolloutSession`: a world model stepped one frame at a time.

Start from context frames (and the actions between them); each `step(action)` returns the next frame. History
frames are noised once, at the history level, when they become history (the official rule), and either committed to
a fixed-size cache (`CachedEvaluator`) or kept for recomputation (`RecomputeEvaluator`); either way the session holds
only what its window can see. Every row draws its noise from its own generator on the model's device, so a row's
frames depend on its seed alone and `reset` can restart some rows of a batch.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Iterator, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from ..data.spec import ActionGroup, ActionSpec
from ..diffusion.sampler import DDIMSampler
from ..diffusion.schedule import NoiseSchedule
from ..models.backbone import Backbone
from ..diffusion.timesteps import ddim_timesteps, history_level
from ..models.precision import autocast
from .anchor import WindowHistory, first_in_view
from .denoise import Conditioning, conditioning_of
from .evaluate import CachedEvaluator, RecomputeEvaluator
from .frames import frames_to_tensor, tensor_to_frames
from .sampling import SamplerConfig


class SessionModel(Protocol):
    """What a `RolloutSession` uses of its model (a `WorldModel`): the runtime's handle, named and typed here."""

    backbone: Backbone
    codec: nn.Module
    conditioner: nn.Module | None
    schedule: NoiseSchedule
    metadata: dict[str, Any]
    concat_first_frame: bool
    fps: int | None

    @property
    def window(self) -> int: ...

    @property
    def frames_per_step(self) -> int: ...

    def sampling_backbone(self, precision: str) -> Backbone: ...

    def check_step_action(self, action: Any, batch: int) -> Tensor | None: ...

    def encode_context(self, context_frames: Any, context_actions: Any = None, seed: int = 0,
                       context: Tensor | None = None, anchor: int = 0
                       ) -> tuple[Tensor, Tensor | None, Tensor | None]: ...

    def modules(self) -> Iterator[nn.Module]: ...


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """Run `module` in eval mode (dropout off), then give every submodule back its own mode.

    Rollouts must not depend on the mode a caller left the model in (a training loop, `causalize`'s result), and
    must not change it either: each submodule's flag is restored, not the root's alone (a trainer keeps the frozen
    codec in eval mode while the UNet trains). Only the submodules in training mode are touched: a model already in
    eval mode (every interactive step) costs one walk over its modules, not two `train()` calls."""
    training = [m for m in module.modules() if m.training]
    for m in training:
        m.training = False
    try:
        yield
    finally:
        for m in training:
            m.training = True


def check_frame_size(model: SessionModel, latents: Tensor) -> tuple[int, int]:
    """The (H, W) of the frames `latents` [B, C, T, h, w] decode to, checked against the model's recorded frame size
    (metadata `frame_size`): a model runs at any size a convolution takes, but makes sense only at its own."""
    factor = int(getattr(model.codec, "downsample", 1))
    size = (latents.shape[3] * factor, latents.shape[4] * factor)
    expected = model.metadata.get("frame_size")
    if isinstance(expected, (list, tuple)) and len(expected) == 2 and tuple(int(v) for v in expected) != size:
        h, w = (int(v) for v in expected)
        raise ValueError(f"context_frames: expected frames of {h}x{w} (the model's frame_size), got "
                         f"{size[0]}x{size[1]}" + (f" ({latents.shape[3]}x{latents.shape[4]} latents)" if factor > 1
                                                  else ""))
    return size


def row_generators(seed: int, rows: int, device: torch.device) -> list[torch.Generator]:
    """One generator per batch row, row i seeded from (seed, i): a row's noise does not depend on the others."""
    states = (np.random.SeedSequence([int(seed) % 2 ** 63, i]).generate_state(1, np.uint64)[0] for i in range(rows))
    return [torch.Generator(device=device).manual_seed(int(s) % 2 ** 63) for s in states]


# How far outside its recorded range (in spans of that range) a continuous action may go: the range is what the data
# showed, so an agent may step somewhat past it, but a value many spans out (1e30) is a bug, not a question
RANGE_SLACK = 1.0


def action_groups(model: SessionModel) -> list[tuple[ActionGroup, slice]]:
    """The groups of the model's raw action vector: its metadata's `ActionSpec`, else one group of its head's kind."""
    space = model.backbone.config.action_space
    spec = model.metadata.get("actions")
    if isinstance(spec, dict):
        spec = ActionSpec.from_dict(spec)
        if spec.dim == space.dim:
            return spec.slices()
    labels = tuple(space.names) if space.names else tuple(f"a{i}" for i in range(space.dim))
    return [(ActionGroup("action", space.kind, labels), slice(0, space.dim))]


def check_action_values(groups: list[tuple[ActionGroup, slice]], action: Tensor) -> None:
    """One step's actions [B, A] against the model's action space: multi-hot and one-hot entries 0 or 1, continuous
    ones within their recorded range widened by `RANGE_SLACK` spans each side (where the space records one)."""
    for group, cols in groups:
        part = action[:, cols]
        if group.kind != "continuous":
            bad = (part != 0) & (part != 1)
        elif group.low and group.high:
            low, high = (torch.tensor(v, dtype=part.dtype, device=part.device) for v in (group.low, group.high))
            span = (high - low).clamp_min(1e-6)
            bad = (part < low - RANGE_SLACK * span) | (part > high + RANGE_SLACK * span)
        else:
            continue  # no recorded range: finite is all one can ask (`check_step_action`)
        if bad.any():
            row, col = (int(i) for i in bad.nonzero()[0])
            where = f"{group.name}.{group.labels[col]}" if col < len(group.labels) else f"{group.name}[{col}]"
            allowed = "must be 0 or 1" if group.kind != "continuous" else \
                f"lies far outside its recorded range {group.low[col]:g}..{group.high[col]:g}"
            raise ValueError(f"action: {where} = {part[row, col].item():g} in row {row} {allowed} ({group.kind} "
                             "group)")


def make_sampler(schedule: NoiseSchedule, settings: SamplerConfig) -> tuple[DDIMSampler, int]:
    """The sampler `settings` describe for `schedule`, and the level its history frames are held at."""
    timesteps = ddim_timesteps(settings.steps, settings.spacing, schedule.num_train_timesteps, settings.shift)
    sampler = DDIMSampler(schedule, timesteps, settings.eta, settings.final_alpha_one)
    return sampler, history_level(timesteps, settings.history_level)


class RolloutSession:
    """Created by `WorldModel.session(...)`; see there for the arguments. Every call runs the model in eval mode
    (`eval_mode`), whatever mode it is in between calls."""

    def __init__(self, model: SessionModel, settings: SamplerConfig, latents: Tensor, frame_actions: Tensor | None, *, seed: int,
                 context: Tensor | None = None, as_numpy: bool = False, own_context: bool = False) -> None:
        self.model, self.settings, self.seed, self.as_numpy = model, settings, int(seed), as_numpy
        self.own_context = own_context  # the context came from the anchor frame: re-derive it when the anchor moves
        self.sampler, self.history_level = self._sampler(settings)
        self.clean_history = settings.history_level == "clean"  # history frames enter un-noised
        self.window, self.has_actions = model.window, frame_actions is not None
        self.device, self.dtype = latents.device, latents.dtype
        self.frame_shape = (latents.shape[1], *latents.shape[3:])  # (C, h, w)
        self.frame_size = check_frame_size(model, latents)  # (H, W) of the frames it makes
        self.action_groups = action_groups(model) if frame_actions is not None else []
        b = latents.shape[0]
        self.generators = row_generators(seed, b, self.device)
        # window_first: the anchor moves with the window (anchor.py); the frames in view are kept to re-process them.
        # Only where the anchor conditions anything (a concat latent, or context derived from the anchor frame): a
        # pixel-space model without either would pay one history pass per frame for identical results.
        anchored = model.concat_first_frame or own_context
        self.reanchor = settings.image_cond == "window_first" and self.window > 1 and anchored
        self.history = WindowHistory(b if self.reanchor else 0, self.window - 1)
        conditioning = conditioning_of(model, latents[:, :, self._anchor_index(latents.shape[2]):], context)
        backbone = model.sampling_backbone(settings.precision)
        if settings.cache:
            self.evaluator: Any = CachedEvaluator(backbone, backbone.new_cache(b, self.window), conditioning,
                                                  self.history_level)
        else:
            self.evaluator = RecomputeEvaluator(backbone, conditioning, self.history_level, settings.guidance.cfg_scale,
                                                self.window - 1)
        self._frames = latents.shape[2]
        with eval_mode(model), torch.no_grad(), self._backbone_precision():
            self._start(latents, frame_actions, None)
        # a codec that compresses time decodes a latent frame with the state of the ones before it: one stream,
        # primed with the context, so each new latent frame is decoded once
        self.decoder = model.codec.decode_stream() if model.frames_per_step > 1 else None
        if self.decoder is not None:
            self.decode(latents)

    @property
    def frames(self) -> int:
        """Frames so far, context included (of the rows never reset)."""
        return self._frames

    def nbytes(self) -> int:
        """Bytes the session holds for its history (cache slots or kept latents): fixed once the window is full."""
        return self.evaluator.nbytes() + self.history.nbytes()

    def _sampler(self, settings: SamplerConfig) -> tuple[DDIMSampler, int]:
        return make_sampler(self.model.schedule, settings)

    def set_sampling(self, steps: int | None = None, guidance: float | None = None) -> None:
        """Change the DDIM steps or the guidance scale from the next frame on (a player's sliders). The frames in
        the cache stay valid when the history level does not change with the steps (history level "clean", the
        bundled models'); otherwise this is a ValueError: start a new session from the last frames instead."""
        changes: dict[str, Any] = {} if steps is None else {"steps": int(steps)}
        if guidance is not None:
            changes["guidance"] = replace(self.settings.guidance, scale=float(guidance))
        settings = replace(self.settings, **changes)  # validates
        sampler, level = self._sampler(settings)
        if level != self.history_level:
            raise ValueError(f"steps: {steps} steps put history frames at level {level}, this session's are at "
                             f"{self.history_level}; start a new session from the last frames")
        self.settings, self.sampler = settings, sampler
        if isinstance(self.evaluator, RecomputeEvaluator):
            self.evaluator.guidance_scale = settings.guidance.cfg_scale

    def _backbone_precision(self):
        """bf16 autocast around the backbone's calls when the settings ask for it (encoding and decoding stay float32)."""
        return autocast(self.settings.precision, self.device)

    def _anchor_index(self, frames: int) -> int:
        return first_in_view(frames, self.window, self.settings.image_cond)

    def _noise(self, frames: int, rows: list[int] | None = None) -> Tensor:
        """Standard normal [rows, C, frames, h, w], each row from its own generator, drawn on the model's device."""
        c, h, w = self.frame_shape
        rows = range(len(self.generators)) if rows is None else rows
        return torch.stack([torch.randn((c, frames, h, w), generator=self.generators[r], device=self.device,
                                        dtype=self.dtype) for r in rows])

    def _to_history(self, clean: Tensor, rows: list[int] | None = None) -> Tensor:
        """Noise frames [B, C, n, H, W] once at the history level (no noise for level 'clean')."""
        if self.clean_history:
            return clean
        levels = torch.full((clean.shape[0], clean.shape[2]), self.history_level, device=self.device)
        return self.model.schedule.add_noise(clean, levels, self._noise(clean.shape[2], rows))

    def _start(self, latents: Tensor, frame_actions: Tensor | None, rows: list[int] | None) -> None:
        """Context frames of `rows` (None: all): the last `window - 1` (what a window can see) become history."""
        n = latents.shape[2]
        noisy = self._to_history(latents, rows)  # every context frame draws its noise, seen or not: same RNG either way
        keep = min(n, self.window - 1)
        if keep:
            seen = None if frame_actions is None else frame_actions[:, n - keep:]
            if self.reanchor:
                self.history.add(latents[:, :, n - keep:], noisy[:, :, n - keep:], seen, rows)
            self.evaluator.commit(noisy[:, :, n - keep:], seen, rows)

    @torch.no_grad()
    def step_latent(self, action: Tensor | None, noise: Tensor | None = None) -> Tensor:
        """Generate the next frame's latent [B, C, 1, H, W] following `action` (a_{t-1}, raw, [B, A]), from
        `noise` [B, C, 1, H, W] (default: drawn from each row's generator; distillation gives the student's)."""
        if not self.settings.slide and self._frames >= self.window:
            raise ValueError(f"step: the session holds {self._frames} frames, a full window of {self.window}, and "
                             "sliding is off (SamplerConfig.slide=False); enable sliding or start a new session")
        with eval_mode(self.model), self._backbone_precision():
            return self._denoise_next(action if self.has_actions else None, noise)

    def _denoise_next(self, action: Tensor | None, noise: Tensor | None) -> Tensor:
        guidance = self.settings.guidance
        self.evaluator.begin_frame(action, guidance.active and action is not None)
        c, h, w = self.frame_shape
        if noise is not None and tuple(noise.shape) != (len(self.generators), c, 1, h, w):
            raise ValueError(f"noise: expected shape {(len(self.generators), c, 1, h, w)}, got {tuple(noise.shape)}")
        x = self._noise(1) if noise is None else noise.to(self.device, self.dtype)
        for level, next_level in self.sampler.transitions():
            out = self.evaluator(x, level)
            v = out.v_cond if out.v_uncond is None else \
                guidance.apply(out.v_cond, out.v_uncond, out.history, out.history_guided)
            x = self.sampler.step(x, v, level, next_level, self._noise(1) if self.sampler.needs_noise else None)
        self._frames += 1
        self._commit(x, None if action is None else action[:, None])
        return x

    def _commit(self, x: Tensor, frame_actions: Tensor | None) -> None:
        """Make the finished frame history: noised once and committed, and with `window_first`, the history in view
        re-processed under the new anchor for the rows whose window moved."""
        noisy = self._to_history(x)
        moved = self.history.add(x, noisy, frame_actions) if self.reanchor else []
        if not moved:
            self.evaluator.commit(noisy, frame_actions)
            return
        others = [r for r in range(len(self.generators)) if r not in moved]
        if others:  # rows restarted more recently than the others: their window has not moved yet
            self.evaluator.commit(noisy[others], None if frame_actions is None else frame_actions[others], others)
        anchor = self.history.first(moved)
        context = None
        if self.own_context:
            weights = next(self.model.codec.parameters(), None)  # the codec decodes in its own dtype
            pixels = self.model.codec.decode(anchor if weights is None else anchor.to(weights.dtype))
            context = self.model.conditioner(pixels[:, :, 0]).to(anchor.dtype)
        history, history_actions = self.history.in_view(moved)
        self.evaluator.reanchor(moved, conditioning_of(self.model, anchor, context), history, history_actions)

    def step(self, action: Any = None) -> Any:
        """The next frame [B, H, W, 3] uint8 after `action` ([B, A] raw action taken after the last frame); for a
        codec that compresses time by k, the next k frames [B, k, H, W, 3] after k actions [B, k, A]."""
        a = self.model.check_step_action(action, len(self.generators))
        if a is not None:
            check_action_values(self.action_groups, a)
        frames = tensor_to_frames(self.decode(self.step_latent(a)), self.as_numpy)
        return frames[:, 0] if self.decoder is None else frames

    def decode(self, latents: Tensor) -> Tensor:
        """Pixels [B, 3, n, H, W] of the newest latent frames: the codec's decoding, or its stream's (every latent
        frame given once, in order) when it compresses time."""
        with eval_mode(self.model), torch.no_grad():
            if self.decoder is None:
                return self.model.codec.decode(latents)
            weights = next(self.model.codec.parameters(), None)  # the stream runs in the codec's dtype
            return self.decoder.decode(latents if weights is None else latents.to(weights.dtype))

    def reset(self, rows: Any, context_frames: Any, context_actions: Any = None, seed: int | None = None) -> None:
        """Restart batch `rows` from `context_frames` [len(rows), T0, H, W, 3] uint8 (and the actions between them),
        as a fresh session of those frames and `seed` (default: the session's) would start; other rows go on."""
        batch = len(self.generators)
        if self.decoder is not None:
            raise ValueError("reset: a session whose codec compresses time decodes all rows in one stream and "
                             "cannot restart some of them; start a new session")
        rows = [rows] if isinstance(rows, int) else list(rows)
        if not rows or len(set(rows)) != len(rows) or not all(isinstance(r, int) and 0 <= r < batch for r in rows):
            raise ValueError(f"rows: expected distinct row indices in 0..{batch - 1}, got {rows!r}")
        with eval_mode(self.model), torch.no_grad():
            pixels = frames_to_tensor(context_frames, "context_frames", "cpu")[0]
            if tuple(pixels.shape[3:]) != self.frame_size:
                h, w = self.frame_size
                raise ValueError(f"context_frames: expected frames of {h}x{w} like the session's, got "
                                 f"{pixels.shape[3]}x{pixels.shape[4]}")
            anchor = self._anchor_index(pixels.shape[2])
            latents, frame_actions, context = self.model.encode_context(context_frames, context_actions,
                                                                        self.seed if seed is None else seed,
                                                                        anchor=anchor)
            if latents.shape[0] != len(rows) or (latents.shape[1], *latents.shape[3:]) != self.frame_shape:
                raise ValueError(f"context_frames: expected {len(rows)} rows of frames like the session's, got "
                                 f"latents {tuple(latents.shape)}")
            self.evaluator.restart(rows)
            self.history.restart(rows if self.reanchor else [])
            for r, generator in zip(rows, row_generators(self.seed if seed is None else seed, len(rows), self.device)):
                self.generators[r] = generator
            self.evaluator.condition_rows(rows, conditioning_of(self.model, latents[:, :, anchor:], context))
            with self._backbone_precision():
                self._start(latents, frame_actions, rows)
