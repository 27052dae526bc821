"""The report's findings as blocks: the verdict against the baselines, the score table, Delta-N, action accuracy."""

from __future__ import annotations

from .document import Block, Bullets, Cell, Heading, Paragraph, Table
from .findings import Comparison, best_value, comparisons, computed, direction, format_value, metric_label
from ..paired import PairedDifference
from ..results import EvaluationResults

LOSES = "⚠"  # beside a model's score that does not beat some baseline's
DELTA_N_CAVEAT = ("ΔN = (M(ground-truth actions) − M(random actions)) / M(random actions), in percent (method.md "
                  "10.3). Better is more negative for lower-is-better metrics and more positive for higher-is-better "
                  "ones. Caveat: the authors warn these numbers can be gamed, since a model whose quality collapses "
                  "under random actions gets larger deltas; read them beside the absolute scores above.")


def verdict(results: EvaluationResults) -> list[Block]:
    """One verdict per model source: beats every baseline, or the comparisons it does not win, each named."""
    blocks: list[Block] = [Heading("Verdict against the baselines")]
    found = comparisons(results)
    if not found:
        return blocks + [Paragraph("No comparison: no computed metric has both a model score and a baseline score.",
                                   "warn")]
    for model in dict.fromkeys(c.model.name for c in found):
        mine = [c for c in found if c.model.name == model]
        lost = [c for c in mine if not c.beats]
        if not lost:
            blocks.append(Paragraph(f"{model} beats every baseline on every computed metric ({len(mine)} "
                                    "comparisons).", "good"))
            continue
        blocks.append(Paragraph(f"{model} does not beat the baselines: it loses or ties {len(lost)} of {len(mine)} "
                                "comparisons.", "warn"))
        blocks.append(Bullets([_loss(c) for c in lost], "warn"))
    return blocks


def _loss(c: Comparison) -> str:
    unit = f" {c.metric.unit}" if c.metric.unit else ""
    return (f"{LOSES} {c.model.name} does not beat the baseline “{c.baseline.name}” on {c.metric.name}: "
            f"{format_value(c.model_value)}{unit} vs {format_value(c.baseline_value)}{unit} "
            f"({'higher' if c.metric.higher_is_better else 'lower'} is better)")


def score_table(results: EvaluationResults) -> list[Block]:
    """Every source's mean on every computed metric, the best of each column marked, and the model's losses."""
    blocks: list[Block] = [Heading("Scores")]
    metrics = computed(results)
    if not metrics:
        return blocks + [Paragraph("No metric was computed: see the skipped metrics below.", "warn")]
    lost = {(c.model.name, c.metric.name) for c in comparisons(results) if not c.beats}
    best = {m.name: best_value(results, m) for m in metrics}
    rows = []
    for source in results.sources:
        row = [Cell(source.name), Cell(source.kind)]
        for m in metrics:
            if m.name not in source.means:
                row.append(Cell("–", numeric=True))
                continue
            value = source.means[m.name]
            losing = (source.name, m.name) in lost
            mark = "loses" if losing else "best" if value == best[m.name] else ""
            row.append(Cell(format_value(value) + (f" {LOSES}" if losing else ""), mark, numeric=True))
        rows.append(row)
    legend = (f"Means over every scored frame ({results.windows} windows); for set metrics (FID, FVD) the distance "
              "over the pooled features. Bold: the best value of its column. –: not computed for that source.")
    if lost:
        legend += f" {LOSES}: the model does not beat a baseline on this metric (see the verdict)."
    skipped = [m.name for m in results.metrics if m.skipped is not None]
    if skipped:
        legend += f" Skipped, so not in this table: {', '.join(skipped)} (reasons below)."
    return blocks + [Table(["source", "kind"] + [metric_label(m) for m in metrics], rows, "scores", legend)]


def paired(results: EvaluationResults) -> list[Block]:
    """The model against each baseline window by window: the mean difference, its 95% interval, the windows won."""
    info = {m.name: m for m in results.metrics}
    rows = []
    for baseline, per_metric in results.paired.items():
        for name, values in per_metric.items():
            p, metric = PairedDifference(**values), info[name]
            worse = p.separated and (p.low > 0) != metric.higher_is_better  # the whole interval on the wrong side
            reading = "not separated: the interval includes 0" if not p.separated else \
                f"{LOSES} the model is worse" if worse else "the model is better"
            rows.append([Cell(baseline), Cell(metric_label(metric)), Cell(p.text(), "loses" if worse else "",
                                                                          numeric=True),
                         Cell(f"{p.wins} of {p.windows}", numeric=True), Cell(reading)])
    if not rows:
        return []
    legend = ("Model minus baseline on each window (its mean over the scored frames), averaged over the windows, with "
              "a 95% bootstrap interval from resampling the windows. A gap whose interval includes 0 is within what "
              "the choice of windows alone moves; more windows narrow it.")
    return [Heading("Window by window: the model against each baseline"),
            Table(["baseline", "metric", "model − baseline (95% interval)", "windows won by the model", "reading"],
                  rows, "paired", legend)]


def delta_n(results: EvaluationResults) -> list[Block]:
    """method.md 10.3's Delta-N per metric, whether its sign says the actions matter, and its caveat."""
    if not results.delta_n:
        return []
    info = {m.name: m for m in results.metrics}
    rows = []
    for name, value in results.delta_n.items():
        metric = info.get(name)
        if metric is None:
            rows.append([Cell(name), Cell(f"{value:+.2f}", numeric=True), Cell("unknown"), Cell("")])
            continue
        right_way = value > 0 if metric.higher_is_better else value < 0
        reading = ("the model scores better with the ground-truth actions" if right_way else
                   f"{LOSES} the model scores no better with the ground-truth actions than with random ones")
        better = f"more {'positive' if metric.higher_is_better else 'negative'} {direction(metric)}"
        rows.append([Cell(name), Cell(f"{value:+.2f}", "" if right_way else "loses", numeric=True), Cell(better),
                     Cell(reading)])
    return [Heading("Interactivity: ΔN (ground-truth vs random actions)"),
            Table(["metric", "ΔN (%)", "better is", "reading"], rows, "delta-n"), Paragraph(DELTA_N_CAVEAT)]


def action_accuracy(results: EvaluationResults) -> list[Block]:
    """The inverse-dynamics model's accuracy on real frames, on the model's frames, and chance."""
    acc = results.action_accuracy
    if not acc:
        return []
    labels = {"real": "real frames", "model": "model frames", "chance": "chance"}
    rows = [[Cell(label), Cell(f"{100 * acc[key]:.1f} %", numeric=True)] for key, label in labels.items() if key in acc]
    blocks: list[Block] = [Heading("Action accuracy (inverse dynamics)"), Table(["frames", "accuracy"], rows,
                                                                                "action-accuracy")]
    if "idm" in acc:
        blocks.append(Paragraph(f"Inverse-dynamics model: {acc['idm']}"))
    if "model" in acc and "chance" in acc and acc["model"] <= acc["chance"]:
        blocks.append(Paragraph(f"{LOSES} The inverse-dynamics model reads the actions from the model's frames no "
                                "better than chance: the frames do not show the actions taken.", "warn"))
    extra = {k: v for k, v in acc.items() if k not in labels and k != "idm"}
    if extra:
        blocks.append(Bullets([f"{k}: {v}" for k, v in extra.items()]))
    return blocks
