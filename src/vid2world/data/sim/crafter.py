"""Crafter (Hafner 2021): a 2-D survival world rendered top-down; one-hot over its 17 actions."""

from __future__ import annotations

import crafter as crafter_pkg
import numpy as np

from ..spec import ActionSpec
from .base import Simulator

MOVES = ("move_left", "move_right", "move_up", "move_down")


class Crafter(Simulator):
    fps = 10.0  # Crafter has no clock; 10 steps per second plays well
    min_size = 18  # Crafter draws a 9-cell-wide view at 2 pixels a cell at least ("height and width must be > 0")

    def __init__(self, name: str, size: int) -> None:
        super().__init__(size)
        if name:
            raise ValueError(f"crafter:{name}: Crafter has a single world; use the id 'crafter'")
        if size < self.min_size:
            raise ValueError(f"crafter: frame size must be >= {self.min_size} (Crafter's 9x9-cell view needs 2 "
                             f"pixels a cell), got {size}")
        self.env_id = "crafter"
        self.names = list(crafter_pkg.constants.actions)
        self.spec = ActionSpec.one_hot(self.names)
        self.env: crafter_pkg.Env | None = None

    def reset(self, seed: int) -> np.ndarray:
        # a fresh Env per episode: its world seed is (seed, episode count), so this keeps episodes independent
        self.env = crafter_pkg.Env(size=(self.size, self.size), seed=int(seed) % (2 ** 31 - 1))
        self.last_reward = 0.0
        return self.resize(self.env.reset())

    def step(self, action: np.ndarray) -> tuple[np.ndarray | None, bool]:
        obs, reward, done, _ = self.env.step(int(np.argmax(action)))
        self.last_reward = float(reward)
        return (None, True) if done else (self.resize(obs), False)

    def scripted_action(self, rng: np.random.Generator) -> np.ndarray:
        """Walk in one direction most of the time; stop to interact ('do': chop, mine, attack) or place things."""
        r = rng.random()
        if r < 0.7:
            name = MOVES[rng.integers(len(MOVES))]
        elif r < 0.9:
            name = "do"
        elif r < 0.95:
            name = "noop"
        else:
            name = self.names[rng.integers(6, len(self.names))]
        out = np.zeros(len(self.names), np.float32)
        out[self.names.index(name)] = 1.0
        return out
