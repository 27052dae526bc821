"""The report's other blocks: curves, videos, the counterfactual grid, skipped metrics and conventions, notes, the
model card, the protocol and the command line."""

from __future__ import annotations

import json
import shlex
from pathlib import PurePosixPath
from typing import Any, Callable

from .document import Block, Bullets, Cell, Code, Gallery, Heading, Media, Paragraph, Table
from .findings import direction
from ..results import EvaluationResults, MetricInfo

# (path relative to the output directory, caption, where results.json names it) -> the file, embedded or linked
Loader = Callable[[str, str, str], Media]


def curves(plots: list[tuple[MetricInfo, str]], load: Loader) -> list[Block]:
    """The per-horizon plots (already written), one per frame metric."""
    blocks: list[Block] = [Heading("Per-horizon curves")]
    if not plots:
        return blocks + [Paragraph("No per-horizon curve: no computed frame metric has one.")]
    items = [load(path, f"{metric.name} {direction(metric)} per horizon step", f"plot of {metric.name}")
             for metric, path in plots]
    return blocks + [Paragraph("Every source as a line against the horizon step: the model solid, baselines "
                               "dashed."), Gallery(items, "plots")]


def videos(results: EvaluationResults, load: Loader) -> list[Block]:
    """Each source's side-by-side ground truth | prediction videos."""
    blocks: list[Block] = [Heading("Ground truth | prediction")]
    with_videos = [s for s in results.sources if s.videos]
    if not with_videos:
        return blocks + [Paragraph("No videos were written.")]
    blocks.append(Paragraph("Each video shows the ground truth on the left and the prediction on the right."))
    for source in with_videos:
        items = [load(path, PurePosixPath(path).name, f"sources[{source.name!r}].videos[{i}]")
                 for i, path in enumerate(source.videos)]
        blocks += [Heading(source.name, 3), Gallery(items, "videos")]
    return blocks


def counterfactual(results: EvaluationResults, load: Loader) -> list[Block]:
    """The counterfactual grid video, or a sentence saying there is none."""
    blocks: list[Block] = [Heading("Counterfactual grid")]
    if not results.counterfactual:
        return blocks + [Paragraph("No counterfactual grid was written.")]
    grid = load(results.counterfactual, "one start, several action sequences", "counterfactual")
    return blocks + [Paragraph("One starting context rolled out under several action sequences: the panels should "
                               "differ as the actions do."), Gallery([grid], "videos")]


def metric_conventions(results: EvaluationResults) -> list[Block]:
    """Which metrics were skipped and why, then how each was computed."""
    skipped = [m for m in results.metrics if m.skipped is not None]
    blocks: list[Block] = [Heading("Skipped metrics")]
    if skipped:
        blocks.append(Bullets([f"{m.name}: {m.skipped}" for m in skipped], "warn"))
    else:
        blocks.append(Paragraph("None: every metric was computed."))
    rows = [[Cell(m.name), Cell(direction(m)), Cell(m.unit), Cell("skipped" if m.skipped else "computed",
                                                                  "loses" if m.skipped else ""), Cell(m.convention)]
            for m in results.metrics]
    return blocks + [Heading("Metrics and conventions"),
                     Table(["metric", "better", "unit", "status", "convention"], rows, "metrics")]


def notes(results: EvaluationResults) -> list[Block]:
    """What the reader must know, as results.json says it."""
    return [Heading("Notes"), Bullets(list(results.notes)) if results.notes else Paragraph("None.")]


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def key_values(title: str, values: dict[str, Any], role: str) -> list[Block]:
    """A dict as a two-column table (nested values as compact JSON)."""
    rows = [[Cell(str(key)), Cell(_shown(value))] for key, value in values.items()]
    return [Heading(title), Table(["key", "value"], rows, role) if rows else Paragraph("Empty.")]


def provenance(results: EvaluationResults) -> list[Block]:
    """The model card, the protocol and the command line that produced the results."""
    protocol = {**results.protocol, "windows scored": results.windows}
    return (key_values("Model card", results.model, "model-card") + key_values("Protocol", protocol, "protocol")
            + [Heading("Command line"), Code(shlex.join(str(a) for a in results.command))])
