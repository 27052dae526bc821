"""How the newest frame's model output is computed while it is denoised: two interchangeable evaluators.

- `CachedEvaluator`: the UNet runs on the newest frame only, reading the `StreamState` of the committed history
  (KV cache, conv and norm state). Cost per step does not grow with the history. Strictly causal models only.
- `RecomputeEvaluator`: the UNet runs on the whole window (noised history + newest frame) at every step, as the
  official code does. Works for every model, `clip` norm included.

Both return the newest frame's conditional and unconditional outputs and the history moments guidance rescale needs;
conditional and unconditional passes share one batched call (or two calls, `batched=False`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..diffusion.guidance import Moments, combine, unconditional_mask
from ..models.stream import StreamState
from ..models.unet import VideoUNet


@dataclass
class History:
    """The frames before the newest one, as the model sees them (noised once at the history level)."""

    noisy: list[Tensor] = field(default_factory=list)  # [B, C, 1, H, W] each
    frame_actions: list[Tensor] = field(default_factory=list)  # [B, A] per frame (a_{t-1}), or empty
    moments: list[Moments] = field(default_factory=list)  # conditional output moments per frame (cached path)


@dataclass
class Outputs:
    v_cond: Tensor  # [B, C, 1, H, W]
    v_uncond: Tensor | None  # None when guidance is off
    history: Moments | None = None  # moments of the history frames' conditional outputs
    history_guided: Moments | None = None  # ... and of their guided outputs (recompute path)


@dataclass
class Request:
    """One evaluation of the newest frame."""

    x: Tensor  # [B, C, 1, H, W] the newest frame at `level`
    level: int
    history_level: int
    frame_action: Tensor | None  # [B, A] the action the newest frame follows
    concat: Tensor | None  # [B, Cc, 1, H, W] channel-concatenated conditioning, or None
    context: Tensor | None
    fs: int | None
    guided: bool
    guidance_scale: float


def _masks(batch: int, frames: int, guided: bool, device) -> Tensor:
    """Conditional mask (all ones) and, when guided, the unconditional one (newest frame dropped), stacked on B."""
    cond = torch.ones(batch, frames, device=device)
    return torch.cat([cond, unconditional_mask(cond)]) if guided else cond


def _only_with(actions: Tensor | None, mask: Tensor) -> Tensor | None:
    """An action mask means something only beside actions (a model without actions takes neither)."""
    return None if actions is None else mask


class CachedEvaluator:
    """UNet on the newest frame only; the history lives in a `StreamState` (see module doc)."""

    def __init__(self, unet: VideoUNet, stream: StreamState, batched: bool = True) -> None:
        self.unet, self.stream, self.batched = unet, stream, batched
        self._view: StreamState | None = None
        self._history_moments: Moments | None = None

    def begin_frame(self, guided: bool, history: History) -> None:
        """Called once per new frame: the read-only (batch-doubled when guided and batched) view of the cache, and
        the output moments of the history frames in view (fixed while the frame is denoised)."""
        self._view = self.stream.repeat_batch(2) if guided and self.batched else self.stream
        seen = history.moments  # the session keeps only what the window sees
        self._history_moments = sum(seen[1:], seen[0]) if seen else None

    def __call__(self, req: Request, history: History) -> Outputs:
        b = req.x.shape[0]
        window_moments = self._history_moments
        action = None if req.frame_action is None else req.frame_action[:, None]
        x = req.x if req.concat is None else torch.cat([req.x, req.concat], dim=1)
        levels = torch.full((b, 1), req.level, device=req.x.device, dtype=torch.long)
        if req.guided and self.batched:
            out = self.unet.denoise(_twice(x), _twice(levels), _twice(req.context), req.fs,
                                    _twice(action), _masks(b, 1, True, x.device), stream=self._view)
            return Outputs(out[:b], out[b:], window_moments)
        v_cond = self.unet.denoise(x, levels, req.context, req.fs, action,
                                   _only_with(action, _masks(b, 1, False, x.device)), stream=self._view)
        v_uncond = None
        if req.guided:
            v_uncond = self.unet.denoise(x, levels, req.context, req.fs, action, torch.zeros(b, 1, device=x.device),
                                         stream=self._view)
        return Outputs(v_cond, v_uncond, window_moments)

    def commit(self, noisy: Tensor, level: int, frame_actions: Tensor | None, concat: Tensor | None,
               context: Tensor | None, fs: int | None) -> Tensor:
        """Append frames [B, C, n, H, W] (noised at the history level) to the cache; returns their outputs."""
        b, n = noisy.shape[0], noisy.shape[2]
        x = noisy if concat is None else torch.cat([noisy, concat], dim=1)
        levels = torch.full((b, n), level, device=noisy.device, dtype=torch.long)
        self.stream.commit = True
        try:
            return self.unet.denoise(x, levels, context, fs, frame_actions,
                                     _only_with(frame_actions, torch.ones(b, n, device=noisy.device)),
                                     stream=self.stream)
        finally:
            self.stream.commit = False


class RecomputeEvaluator:
    """UNet on the whole window at every step (the official algorithm)."""

    def __init__(self, unet: VideoUNet, batched: bool = True) -> None:
        self.unet, self.batched = unet, batched

    def begin_frame(self, guided: bool, history: History) -> None:
        pass

    def __call__(self, req: Request, history: History) -> Outputs:
        x = torch.cat(history.noisy + [req.x], dim=2)  # the session keeps only what the window sees
        b, t = x.shape[0], x.shape[2]
        if req.concat is not None:
            x = torch.cat([x, req.concat.expand(-1, -1, t, -1, -1)], dim=1)
        levels = torch.full((b, t), req.history_level, device=x.device, dtype=torch.long)
        levels[:, -1] = req.level
        actions = None
        if req.frame_action is not None:
            actions = torch.stack(history.frame_actions + [req.frame_action], 1)
        if req.guided and self.batched:
            out = self.unet.denoise(_twice(x), _twice(levels), _twice(req.context), req.fs,
                                    _twice(actions), _masks(b, t, True, x.device))
            v_cond, v_uncond = out[:b], out[b:]
        else:
            mask = torch.ones(b, t, device=x.device)
            v_cond = self.unet.denoise(x, levels, req.context, req.fs, actions, _only_with(actions, mask))
            v_uncond = self.unet.denoise(x, levels, req.context, req.fs, actions,
                                         unconditional_mask(mask)) if req.guided else None
        if t == 1:
            return Outputs(v_cond, v_uncond)
        hist_guided = None
        if v_uncond is not None:
            hist_guided = Moments.of(combine(v_cond[:, :, :-1], v_uncond[:, :, :-1], req.guidance_scale))
        return Outputs(v_cond[:, :, -1:], None if v_uncond is None else v_uncond[:, :, -1:],
                       Moments.of(v_cond[:, :, :-1]), hist_guided)


def _twice(t: Tensor | None) -> Tensor | None:
    return None if t is None else torch.cat([t, t])
