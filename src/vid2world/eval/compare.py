"""`vid2world compare A B`: two evaluations of the same windows, window by window.

Two checkpoints, two presets or two samplers scored by `vid2world evaluate` on the same windows (same data, protocol
and window seed) can be told apart more finely than by their means: every source's per-window scores in A minus
those in B, with `eval.paired`'s bootstrap interval over the windows, says whether the gap exceeds what the choice
of windows alone moves. Sources are matched by name (`model`, `copy last context frame`, ...), so a baseline that
does not depend on the model (copying the last frame) shows a gap of exactly 0: a check that the windows match.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .paired import PairedDifference, paired_scores
from .results import EvaluationResults


@dataclass(frozen=True)
class SourceGap:
    """One source and per-frame metric: A's mean, B's mean, and A - B window by window."""

    source: str
    metric: str
    a: float
    b: float
    gap: PairedDifference


def compare_evaluations(a_dir: str | Path, b_dir: str | Path) -> list[SourceGap]:
    """A - B for every source both evaluations scored, on every per-frame metric both kept per window."""
    a, b = EvaluationResults.load(a_dir), EvaluationResults.load(b_dir)
    ids_a, ids_b = a.protocol.get("window_ids"), b.protocol.get("window_ids")
    if not ids_a or ids_a != ids_b:
        raise ValueError(f"{a_dir} and {b_dir} were not scored on the same windows (their protocol.window_ids differ"
                         "); evaluate both with the same --data, protocol, --windows, --split and --seed")
    higher = {m.name: m.higher_is_better for m in a.metrics}
    gaps = []
    for source in a.sources:
        other = next((s for s in b.sources if s.name == source.name), None)
        if other is None:
            continue
        gaps += [SourceGap(source.name, metric, source.means[metric], other.means[metric], gap)
                 for metric, gap in paired_scores(source.per_window, other.per_window, higher).items()]
    if not gaps:
        raise ValueError(f"{a_dir} and {b_dir} share no source with per-window scores (results.json from before "
                         "they were kept: run `vid2world evaluate` again, its predictions are reused)")
    return gaps


def format_comparison(gaps: list[SourceGap], a_name: str, b_name: str) -> str:
    """A markdown table: one row per source and metric."""
    lines = [f"A = {a_name}", f"B = {b_name}", "",
             "| source | metric | A | B | A - B (95% interval over the windows) | windows A is better |",
             "|---|---|---|---|---|---|"]
    for g in gaps:
        note = "" if g.gap.separated or g.gap.high == g.gap.low else ", not separated"
        lines.append(f"| {g.source} | {g.metric} | {g.a:.4g} | {g.b:.4g} | {g.gap.text()}{note} "
                     f"| {g.gap.wins} of {g.gap.windows} |")
    return "\n".join(lines)


def comparison_json(gaps: list[SourceGap], a_dir: str | Path, b_dir: str | Path) -> dict[str, Any]:
    return {"a": str(a_dir), "b": str(b_dir), "gaps": [{**asdict(g), "gap": asdict(g.gap)} for g in gaps]}
