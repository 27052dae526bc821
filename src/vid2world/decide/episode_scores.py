"""What `policy-eval` scores an episode by, read two ways: exactly from the real game, and off frames (real or
imagined) by a model trained on real frames. Each scorer gives one number per episode, higher is better.

- `RewardSums`: the game's rewards summed; off frames, an outcome head's rewards (`heads.py`).
- `BlockProgress`: Push-T, how many pixels closer to the task's target position the block ends than it started;
  off frames, the end position a pose reader (`pose.py`) reads off the last frame. Success (coverage over 0.95) is
  too rare in a short episode to rank policies by; the block's progress grades every episode.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .goals import pose_indices
from .heads import RewardHead
from .pose import PoseReader
from .rollouts import Episodes


def head_returns(head: RewardHead, episodes: Episodes) -> np.ndarray:
    """Per episode, the sum of the head's rewards over its transitions (steps after the game ended excluded)."""
    e, t = episodes.alive.shape
    before = episodes.frames[:, :-1].reshape(e * t, *episodes.frames.shape[2:])
    after = episodes.frames[:, 1:].reshape(e * t, *episodes.frames.shape[2:])
    return (head.rewards(before, after).reshape(e, t) * episodes.alive).sum(1)


class RewardSums:
    label = "return"

    def __init__(self, head: RewardHead, path: str) -> None:
        self.head, self.path = head, path

    def real(self, real: Episodes) -> np.ndarray:
        return real.rewards.sum(1)

    def read(self, episodes: Episodes, real: Episodes) -> np.ndarray:
        return head_returns(self.head, episodes)

    def describe(self) -> dict[str, Any]:
        return {"kind": "reward sum", "label": self.label, "reader": "outcome head", "path": self.path,
                "heldout": getattr(self.head, "heldout", {})}


class BlockProgress:
    label = "block progress (px)"

    def __init__(self, reader: PoseReader, path: str, sim) -> None:
        self.reader, self.path = reader, path
        self.indices = pose_indices(sim)[:2]  # block_x, block_y in the recorded state
        self.target = np.asarray(sim.target[:2], np.float64)

    def _distance(self, xy: np.ndarray) -> np.ndarray:
        return np.linalg.norm(np.asarray(xy, np.float64) - self.target, axis=-1)

    def _start(self, real: Episodes) -> np.ndarray:
        if real.states is None:
            raise ValueError("block progress needs the real episodes' simulator states (run them again: saved "
                             "episodes from before states were recorded cannot be scored by a pose reader)")
        return self._distance(real.states[:, 0, self.indices])

    def real(self, real: Episodes) -> np.ndarray:
        return self._start(real) - self._distance(real.states[:, -1, self.indices])

    def read(self, episodes: Episodes, real: Episodes) -> np.ndarray:
        """From the exact start (both runs share it) to the position read off the episode's last frame."""
        return self._start(real) - self._distance(self.reader.read(episodes.frames[:, -1])[:, :2])

    def describe(self) -> dict[str, Any]:
        return {"kind": "block progress", "label": self.label, "reader": "pose reader", "path": self.path,
                "heldout": getattr(self.reader, "heldout", {}), "target": self.target.tolist()}
