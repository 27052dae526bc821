"""A synthetic world that anyone can generate offline: a square steered by the action.

Frames are uint8 [T, H, W, 3]: a static background (flat, or a colour gradient) and a white square. Action a_t in
{-1, 0, 1}^2 (continuous space of width 2: dx, dy) moves the square `speed` pixels per unit between frame t and
t+1; the walls stop it. Actions are held for a few frames so that the motion is purposeful, not jitter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SquareWorld:
    size: int = 16
    square: int = 4
    speed: int = 2
    hold: tuple[int, int] = (2, 5)  # an action is held for this many frames (inclusive range)
    gradient: bool = False  # a colour-gradient background instead of a flat one

    def background(self) -> np.ndarray:
        if not self.gradient:
            return np.broadcast_to(np.array([30, 40, 90], dtype=np.uint8), (self.size, self.size, 3))
        y, x = np.mgrid[0: self.size, 0: self.size] / max(1, self.size - 1)
        bg = np.stack([40 + 60 * x, 30 + 50 * y, 90 - 40 * x], axis=-1)
        return bg.astype(np.uint8)

    def render(self, position: np.ndarray) -> np.ndarray:
        frame = self.background().copy()
        y, x = int(position[0]), int(position[1])
        frame[y: y + self.square, x: x + self.square] = 255
        return frame

    def move(self, position: np.ndarray, action: np.ndarray) -> np.ndarray:
        limit = self.size - self.square
        return np.clip(position + self.speed * action[::-1].astype(np.int64), 0, limit)  # action = (dx, dy)

    def random_actions(self, frames: int, rng: np.random.Generator) -> np.ndarray:
        actions = np.zeros((frames, 2), dtype=np.float32)
        t = 0
        while t < frames:
            held = rng.integers(self.hold[0], self.hold[1] + 1)
            actions[t: t + held] = rng.integers(-1, 2, size=2)
            t += held
        return actions

    def episode(self, frames: int, rng: np.random.Generator,
                actions: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(frames [T, H, W, 3] uint8, actions [T, 2] float32); action t is taken after frame t."""
        actions = self.random_actions(frames, rng) if actions is None else actions
        position = rng.integers(0, self.size - self.square + 1, size=2)
        out = []
        for t in range(frames):
            out.append(self.render(position))
            position = self.move(position, actions[t])
        return np.stack(out), actions

    def dataset(self, episodes: int, frames: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """[N, T, H, W, 3] uint8 frames and [N, T, 2] actions, reproducible from `seed`."""
        rng = np.random.default_rng(seed)
        pairs = [self.episode(frames, rng) for _ in range(episodes)]
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
