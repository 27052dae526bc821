"""The model against a baseline window by window: both were scored on the same windows, so their per-window
difference, with a bootstrap interval over the windows, says whether the gap between the two means is larger than
what the choice of windows alone would move (a few tenths of a dB on 16 windows can be either)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000  # bootstrap resamples of the windows
LEVEL = 0.95


@dataclass(frozen=True)
class PairedDifference:
    """model - baseline of one per-frame metric, averaged over windows; `low`..`high` its 95% bootstrap interval
    (percentile method, resampling windows); `wins`: windows where the model scores better, in the metric's
    direction (ties are not wins)."""

    difference: float
    low: float
    high: float
    wins: int
    windows: int

    @property
    def separated(self) -> bool:
        """The interval excludes 0: the windows' spread alone does not explain the gap."""
        return self.low > 0 or self.high < 0

    def text(self, decimals: int | None = None, unit: str = "") -> str:
        """`+0.59 dB (-0.01 to +1.20)`: the three numbers to `decimals` places (None: three significant digits of
        the interval's width), `unit` (" dB") after the mean."""
        if decimals is None:
            width = self.high - self.low
            decimals = max(0, 2 - math.floor(math.log10(width)) if width > 0 else
                           3 - math.floor(math.log10(abs(self.difference) or 1)))
        return f"{self.difference:+.{decimals}f}{unit} ({self.low:+.{decimals}f} to {self.high:+.{decimals}f})"


def paired_difference(model: np.ndarray, baseline: np.ndarray, higher_is_better: bool, seed: int = 0,
                      resamples: int = RESAMPLES) -> PairedDifference:
    """Per-window scores `model[i]` and `baseline[i]` of the same windows -> their mean difference and interval."""
    model, baseline = np.asarray(model, np.float64), np.asarray(baseline, np.float64)
    if model.shape != baseline.shape or model.ndim != 1 or not len(model):
        raise ValueError(f"paired scores need two equal, non-empty 1-D arrays, got {model.shape} and {baseline.shape}")
    if not (np.isfinite(model).all() and np.isfinite(baseline).all()):
        raise ValueError("paired scores must be finite")
    diff = model - baseline
    draws = np.random.default_rng(seed).integers(0, len(diff), size=(resamples, len(diff)))
    means = diff[draws].mean(axis=1)
    tail = 100 * (1 - LEVEL) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    wins = int((diff > 0).sum() if higher_is_better else (diff < 0).sum())
    return PairedDifference(float(diff.mean()), float(low), float(high), wins, len(diff))


def paired_scores(mine: dict[str, list[float]], theirs: dict[str, list[float]], higher_is_better: dict[str, bool]
                  ) -> dict[str, PairedDifference]:
    """`paired_difference` for every metric both per-window score dicts hold and `higher_is_better` describes
    (`SourceScores.per_window` of two sources, or of one source in two evaluations, on the same windows)."""
    return {k: paired_difference(mine[k], theirs[k], higher_is_better[k])
            for k in mine if k in theirs and k in higher_is_better}
