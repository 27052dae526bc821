"""Per-horizon curves as PNG files: one plot per frame metric, every source a line against the horizon step.

Drawn on a bare `matplotlib.figure.Figure` (the Agg renderer, no pyplot, no display, no global state) at a fixed size
and dpi, without the PNG's Software stamp: the same results give the same bytes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ...io.atomic import atomic_file
from .findings import computed, metric_label
from ..results import EvaluationResults, MetricInfo

PLOTS_DIR = "plots"
# Colour-blind-safe (Okabe-Ito): the model first, baselines after, in results.json's order.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")


@dataclass(frozen=True)
class PlotConfig:
    width_in: float = 6.4
    height_in: float = 3.6
    dpi: int = 110


def _plain(text: str) -> str:
    """A label matplotlib shows as written: `$` would start mathtext, a leading `_` hides a legend entry."""
    text = text.replace("$", r"\$")
    return "\u200b" + text if text.startswith("_") else text


def file_name(metric: str, taken: set[str]) -> str:
    """A safe, unique PNG name for a metric (its name can be anything results.json holds)."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", metric).strip("_") or "metric"
    name, n = f"{stem}.png", 1
    while name in taken:
        n += 1
        name = f"{stem}-{n}.png"
    taken.add(name)
    return name


def _draw(results: EvaluationResults, metric: MetricInfo, path: Path, config: PlotConfig) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(config.width_in, config.height_in), dpi=config.dpi, layout="constrained")
    ax = fig.add_subplot()
    for i, source in enumerate(results.sources):  # a source keeps its colour in every plot
        values = source.per_horizon.get(metric.name)
        if not values:
            continue
        is_model = source.kind == "model"
        ax.plot(range(1, len(values) + 1), values, label=_plain(source.name), color=COLOURS[i % len(COLOURS)],
                linestyle="-" if is_model else "--", linewidth=2.4 if is_model else 1.6,
                marker="o" if len(values) <= 24 else None, markersize=3.5, zorder=3 if is_model else 2)
    ax.set_title(_plain(f"{metric_label(metric)} per horizon step"), fontsize=11)
    ax.set_xlabel("horizon step (scored frame)")
    ax.set_ylabel(_plain(metric.name + (f" ({metric.unit})" if metric.unit else "")))
    ax.grid(True, color="#dddddd", linewidth=0.6)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8, frameon=False)
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=config.dpi, metadata={"Software": None})


def horizon_plots(results: EvaluationResults, out_dir: str | Path, config: PlotConfig = PlotConfig()
                  ) -> list[tuple[MetricInfo, str]]:
    """Write `plots/<metric>.png` under `out_dir` for every computed metric that has a per-horizon curve; returns
    (metric, path relative to `out_dir`) in results.json's metric order. Set metrics (FID, FVD) have no curve."""
    written, taken = [], set()
    for metric in computed(results):
        if not any(s.per_horizon.get(metric.name) for s in results.sources):
            continue
        relative = f"{PLOTS_DIR}/{file_name(metric.name, taken)}"
        _draw(results, metric, Path(out_dir) / relative, config)
        written.append((metric, relative))
    return written
