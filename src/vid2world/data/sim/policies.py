"""Policies for recording: uniformly random actions every step, scripted actions held for several steps, or the
two mixed (segments of either, held briefly), so that the actions carry what the frames do not show."""

from __future__ import annotations

import numpy as np

from ..spec import ActionSpec
from .base import Simulator


def random_action(spec: ActionSpec, rng: np.random.Generator) -> np.ndarray:
    """Uniform over each group: one label of a one-hot group, each label of a multi-hot group with p = 1/2,
    continuous values uniform in [low, high] (or [-1, 1])."""
    parts = []
    for g in spec.groups:
        if g.kind == "one_hot":
            part = np.zeros(g.dim, np.float32)
            part[rng.integers(g.dim)] = 1.0
        elif g.kind == "multi_hot":
            part = (rng.random(g.dim) < 0.5).astype(np.float32)
        else:
            low = np.asarray(g.low or [-1.0] * g.dim)
            high = np.asarray(g.high or [1.0] * g.dim)
            part = rng.uniform(low, high).astype(np.float32)
        parts.append(part)
    return np.concatenate(parts)


class RandomPolicy:
    """A new uniformly random action every step (jitter: the hardest data to learn motion from)."""

    def __init__(self, sim: Simulator) -> None:
        self.spec = sim.spec

    def act(self, rng: np.random.Generator) -> np.ndarray:
        return random_action(self.spec, rng)


class HoldPolicy:
    """The simulator's scripted actions (walk, turn, fire), each held for `hold` steps (inclusive range), as a
    player holds keys."""

    def __init__(self, sim: Simulator, hold: tuple[int, int] = (3, 12)) -> None:
        self.sim, self.hold = sim, hold
        self._action: np.ndarray | None = None
        self._left = 0

    def act(self, rng: np.random.Generator) -> np.ndarray:
        if self._left <= 0:
            self._action = self.choose(rng)
            self._left = int(rng.integers(self.hold[0], self.hold[1] + 1))
        self._left -= 1
        return self._action.copy()

    def choose(self, rng: np.random.Generator) -> np.ndarray:
        return self.sim.scripted_action(rng)


class ExplorePolicy(HoldPolicy):
    """Segments of 1-5 steps, each the scripted action or (with probability `explore`) a uniformly random one.
    A world model learns to follow actions only where they are not predictable from the frames: a scripted
    player's actions mostly are (Push-T's pusher aims where its frames say the block is)."""

    def __init__(self, sim: Simulator, hold: tuple[int, int] = (1, 5), explore: float = 0.5) -> None:
        super().__init__(sim, hold)
        self.explore = explore

    def choose(self, rng: np.random.Generator) -> np.ndarray:
        if rng.random() < self.explore:
            return random_action(self.sim.spec, rng)
        return self.sim.scripted_action(rng)


POLICIES = {"random": RandomPolicy, "scripted": HoldPolicy, "explore": ExplorePolicy}


def make_policy(name: str, sim: Simulator) -> RandomPolicy | HoldPolicy:
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}: expected one of {sorted(POLICIES)}")
    return POLICIES[name](sim)
