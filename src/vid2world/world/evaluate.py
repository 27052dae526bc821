"""How the newest frame's model output is computed while it is denoised: two interchangeable evaluators.

- `CachedEvaluator`: the backbone runs on the newest frame only, reading the `StreamCache` of the committed history
  (KV cache, conv and norm state). Cost per step does not grow with the history. Strictly causal models only.
- `RecomputeEvaluator`: the backbone runs on the whole window (noised history + newest frame) at every step, as the
  official code does. Works for every model, `clip` norm included.

Both hold the history a window can see (nothing more) and return the newest frame's conditional and unconditional
outputs and the history moments guidance rescale needs; conditional and unconditional passes share one batched call
(or two calls, `batched=False`). What stays fixed while one frame is denoised is set once by `begin_frame`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..diffusion.guidance import Moments, combine, unconditional_mask
from ..models.stream import StreamCache
from ..models.backbone import Backbone
from .denoise import Conditioning, denoise


@dataclass
class Outputs:
    v_cond: Tensor  # [B, C, 1, H, W]
    v_uncond: Tensor | None  # None when guidance is off
    history: Moments | None = None  # moments of the history frames' conditional outputs
    history_guided: Moments | None = None  # ... and of their guided outputs (recompute path)


def _twice(t: Tensor | None) -> Tensor | None:
    return None if t is None else torch.cat([t, t])


def _passes(actions: Tensor | None, frames: int, guided: bool, batched: bool) -> list[tuple[Tensor | None, ...]]:
    """(actions, mask) of each UNet call for one evaluation: the conditional pass (all actions kept) and, when
    guided, the unconditional one (the newest action dropped), in one doubled call or two."""
    if actions is None:
        return [(None, None)]
    keep = torch.ones(actions.shape[0], frames, device=actions.device)
    if not guided:
        return [(actions, None)]
    if batched:
        return [(_twice(actions), torch.cat([keep, unconditional_mask(keep)]))]
    return [(actions, None), (actions, unconditional_mask(keep))]


class CachedEvaluator:
    """The backbone on the newest frame only; the history lives in a `StreamCache` (see module doc)."""

    def __init__(self, backbone: Backbone, cache: StreamCache, conditioning: Conditioning, history_level: int,
                 batched: bool = True) -> None:
        self.backbone, self.cache, self.conditioning, self.batched = backbone, cache, conditioning, batched
        self.history_level = history_level
        self._doubled = conditioning.repeat(2)  # built once: the conditioning of guided, batched calls
        # sums and squares of each committed frame's conditional output, in the cache's ring order (float64)
        self.moments = torch.zeros(2, len(cache.fill), max(cache.capacity, 1), dtype=torch.float64,
                                   device=next(backbone.parameters()).device)
        self.values_per_frame = 0

    def begin_frame(self, action: Tensor | None, guided: bool) -> None:
        """Called once per new frame: the passes it needs and the history moments in view (fixed meanwhile)."""
        self._guided = guided
        self._passes = _passes(None if action is None else action[:, None], 1, guided, self.batched)
        self._history = self._history_moments()

    def __call__(self, x: Tensor, level: int) -> Outputs:
        b = x.shape[0]
        outs = []
        for actions, mask in self._passes:
            repeat = actions.shape[0] // b if actions is not None else 1
            cond = self._doubled if repeat == 2 else self.conditioning
            x_in = x if repeat == 1 else _twice(x)
            levels = torch.full((x_in.shape[0], 1), level, device=x.device, dtype=torch.long)
            outs.append(denoise(self.backbone, x_in, levels, cond, actions, mask, self.cache.view(repeat=repeat)))
        out = torch.cat(outs).to(x.dtype)  # a bf16 autocast UNet's output: guidance and the sampler stay in x's
        return Outputs(out[:b], out[b:] if self._guided else None, self._history)

    def commit(self, noisy: Tensor, frame_actions: Tensor | None, rows: list[int] | None = None) -> None:
        """Append frames [B, C, n, H, W] (noised at the history level) of `rows` (None: all) to the cache."""
        view = self.cache.view(rows)
        fills, index = view.fills(), view.row_list()
        b, n = noisy.shape[0], noisy.shape[2]
        levels = torch.full((b, n), self.history_level, device=noisy.device, dtype=torch.long)
        cond = self.conditioning if rows is None else self.conditioning.rows(rows)
        out = denoise(self.backbone, noisy, levels, cond, frame_actions, None, view, commit=True)
        capacity = self.cache.capacity
        for j in range(max(0, n - capacity), n):
            frame = Moments.of(out[:, :, j:j + 1])
            self.values_per_frame = frame.count
            positions = [(f + j) % capacity for f in fills]
            self.moments[0, index, positions] = frame.total
            self.moments[1, index, positions] = frame.squares

    def _history_moments(self) -> Moments | None:
        """The moments of every row's committed frames in view (a row restarted with fewer frames counts fewer)."""
        capacity = self.cache.capacity
        filled = [min(f, capacity) for f in self.cache.fill]
        if capacity == 0 or not any(filled):
            return None
        rows = torch.tensor(filled, dtype=torch.float64, device=self.moments.device)[:, None]
        valid = torch.arange(capacity, device=rows.device)[None] < rows
        total, squares = ((m[:, :capacity] * valid).sum(dim=1) for m in self.moments)
        return Moments(rows[:, 0] * self.values_per_frame, total, squares)

    def restart(self, rows: list[int]) -> None:
        self.cache.restart(rows)
        self.moments[:, rows] = 0

    def condition_rows(self, rows: list[int], conditioning: Conditioning) -> None:
        """New conditioning for restarted `rows` (their own first frame and context)."""
        self.conditioning = self.conditioning.with_rows(rows, conditioning)
        self._doubled = self.conditioning.repeat(2)

    def reanchor(self, rows: list[int], conditioning: Conditioning, history: Tensor,
                 frame_actions: Tensor | None) -> None:
        """`rows`' window moved to a new anchor (`window_first`): their history [R, C, n, H, W] (noised, the
        newest frame included) is committed again, from an empty cache, under the anchor's `conditioning`."""
        self.restart(rows)
        self.condition_rows(rows, conditioning)
        self.commit(history, frame_actions, rows)

    def nbytes(self) -> int:
        return self.cache.nbytes() + self.moments.numel() * self.moments.element_size()


class RecomputeEvaluator:
    """The backbone on the whole window at every step (the official algorithm)."""

    def __init__(self, backbone: Backbone, conditioning: Conditioning, history_level: int, guidance_scale: float,
                 capacity: int, batched: bool = True) -> None:
        self.backbone, self.conditioning, self.batched = backbone, conditioning, batched
        self.history_level, self.guidance_scale, self.capacity = history_level, guidance_scale, capacity
        self._doubled = conditioning.repeat(2)
        self.noisy: list[Tensor] = []  # the last `capacity` history frames, [B, C, 1, H, W] each
        self.frame_actions: list[Tensor] = []  # [B, A] per history frame (a_{t-1}), or empty

    def begin_frame(self, action: Tensor | None, guided: bool) -> None:
        self._guided = guided
        actions = None if action is None else torch.stack(self.frame_actions + [action], 1)
        self._passes = _passes(actions, len(self.noisy) + 1, guided, self.batched)

    def __call__(self, x: Tensor, level: int) -> Outputs:
        x = torch.cat(self.noisy + [x], dim=2)
        b, t = x.shape[0], x.shape[2]
        outs = []
        for actions, mask in self._passes:
            doubled = actions is not None and actions.shape[0] == 2 * b
            x_in = _twice(x) if doubled else x
            levels = torch.full((x_in.shape[0], t), self.history_level, device=x.device, dtype=torch.long)
            levels[:, -1] = level
            outs.append(denoise(self.backbone, x_in, levels, self._doubled if doubled else self.conditioning, actions,
                                mask))
        out = torch.cat(outs).to(x.dtype)
        v_cond, v_uncond = out[:b], (out[b:] if self._guided else None)
        if t == 1:
            return Outputs(v_cond, v_uncond)
        hist_guided = None
        if v_uncond is not None:
            hist_guided = Moments.of(combine(v_cond[:, :, :-1], v_uncond[:, :, :-1], self.guidance_scale))
        return Outputs(v_cond[:, :, -1:], None if v_uncond is None else v_uncond[:, :, -1:],
                       Moments.of(v_cond[:, :, :-1]), hist_guided)

    def commit(self, noisy: Tensor, frame_actions: Tensor | None, rows: list[int] | None = None) -> None:
        if rows is not None:
            raise ValueError("reset: a session that recomputes the window (cache=False) keeps one history for all "
                             "rows and cannot restart some of them; use cache=True or start a new session")
        for j in range(noisy.shape[2]):
            self.noisy.append(noisy[:, :, j:j + 1])
            if frame_actions is not None:
                self.frame_actions.append(frame_actions[:, j])
        for seq in (self.noisy, self.frame_actions):  # only what a window can still see
            del seq[: max(0, len(seq) - self.capacity)]

    def restart(self, rows: list[int]) -> None:
        self.commit(torch.empty(0, 0, 0), None, rows)

    def reanchor(self, rows: list[int], conditioning: Conditioning, history: Tensor,
                 frame_actions: Tensor | None) -> None:
        """The window moved to a new anchor (`window_first`): the next evaluations see `history` [B, C, n, H, W]
        (noised, the newest frame included) under the anchor's `conditioning`; `rows` are all rows."""
        self.conditioning = self.conditioning.with_rows(rows, conditioning)
        self._doubled = self.conditioning.repeat(2)
        self.noisy = [history[:, :, j:j + 1] for j in range(history.shape[2])]
        self.frame_actions = [] if frame_actions is None else [frame_actions[:, j] for j in range(history.shape[2])]

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.noisy + self.frame_actions)
