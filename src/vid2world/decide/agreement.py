"""How well imagined outcomes rank policies as reality does: pure functions of per-episode returns.

Per policy i: the real mean return R_i and the imagined one S_i (means over its episodes). Agreement across the
policies: Pearson and Spearman correlation, MAE and bias (mean of S - R), and SIMPLER's MMRV (Li et al. 2024):
mean over i of max over j of |R_i - R_j| where the two orders disagree (S_i < S_j while R_i > R_j, or the
reverse); 0 when imagination ranks every pair as reality does, in the units of the real return. Intervals: a
percentile bootstrap over episodes, resampled within each policy (the paired episodes together).
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties given their average rank."""
    x = np.asarray(x, float)
    order = np.argsort(x, kind="stable")
    out = np.empty(len(x))
    out[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):
        tied = x == value
        out[tied] = out[tied].mean()
    return out


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    return pearson(ranks(x), ranks(y))


def mmrv(real: np.ndarray, imagined: np.ndarray) -> float:
    real, imagined = np.asarray(real, float), np.asarray(imagined, float)
    worst = []
    for i in range(len(real)):
        violated = (imagined[i] < imagined) != (real[i] < real)
        violated &= real != real[i]
        worst.append(np.max(np.abs(real[i] - real) * violated) if len(real) else 0.0)
    return float(np.mean(worst)) if worst else float("nan")


STATISTICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "pearson": pearson, "spearman": spearman, "mmrv": mmrv,
    "mae": lambda r, s: float(np.mean(np.abs(np.asarray(s) - np.asarray(r)))),
    "bias": lambda r, s: float(np.mean(np.asarray(s) - np.asarray(r))),
}


def agreement(real: list[np.ndarray], imagined: list[np.ndarray], resamples: int = 2000, seed: int = 0
              ) -> dict[str, dict[str, float]]:
    """Every statistic of the policies' mean returns, with its 95% bootstrap interval. `real[i]` and `imagined[i]`:
    policy i's per-episode returns, paired (episode e of both started from the same state)."""
    if len(real) != len(imagined) or any(len(r) != len(s) for r, s in zip(real, imagined)):
        raise ValueError("agreement: real and imagined returns must pair episode by episode, policy by policy")
    means = lambda rows: np.array([np.mean(r) for r in rows])  # noqa: E731
    point = {name: fn(means(real), means(imagined)) for name, fn in STATISTICS.items()}
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {name: [] for name in STATISTICS}
    for _ in range(resamples):
        picks = [rng.integers(0, len(r), len(r)) for r in real]
        r = means([x[p] for x, p in zip(real, picks)])
        s = means([x[p] for x, p in zip(imagined, picks)])
        for name, fn in STATISTICS.items():
            draws[name].append(fn(r, s))
    out = {}
    for name in STATISTICS:
        values = np.array(draws[name])
        values = values[np.isfinite(values)]
        low, high = np.percentile(values, [2.5, 97.5]) if len(values) else (float("nan"), float("nan"))
        out[name] = {"value": point[name], "low": float(low), "high": float(high)}
    return out
