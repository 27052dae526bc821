"""What the report reads out of `EvaluationResults`: the input checked, and each model-vs-baseline comparison.

A model that scores no better than a baseline on a metric (ties included) "does not beat" it: the report must say so
plainly, whichever way the metric points (`MetricInfo.higher_is_better`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..results import EvaluationResults, MetricInfo, SourceScores

KINDS = ("model", "baseline")


@dataclass(frozen=True)
class Comparison:
    """One computed metric, one model source against one baseline source."""

    metric: MetricInfo
    model: SourceScores
    baseline: SourceScores

    @property
    def model_value(self) -> float:
        return self.model.means[self.metric.name]

    @property
    def baseline_value(self) -> float:
        return self.baseline.means[self.metric.name]

    @property
    def beats(self) -> bool:
        """Strictly better than the baseline in the metric's direction (a tie does not beat it)."""
        if self.metric.higher_is_better:
            return self.model_value > self.baseline_value
        return self.model_value < self.baseline_value


def _finite(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"results.json: {where} is {value!r}; expected a finite number")
    return float(value)


def _check_source(source: SourceScores, known: dict[str, MetricInfo], windows: int) -> None:
    where = f"sources[{source.name!r}]"
    if source.kind not in KINDS:
        raise ValueError(f"results.json: {where}.kind is {source.kind!r}; expected one of {list(KINDS)}")
    for part, values in (("means", source.means), ("per_horizon", source.per_horizon)):
        for metric, value in values.items():
            if metric not in known:
                raise ValueError(f"results.json: {where}.{part} names metric {metric!r}, which `metrics` does not "
                                 f"describe (described: {sorted(known)})")
            for i, v in enumerate(value if part == "per_horizon" else [value]):
                _finite(v, f"{where}.{part}[{metric!r}]" + (f"[{i}]" if part == "per_horizon" else ""))
    for metric, values in source.per_window.items():
        if metric not in known:
            raise ValueError(f"results.json: {where}.per_window names metric {metric!r}, which `metrics` does not "
                             f"describe (described: {sorted(known)})")
        if not isinstance(values, list) or len(values) != windows:
            raise ValueError(f"results.json: {where}.per_window[{metric!r}] holds "
                             f"{len(values) if isinstance(values, list) else values!r} values; expected one per "
                             f"window ({windows})")
        for i, v in enumerate(values):
            _finite(v, f"{where}.per_window[{metric!r}][{i}]")


def _check_paired(results: EvaluationResults, known: dict[str, MetricInfo], sources: set[str]) -> None:
    for baseline, per_metric in results.paired.items():
        if baseline not in sources:
            raise ValueError(f"results.json: paired names source {baseline!r}, which `sources` does not hold")
        for metric, values in per_metric.items():
            where = f"paired[{baseline!r}][{metric!r}]"
            if metric not in known:
                raise ValueError(f"results.json: {where} names a metric `metrics` does not describe")
            if set(values) != {"difference", "low", "high", "wins", "windows"}:
                raise ValueError(f"results.json: {where} has keys {sorted(values)}; expected difference, high, low, "
                                 "wins, windows")
            for key in ("difference", "low", "high"):
                _finite(values[key], f"{where}[{key!r}]")
            if not 0 <= values["wins"] <= values["windows"]:
                raise ValueError(f"results.json: {where}: wins {values['wins']!r} out of [0, windows]")


def check_results(results: EvaluationResults) -> None:
    """Raise ValueError naming the key when results.json holds what the report cannot show honestly: NaN or inf,
    a score for an undescribed metric, an unknown source kind, an accuracy outside [0, 1]."""
    known = {m.name: m for m in results.metrics}
    if len(known) != len(results.metrics):
        raise ValueError(f"results.json: metrics describes a name twice: {[m.name for m in results.metrics]}")
    names = [s.name for s in results.sources]
    if len(set(names)) != len(names):
        raise ValueError(f"results.json: sources repeats a name: {names}")
    for source in results.sources:
        _check_source(source, known, results.windows)
    for metric, value in results.delta_n.items():
        _finite(value, f"delta_n[{metric!r}]")
    _check_paired(results, known, set(names))
    for key in ("real", "model", "chance"):
        if key in results.action_accuracy and not 0 <= _finite(results.action_accuracy[key],
                                                                f"action_accuracy[{key!r}]") <= 1:
            raise ValueError(f"results.json: action_accuracy[{key!r}] is {results.action_accuracy[key]!r}; "
                             "expected a fraction in [0, 1]")


def computed(results: EvaluationResults) -> list[MetricInfo]:
    """The metrics that were computed (not skipped), in results.json's order."""
    return [m for m in results.metrics if m.skipped is None]


def comparisons(results: EvaluationResults) -> list[Comparison]:
    """Every (computed metric, model source, baseline source) where both have a score."""
    models = [s for s in results.sources if s.kind == "model"]
    baselines = [s for s in results.sources if s.kind == "baseline"]
    return [Comparison(metric, model, baseline) for metric in computed(results) for model in models
            for baseline in baselines if metric.name in model.means and metric.name in baseline.means]


def best_value(results: EvaluationResults, metric: MetricInfo) -> float | None:
    """The best mean any source reached on `metric` (None when no source has it)."""
    values = [s.means[metric.name] for s in results.sources if metric.name in s.means]
    if not values:
        return None
    return max(values) if metric.higher_is_better else min(values)


def format_value(value: float) -> str:
    """A score with four significant digits (one decimal from 1000 on, where 4 digits would need an exponent)."""
    return f"{value:.1f}" if abs(value) >= 1000 else f"{value:.4g}"


def direction(metric: MetricInfo) -> str:
    return "↑" if metric.higher_is_better else "↓"


def metric_label(metric: MetricInfo) -> str:
    """`psnr (dB) ↑`: the name, its unit and which way is better."""
    unit = f" ({metric.unit})" if metric.unit else ""
    return f"{metric.name}{unit} {direction(metric)}"
