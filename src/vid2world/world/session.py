"""`RolloutSession`: a world model stepped one frame at a time.

Start from context frames (and the actions between them); each `step(action)` returns the next frame. History
frames are noised once, at the history level, when they become history (the official rule), and either committed to
a cache (`CachedEvaluator`) or kept for recomputation (`RecomputeEvaluator`).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import Tensor, nn

from ..diffusion.guidance import GuidanceConfig, Moments
from ..diffusion.sampler import DDIMSampler
from ..models.stream import StreamState
from .evaluate import CachedEvaluator, History, RecomputeEvaluator, Request
from .frames import tensor_to_frames


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """Run `module` in eval mode (dropout off), then give every submodule back its own mode.

    Rollouts must not depend on the mode a caller left the model in (a training loop, `causalize`'s result), and
    must not change it either: each submodule's flag is restored, not the root's alone (a trainer keeps the frozen
    codec in eval mode while the UNet trains)."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


class RolloutSession:
    """Created by `WorldModel.session(...)`; see there for the arguments. Every call runs the model in eval mode
    (`eval_mode`), whatever mode it is in between calls."""

    def __init__(self, model: Any, latents: Tensor, frame_actions: Tensor | None, *, timesteps: Tensor,
                 history_level: int, guidance: GuidanceConfig, eta: float, window: int | None, cache: bool,
                 generator: torch.Generator, as_numpy: bool, concat: Tensor | None, context: Tensor | None,
                 batched: bool = True, approximate_clip: bool = False) -> None:
        self.model = model
        self.unet = model.unet
        self.sampler = DDIMSampler(model.schedule, timesteps, eta, model.sampler.final_alpha_one)
        self.history_level = history_level
        self.guidance = guidance
        self.window = window
        self.generator = generator
        self.as_numpy = as_numpy
        self.concat = concat  # [B, Cc, 1, H, W] or None
        self.context = context
        self.device = latents.device
        self.history = History()
        self.latents: list[Tensor] = []  # clean latents of every frame so far, [B, C, 1, H, W]
        self.has_actions = frame_actions is not None
        self.clean_history = model.sampler.history_level == "clean"  # history frames enter un-noised
        self.evaluator = CachedEvaluator(self.unet, StreamState(window, approximate_clip), batched) if cache else \
            RecomputeEvaluator(self.unet, batched)
        with eval_mode(model), torch.no_grad():
            self._start(latents, frame_actions)

    @property
    def frames(self) -> int:
        """Frames so far, context included."""
        return len(self.latents)

    def _noise(self, like: Tensor) -> Tensor:
        return torch.randn(like.shape, generator=self.generator, dtype=like.dtype).to(self.device)

    def _to_history(self, clean: Tensor) -> Tensor:
        """Noise frames [B, C, n, H, W] once at the history level (no noise for level 'clean')."""
        if self.clean_history:
            return clean
        levels = torch.full((clean.shape[0], clean.shape[2]), self.history_level, device=self.device)
        return self.model.schedule.add_noise(clean, levels, self._noise(clean))

    def _start(self, latents: Tensor, frame_actions: Tensor | None) -> None:
        """Context frames: all kept as output; the last `window - 1` (what a window can see) become history."""
        n = latents.shape[2]
        self.latents.extend(latents[:, :, j:j + 1] for j in range(n))
        noisy = self._to_history(latents)  # every context frame draws its noise, seen or not: same RNG either way
        keep = n if self.window is None else min(n, max(self.window - 1, 0))
        if keep:
            self._append_history(noisy[:, :, n - keep:], None if frame_actions is None else frame_actions[:, n - keep:])

    def _append_history(self, noisy: Tensor, frame_actions: Tensor | None) -> None:
        n = noisy.shape[2]
        for j in range(n):
            self.history.noisy.append(noisy[:, :, j:j + 1])
            if frame_actions is not None:
                self.history.frame_actions.append(frame_actions[:, j])
        if isinstance(self.evaluator, CachedEvaluator):
            concat = None if self.concat is None else self.concat.expand(-1, -1, n, -1, -1)
            out = self.evaluator.commit(noisy, self.history_level, frame_actions, concat, self.context,
                                        self.model.fps)
            self.history.moments.extend(Moments.of(out[:, :, j:j + 1]) for j in range(n))
        limit = None if self.window is None else max(self.window - 1, 0)
        if limit is not None:  # only what a window can still see
            for seq in (self.history.noisy, self.history.frame_actions, self.history.moments):
                del seq[: max(0, len(seq) - limit)]

    @torch.no_grad()
    def step_latent(self, action: Tensor | None) -> Tensor:
        """Generate the next frame's latent [B, C, 1, H, W] following `action` (a_{t-1}, raw, [B, A])."""
        with eval_mode(self.model):
            return self._denoise_next(action)

    def _denoise_next(self, action: Tensor | None) -> Tensor:
        frame_action = action if self.has_actions else None
        guided = self.guidance.active and self.has_actions
        self.evaluator.begin_frame(guided, self.history)
        x = self._noise(self.latents[0])
        for level, next_level in self.sampler.transitions():
            req = Request(x, level, self.history_level, frame_action, self.concat, self.context, self.model.fps,
                          guided, self.guidance.cfg_scale)
            out = self.evaluator(req, self.history)
            v = out.v_cond if out.v_uncond is None else \
                self.guidance.apply(out.v_cond, out.v_uncond, out.history, out.history_guided)
            x = self.sampler.step(x, v, level, next_level, self._noise(x) if self.sampler.needs_noise else None)
        self.latents.append(x)
        self._append_history(self._to_history(x), None if frame_action is None else frame_action[:, None])
        return x

    def step(self, action: Any = None) -> Any:
        """The next frame [B, H, W, 3] uint8 after `action` ([B, A] raw action taken after the last frame)."""
        a = self.model.check_step_action(action, self.latents[0].shape[0])
        latent = self.step_latent(a)
        with eval_mode(self.model), torch.no_grad():
            pixels = self.model.codec.decode(latent)
        return tensor_to_frames(pixels, self.as_numpy)[:, 0]
