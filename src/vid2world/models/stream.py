"""`StreamState`: what a causal UNet remembers of the frames it has already processed.

A causal UNet mixes frames in three kinds of layer only, so frame t can be computed from frame t's input plus:
- each temporal attention's keys and values of the earlier frames (a KV cache),
- each causal temporal conv's last k-1 input frames,
- each `causal`-mode temporal GroupNorm's per-frame moments (mean, M2, count) of the earlier frames.
Everything else in the UNet works frame by frame. Calls read the state; a call with `commit=True` also appends
its frames. With `window` set, attention and norm keep only the last `window - 1` committed frames, so a call
sees at most `window` frames (a rolling window: constant cost per frame however long the rollout).

Exact only for strictly causal models (`temporal_norm` frame or causal): a `clip`-norm model has no causal state.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn


def _map(tree: Any, fn: Callable[[Tensor], Tensor]) -> Any:
    if isinstance(tree, Tensor):
        return fn(tree)
    if isinstance(tree, (list, tuple)):
        return type(tree)(_map(t, fn) for t in tree)
    return tree


class StreamState:
    """Per-layer temporal state of a causal UNet over a growing sequence of frames (see module doc)."""

    def __init__(self, window: int | None = None, approximate_clip: bool = False) -> None:
        if window is not None and window < 1:
            raise ValueError(f"window must be >= 1 frames, got {window}")
        self.window = window
        # Measurement only: let clip-norm layers normalise over the frames of each call (what a naive cache does)
        # instead of refusing; the result is not the model's output. See docs/rollouts.md.
        self.approximate_clip = approximate_clip
        self.frames = 0  # frames committed so far
        self.commit = False  # set by the caller: does this call append its frames?
        self.batch_repeat = 1  # calls on this view carry the state's batch this many times over
        self._layers: dict[int, Any] = {}

    @property
    def keep(self) -> int | None:
        """How many committed frames a layer keeps (None: all)."""
        return None if self.window is None else self.window - 1

    def get(self, layer: nn.Module) -> Any:
        return self._layers.get(id(layer))

    def put(self, layer: nn.Module, value: Any) -> None:
        if not self.commit or self.batch_repeat != 1:
            raise RuntimeError("StreamState.put outside a committing call on the state itself")
        self._layers[id(layer)] = value

    def frames_in_view(self, new: int) -> int:
        seen = self.frames + new
        return seen if self.window is None else min(seen, self.window)

    def repeat_batch(self, times: int) -> "StreamState":
        """A read-only view for calls whose batch is this state's batch repeated `times` (conditional and
        unconditional passes in one call). The state is shared, not copied: layers expand it as they read."""
        view = StreamState(self.window, self.approximate_clip)
        view.frames = self.frames
        view.batch_repeat = self.batch_repeat * times
        view._layers = self._layers
        return view

    def read(self, layer: nn.Module) -> Any:
        """The layer's state with its batch repeated for this view (attention broadcasts instead: `get`)."""
        state = self.get(layer)
        if state is None or self.batch_repeat == 1:
            return state
        return _map(state, lambda t: torch.cat([t] * self.batch_repeat, dim=0))

    def nbytes(self) -> int:
        total = 0

        def count(t: Tensor) -> Tensor:
            nonlocal total
            total += t.numel() * t.element_size()
            return t

        for v in self._layers.values():
            _map(v, count)
        return total
