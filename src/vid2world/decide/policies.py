"""Policies: frames in, actions out, a batch of episodes at once. The same object acts in the real simulator and
inside a world model (it sees only frames), which is what lets `policy-eval` compare the two.

A policy is any object with `reset(rows, seed)` (start `rows` episodes) and `act(frames)` (uint8 [B, H, W, 3] ->
the raw action vectors [B, A] float32 of the env's `ActionSpec`); a policy that needs history keeps it between
calls. `make_policy(text, spec, env)` builds one from a command-line word (`POLICY_HELP`).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Protocol

import numpy as np

from ..data.sim.policies import random_action
from ..data.spec import ActionSpec


class Policy(Protocol):
    name: str

    def reset(self, rows: int, seed: int) -> None: ...

    def act(self, frames: np.ndarray) -> np.ndarray: ...


class RandomPolicy:
    """A new uniformly random action every step for every row."""

    def __init__(self, spec: ActionSpec, name: str = "random") -> None:
        self.spec, self.name, self.rngs = spec, name, []

    def reset(self, rows: int, seed: int) -> None:
        self.rngs = [np.random.default_rng([seed, r]) for r in range(rows)]

    def act(self, frames: np.ndarray) -> np.ndarray:
        return np.stack([random_action(self.spec, rng) for rng in self.rngs[:len(frames)]])


class ConstantPolicy:
    """One action, always (`noop`: the weakest player there is)."""

    def __init__(self, spec: ActionSpec, labels: list[str], name: str) -> None:
        self.vector, self.name = label_vector(spec, labels), name

    def reset(self, rows: int, seed: int) -> None:
        pass

    def act(self, frames: np.ndarray) -> np.ndarray:
        return np.repeat(self.vector[None], len(frames), axis=0)


class HeldScriptedPolicy:
    """The simulator's scripted actions (walk, turn, fire), each held for 3-12 steps: the recordings' player."""

    def __init__(self, scripted_action: Callable[[np.random.Generator], np.ndarray], name: str = "scripted",
                 hold: tuple[int, int] = (3, 12)) -> None:
        self.scripted_action, self.name, self.hold = scripted_action, name, hold
        self.rngs: list[np.random.Generator] = []

    def reset(self, rows: int, seed: int) -> None:
        self.rngs = [np.random.default_rng([seed, r]) for r in range(rows)]
        self.actions: list[np.ndarray | None] = [None] * rows
        self.left = [0] * rows

    def act(self, frames: np.ndarray) -> np.ndarray:
        for r, rng in enumerate(self.rngs[:len(frames)]):
            if self.left[r] <= 0:
                self.actions[r] = self.scripted_action(rng)
                self.left[r] = int(rng.integers(self.hold[0], self.hold[1] + 1))
            self.left[r] -= 1
        return np.stack(self.actions[:len(frames)])


class EpsilonPolicy:
    """`inner`'s action, replaced by a uniformly random one with probability `epsilon` per step and row: one
    policy at graded skill levels."""

    def __init__(self, inner: Any, spec: ActionSpec, epsilon: float) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"policy {inner.name}@{epsilon}: epsilon must lie in [0, 1]")
        self.inner, self.spec, self.epsilon = inner, spec, epsilon
        self.name = inner.name if epsilon == 0 else f"{inner.name}@{epsilon:g}"

    def reset(self, rows: int, seed: int) -> None:
        self.inner.reset(rows, seed)
        self.rngs = [np.random.default_rng([seed, r, 1]) for r in range(rows)]

    def act(self, frames: np.ndarray) -> np.ndarray:
        actions = np.array(self.inner.act(frames), np.float32)
        for r, rng in enumerate(self.rngs[:len(frames)]):
            if rng.random() < self.epsilon:
                actions[r] = random_action(self.spec, rng)
        return actions


class FunctionPolicy:
    """A user's policy: a function of frames [B, H, W, 3] uint8 to actions [B, A], or an object with `act` (and
    optionally `reset(rows, seed)`), imported from `module:attribute`."""

    def __init__(self, target: Any, name: str) -> None:
        self.target, self.name = target, name

    def reset(self, rows: int, seed: int) -> None:
        if hasattr(self.target, "reset"):
            self.target.reset(rows, seed)

    def act(self, frames: np.ndarray) -> np.ndarray:
        fn = self.target.act if hasattr(self.target, "act") else self.target
        return np.asarray(fn(frames), np.float32)


def label_vector(spec: ActionSpec, labels: list[str]) -> np.ndarray:
    """The action vector with exactly `labels` set (one per one-hot group at most)."""
    names = [label for group in spec.groups for label in group.labels]
    vector = np.zeros(spec.dim, np.float32)
    for label in labels:
        if label not in names:
            raise ValueError(f"action label {label!r}: this env's actions are {names}")
        vector[names.index(label)] = 1.0
    return vector


def import_policy(path: str) -> FunctionPolicy:
    """`package.module:attribute` -> a `FunctionPolicy` (a class is instantiated without arguments)."""
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"policy import:{path}: expected import:package.module:attribute")
    try:
        target = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"policy import:{path}: {err}") from None
    return FunctionPolicy(target() if isinstance(target, type) else target, attribute)
