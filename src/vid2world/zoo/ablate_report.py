"""What `vid2world zoo ablate` writes: ablations.json, a markdown table per comparison, per-horizon PSNR curves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..eval.paired import PairedDifference
from ..eval.report.plots import COLOURS
from ..io.atomic import atomic_file, write_text

SWEEP_TITLE = "(c) guidance scale"  # the guidance sweep's section, and its key in the summary's `paired`
COLUMNS = (("psnr", "PSNR (dB)", 2), ("ssim", "SSIM", 3), ("action_accuracy", "action accuracy", 3),
           ("psnr_other_actions", "PSNR, other actions (dB)", 2))


def _cell(spread: dict[str, float], digits: int) -> str:
    if not spread.get("n"):
        return "-"
    return f"{spread['mean']:.{digits}f} ± {spread['sd']:.{digits}f}"


def _table(rows: list[tuple[str, dict[str, Any]]]) -> list[str]:
    lines = ["| arm | " + " | ".join(label for _, label, _ in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(_cell(cell[key], d) for key, _, d in COLUMNS) + " |" for name, cell in rows]
    return lines


def _marked(pair: dict[str, Any], decimals: int) -> str:
    d = PairedDifference(**pair)
    return d.text(decimals) + (" *separated*" if d.separated else "")


def _paired_table(group: dict[str, Any], seeds: int) -> list[str]:
    """Each arm minus the comparison's reference on the same windows, with the 95% interval over the windows."""
    ref = group["reference"]
    lines = [f"Window by window against `{ref}` (each window's score averaged over the seeds first; 95% bootstrap "
             "interval over the windows, *separated* when it excludes 0; the seeds' own spread is the ± above and "
             "the last column):", "",
             f"| arm | PSNR - {ref} (dB) | windows ahead | SSIM - {ref} | seeds ahead (PSNR) |",
             "|---|---|---|---|---|"]
    for arm, pair in group["arms"].items():
        lines.append(f"| {arm} | {_marked(pair['psnr'], 2)} | {pair['psnr']['wins']} of {pair['psnr']['windows']} "
                     f"| {_marked(pair['ssim'], 3)} | {pair['seeds_ahead']} of {seeds} |")
    return lines + [""]


def markdown(summary: dict[str, Any], comparisons, sweep_arm: str) -> str:
    b, cells, g = summary["budget"], summary["cells"], summary["fast_guidance"]
    groups = summary.get("paired", {})  # absent from summaries written before the arms were paired

    def paired(title: str) -> list[str]:
        return _paired_table(groups[title], b["seeds"]) if title in groups else []

    lines = [f"# Ablations: {summary['recipe']}", "",
             f"Each run: {b['steps']} fine-tuning steps of {b['batch']} clips x {b['clip']} frames; {b['seeds']} seeds "
             f"per arm; scored on {b['windows']} held-out windows with {summary['sampling']['steps']} DDIM steps "
             f"({summary['sampling']['precision']}). Mean ± sd over the seeds.", ""]
    for title, arms in comparisons:
        rows = [(a, cells[f"{a}@{g:g}"]) for a in arms if f"{a}@{g:g}" in cells]
        if len(rows) > 1:
            lines += [f"## {title} (guidance {g:g})", "", *_table(rows), "", *paired(title)]
    sweep = sorted((k for k in cells if k.startswith(f"{sweep_arm}@")), key=lambda k: float(k.split("@")[1]))
    if len(sweep) > 1:
        lines += [f"## {SWEEP_TITLE} ({sweep_arm} arm; 1 = no guidance)", "",
                  *_table([(f"guidance {k.split('@')[1]}", cells[k]) for k in sweep]), "", *paired(SWEEP_TITLE)]
    lines += ["Arms: " + "; ".join(f"`{a}`: {d}" for a, d in summary["arms"].items()) + ".", ""]
    return "\n".join(lines)


def plot(summary: dict[str, Any], comparisons, path: Path) -> None:
    """Per-horizon PSNR, one panel per comparison, each arm's mean over the seeds a line."""
    from matplotlib.figure import Figure

    g, cells = summary["fast_guidance"], summary["cells"]
    panels = [(t, [a for a in arms if f"{a}@{g:g}" in cells]) for t, arms in comparisons]
    panels = [(t, arms) for t, arms in panels if len(arms) > 1]
    if not panels:
        return
    fig = Figure(figsize=(4.2 * len(panels), 3.4), dpi=100, layout="constrained")
    for i, (title, arms) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        for j, arm in enumerate(arms):
            values = cells[f"{arm}@{g:g}"]["psnr_per_horizon"]
            ax.plot(range(1, len(values) + 1), values, label=arm, color=COLOURS[j % len(COLOURS)], marker="o",
                    markersize=3)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("predicted frame")
        ax.set_ylabel("PSNR (dB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})


def write_summary(out: Path, summary: dict[str, Any], comparisons, sweep_arm: str) -> None:
    write_text(out / "ablations.json", json.dumps(summary, indent=1))
    write_text(out / "ablations.md", markdown(summary, comparisons, sweep_arm))
    plot(summary, comparisons, out / "per-horizon.png")
