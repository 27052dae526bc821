"""Model-predictive control: at every real step, the cross-entropy method (CEM) searches action sequences of
`horizon` steps through a model of the game, and the first action of the best is played in the real game.

The model is either a world model (all candidates as the rows of one session started from the last real frames,
scored by an outcome head's rewards on the imagined frames) or the real simulator itself (each candidate played
from a saved state and the state restored: the upper bound a perfect world model would reach).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..data.spec import ActionSpec


@dataclass(frozen=True)
class PlanConfig:
    lookahead: int = 4  # steps each candidate looks ahead
    population: int = 16  # candidates per CEM iteration (the rows of one batched session)
    iterations: int = 2
    elites: int = 4  # best candidates the distribution is refitted to
    floor: float = 0.05  # probability mass kept uniform, so no action is ruled out after one iteration
    hold: int = 1  # real steps each planned action is held for (DINO-WM's frameskip): reach lookahead x hold

    def __post_init__(self) -> None:
        if min(self.lookahead, self.population, self.iterations, self.elites, self.hold) < 1 \
                or self.elites > self.population:
            raise ValueError(f"plan: lookahead, population, iterations, hold >= 1 and 1 <= elites <= population "
                             f"(--elites {self.elites}, --population {self.population})")


class SequenceDistribution:
    """Independent per step and group: a categorical per one-hot group, a Bernoulli per multi-hot entry, a
    Gaussian per continuous entry (clipped to its bounds)."""

    def __init__(self, spec: ActionSpec, horizon: int) -> None:
        self.spec, self.horizon = spec, horizon
        self.params = []
        for group in spec.groups:
            if group.kind == "one_hot":
                self.params.append(np.full((horizon, group.dim), 1.0 / group.dim))
            elif group.kind == "multi_hot":
                self.params.append(np.full((horizon, group.dim), 0.5))
            else:
                low = np.asarray(group.low or [-1.0] * group.dim)
                high = np.asarray(group.high or [1.0] * group.dim)
                self.params.append(np.stack([np.tile((low + high) / 2, (horizon, 1)),
                                             np.tile((high - low) / 2, (horizon, 1))]))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Action sequences [n, horizon, A]."""
        parts = []
        for group, p in zip(self.spec.groups, self.params):
            if group.kind == "one_hot":
                cum = p.cumsum(-1)
                idx = (rng.random((n, self.horizon, 1)) > cum[None]).sum(-1).clip(max=group.dim - 1)
                parts.append(np.eye(group.dim, dtype=np.float32)[idx])
            elif group.kind == "multi_hot":
                parts.append((rng.random((n, self.horizon, group.dim)) < p[None]).astype(np.float32))
            else:
                low = np.asarray(group.low or [-1.0] * group.dim)
                high = np.asarray(group.high or [1.0] * group.dim)
                x = p[0][None] + p[1][None] * rng.standard_normal((n, self.horizon, group.dim))
                parts.append(np.clip(x, low, high).astype(np.float32))
        return np.concatenate(parts, -1)

    def refit(self, elites: np.ndarray, floor: float) -> None:
        at = 0
        for i, group in enumerate(self.spec.groups):
            x = elites[..., at:at + group.dim]
            at += group.dim
            if group.kind == "one_hot":
                self.params[i] = (1 - floor) * x.mean(0) + floor / group.dim
            elif group.kind == "multi_hot":
                self.params[i] = (1 - floor) * x.mean(0) + floor * 0.5
            else:
                self.params[i] = np.stack([x.mean(0), x.std(0) + 1e-3])


def cem(score: Callable[[np.ndarray], np.ndarray], spec: ActionSpec, config: PlanConfig,
        rng: np.random.Generator) -> np.ndarray:
    """The first action [A] of the best sequence found; `score(sequences [P, H * hold, A]) -> returns [P]` (each
    planned action repeated `hold` times). Ties (a model that sees no reward ahead) are broken at random, so an
    uninformed plan is random play."""
    dist = SequenceDistribution(spec, config.lookahead)
    best, best_score = None, -np.inf
    for _ in range(config.iterations):
        candidates = dist.sample(config.population, rng)
        scores = np.asarray(score(np.repeat(candidates, config.hold, axis=1)), float) + 1e-6 * rng.random(config.population)
        order = np.argsort(-scores)
        if scores[order[0]] > best_score:
            best, best_score = candidates[order[0]], scores[order[0]]
        dist.refit(candidates[order[:config.elites]], config.floor)
    return best[0]
