"""What the model is compared with, as pure functions: the copy-last-frame baseline, another episode's actions (a
deterministic derangement), random valid actions drawn from a dataset's action spec, held actions for the
counterfactual grid, and method.md 10.3's Delta-N."""

from __future__ import annotations

import math

import numpy as np

from ..data.spec import ActionSpec


def copy_last_frame(context: np.ndarray, horizon: int) -> np.ndarray:
    """The last context frame repeated: context uint8 [B, T0, H, W, 3] -> [B, horizon, H, W, 3]."""
    return np.repeat(context[:, -1:], horizon, axis=1)


def derangement(n: int, seed: int) -> np.ndarray:
    """A permutation of 0..n-1 with no fixed point (Sattolo's algorithm: one random cycle), the same for the same
    seed; window i gets the actions of window `out[i]`. Needs n >= 2."""
    if n < 2:
        raise ValueError(f"another episode's actions need at least 2 windows, got {n}")
    rng = np.random.default_rng([seed, n])
    out = np.arange(n)
    for i in range(n - 1, 0, -1):
        j = int(rng.integers(0, i))  # j < i: never a fixed point
        out[i], out[j] = out[j], out[i]
    return out


def action_bounds(spec: ActionSpec, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per action dimension, the range random continuous actions are drawn from: the spec's low/high where it has
    them, else the range `observed` [N, A] (the evaluation windows' actions) spans."""
    low, high = observed.min(axis=0).astype(np.float64), observed.max(axis=0).astype(np.float64)
    for group, cols in spec.slices():
        if group.low and group.high:
            low[cols], high[cols] = group.low, group.high
    return low, high


def random_actions(spec: ActionSpec, steps: int, rng: np.random.Generator,
                   bounds: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """`steps` random valid actions [steps, A] float32: one-hot groups one uniformly random label, multi-hot groups
    independent 0/1 draws, continuous values uniform in `bounds` (see `action_bounds`)."""
    out = np.zeros((steps, spec.dim), dtype=np.float32)
    low, high = bounds
    for group, cols in spec.slices():
        if group.kind == "one_hot":
            out[np.arange(steps), cols.start + rng.integers(0, group.dim, steps)] = 1.0
        elif group.kind == "multi_hot":
            out[:, cols] = rng.integers(0, 2, (steps, group.dim))
        else:
            out[:, cols] = rng.uniform(low[cols], high[cols], (steps, group.dim))
    return out


def neutral_action(spec: ActionSpec, bounds: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """A do-nothing-ish action [A]: the first label of one-hot groups, nothing pressed, continuous mid-range."""
    out = np.zeros(spec.dim, dtype=np.float32)
    for group, cols in spec.slices():
        if group.kind == "one_hot":
            out[cols.start] = 1.0
        elif group.kind == "continuous":
            out[cols] = (bounds[0][cols] + bounds[1][cols]) / 2
    return out


def held_actions(spec: ActionSpec, bounds: tuple[np.ndarray, np.ndarray],
                 limit: int = 8) -> list[tuple[str, np.ndarray]]:
    """Counterfactual action choices, each held for a whole rollout: every discrete label pressed alone (others
    neutral), and each continuous dimension at its low and high end; at most `limit`, as (name, action [A])."""
    base = neutral_action(spec, bounds)
    out = []
    for group, cols in spec.slices():
        for k, label in enumerate(group.labels):
            col = cols.start + k
            variants = [(label, 1.0)] if group.kind != "continuous" else \
                [(f"{label}={bounds[0][col]:+.2g}", bounds[0][col]), (f"{label}={bounds[1][col]:+.2g}", bounds[1][col])]
            for name, value in variants:
                action = base.copy()
                if group.kind == "one_hot":
                    action[cols] = 0.0
                action[col] = value
                out.append((f"{group.name}.{name}", action))
    return out[:limit]


def delta_n(gt_scores: dict[str, float], random_scores: dict[str, float]) -> tuple[dict[str, float], list[str]]:
    """method.md 10.3: Delta-N = (M(gt actions) - M(random actions)) / M(random actions) x 100, per metric both
    have; a metric whose random-action value is 0 or not finite has no Delta-N (named in the returned notes)."""
    out, notes = {}, []
    for name in sorted(set(gt_scores) & set(random_scores)):
        gt, rand = gt_scores[name], random_scores[name]
        if rand == 0 or not (math.isfinite(gt) and math.isfinite(rand)):
            notes.append(f"delta_n[{name}]: undefined (random-action value {rand!r})")
            continue
        out[name] = (gt - rand) / rand * 100.0
    return out, notes
