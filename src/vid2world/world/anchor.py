"""Which frame conditions a window: the image condition of sliding rollouts (method.md 7.3, `window.image_cond`).

A world model conditions every frame on one "anchor" frame: its latent is channel-concatenated to every input
(`Conditioning.concat`) and, for models with an image conditioner, its CLIP tokens are the cross-attention context.
- `episode_first`: the anchor is the first context frame for the whole rollout.
- `window_first` (the release, the default): the anchor is the first frame of the current window, so once a
  rollout is longer than the window the anchor moves with it, one frame per step.

The history features of a window depend on its anchor (the concat enters every frame), so when the anchor moves
the history in view is processed again under the new one: `WindowHistory` keeps, per batch row, the frames in
view (clean latents for the anchor, history-noised latents and their actions for re-processing). The cached
evaluator re-commits those `window - 1` frames once per new frame (one pass over the history instead of one per
denoising step), which makes it equal to recomputing the window at every step (test).
"""

from __future__ import annotations

import torch
from torch import Tensor

IMAGE_CONDS = ("window_first", "episode_first")


def first_in_view(frames: int, window: int, image_cond: str) -> int:
    """Index of the anchor among `frames` context frames: the first of the last `window - 1` (what a window can
    see beside the new frame) for `window_first`, 0 for `episode_first`."""
    if image_cond == "episode_first" or window < 2:
        return 0
    return max(0, frames - (window - 1))


class WindowHistory:
    """Per batch row, the last `capacity` frames: clean latent, history-noised latent and the action it follows,
    each [C, 1, h, w] / [A]. Holds nothing else, so its size is fixed once the window is full."""

    def __init__(self, rows: int, capacity: int) -> None:
        self.capacity = capacity
        self.rows: list[list[tuple[Tensor, Tensor, Tensor | None]]] = [[] for _ in range(rows)]

    def restart(self, rows: list[int]) -> None:
        for r in rows:
            self.rows[r] = []

    def add(self, clean: Tensor, noisy: Tensor, frame_actions: Tensor | None,
            rows: list[int] | None = None) -> list[int]:
        """Append frames [R, C, n, h, w] (actions [R, n, A]) to `rows` (None: all); returns the rows whose first
        frame in view changed because older frames fell out of the window."""
        rows = list(range(len(self.rows))) if rows is None else rows
        moved = []
        for i, r in enumerate(rows):
            kept = self.rows[r]
            had_first = kept[0][0] if kept else None
            for j in range(clean.shape[2]):
                kept.append((clean[i, :, j:j + 1], noisy[i, :, j:j + 1],
                             None if frame_actions is None else frame_actions[i, j]))
            del kept[: max(0, len(kept) - self.capacity)]
            if had_first is not None and kept[0][0] is not had_first:
                moved.append(r)
        return moved

    def first(self, rows: list[int]) -> Tensor:
        """The anchors of `rows`: the clean latent of each row's first frame in view, [R, C, 1, h, w]."""
        return torch.stack([self.rows[r][0][0] for r in rows])

    def in_view(self, rows: list[int]) -> tuple[Tensor, Tensor | None]:
        """The noised history of `rows` [R, C, n, h, w] and the actions its frames follow [R, n, A] (or None);
        the rows must hold the same number of frames."""
        sizes = {len(self.rows[r]) for r in rows}
        if len(sizes) != 1:
            raise ValueError(f"rows {rows} hold different numbers of frames in view ({sorted(sizes)})")
        noisy = torch.stack([torch.cat([f[1] for f in self.rows[r]], dim=1) for r in rows])
        actions = [[f[2] for f in self.rows[r]] for r in rows]
        if any(a is None for row in actions for a in row):
            return noisy, None
        return noisy, torch.stack([torch.stack(row) for row in actions])

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for row in self.rows for frame in row for t in frame
                   if t is not None)

