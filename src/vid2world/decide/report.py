"""What `policy-eval` writes: results.json, report.md, a plot of imagined against real returns, and videos of
each policy's first episodes, real beside imagined."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..io.atomic import atomic_file, write_text
from ..io.outputs import OutputDirectory
from ..io.video import upscale, write_video
from .rollouts import Episodes

COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")


def _interval(stat: dict[str, float], digits: int = 2) -> str:
    return f"{stat['value']:.{digits}f} ({stat['low']:.{digits}f} to {stat['high']:.{digits}f})"


def markdown(results: dict[str, Any]) -> str:
    cfg, gate = results["config"], results["gate"]
    outcome = results.get("outcome", {"label": "return", "reader": "outcome head"})
    label, reader = outcome["label"], outcome["reader"]
    lines = [f"# Policy evaluation: {results.get('model', '?')} on {cfg['env']}", "",
             f"{cfg['episodes']} episodes per policy from the same seeded starts (seed {cfg['seed']}), "
             f"{cfg['context']} context frames, {cfg['horizon']} steps; scored by {label}, the imagined one the "
             f"{reader}'s reading of the imagined frames.", "",
             f"Action gate: the model's frames change with the actions {gate['ratio']:.2f}x as much as with the "
             f"noise (threshold {gate['threshold']}): **{'passed' if gate['passed'] else 'FAILED'}**.", ""]
    if "policies" not in results:
        return "\n".join(lines + ["No policy was evaluated: the model does not respond to actions."]) + "\n"
    lines += [f"| policy | real {label} | {reader} on real frames | imagined {label} |", "|---|---|---|---|"]
    for row in results["policies"]:
        lines.append(f"| {row['policy']} | {row['real_mean']:.2f} | {row['head_on_real_mean']:.2f} | "
                     f"{row['imagined_mean']:.2f} |")
    lines += ["", f"| agreement with the real {label} (95% bootstrap interval) | imagined | {reader} on real frames |",
              "|---|---|---|"]
    for name in results["agreement"]:
        lines.append(f"| {name} | {_interval(results['agreement'][name])} | "
                     f"{_interval(results['agreement_head_on_real'][name])} |")
    held = outcome.get("heldout") or {}
    if "accuracy" in held:
        lines += ["", f"The outcome head on held-out real transitions: accuracy {held['accuracy']:.3f}, per-episode "
                  f"return Pearson {held.get('return_pearson') or float('nan'):.2f} (`head.json`)."]
    elif "position_px" in held:
        lines += ["", f"The pose reader on held-out real frames: the block's position off by "
                  f"{held['position_px']['mean']:.1f} px on average (`head.json`)."]
    lines += ["", f"![imagined against real {label}](returns.png)", ""]
    return "\n".join(lines)


def plot(results: dict[str, Any], path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.8, 4.2), dpi=110)
    ax = fig.add_subplot()
    rows = results["policies"]
    for i, row in enumerate(rows):
        ax.scatter(row["real_mean"], row["imagined_mean"], color=COLOURS[i % len(COLOURS)], label=row["policy"])
    values = [r[k] for r in rows for k in ("real_mean", "imagined_mean")]
    pad = max(0.5, 0.05 * (max(values) - min(values)))
    low, high = min(values) - pad, max(values) + pad
    ax.plot([low, high], [low, high], color="#999999", linewidth=0.8, linestyle="--")
    rho = results["agreement"]["spearman"]["value"]
    label = results.get("outcome", {}).get("label", "return")
    ax.set(xlabel=f"real {label} (game)", ylabel=f"imagined {label}",
           title=f"{results['config']['env']}: Spearman {rho:.2f}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})


def save_runs(out: OutputDirectory, runs: dict[str, tuple[Episodes, Episodes]]) -> None:
    """Every policy's episodes, real and imagined, in `episodes/NAME.npz` (a new head can score them again)."""
    for name, (real, imagined) in runs.items():
        with atomic_file(out.file(f"episodes/{_file_name(name)}.npz")) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, real_frames=real.frames, real_actions=real.actions, real_rewards=real.rewards,
                                real_alive=real.alive, imagined_frames=imagined.frames,
                                imagined_actions=imagined.actions,
                                **({} if real.states is None else {"real_states": real.states}))


def load_runs(directory: Path, names: list[str]) -> dict[str, tuple[Episodes, Episodes]]:
    runs = {}
    for name in names:
        path = directory / "episodes" / f"{_file_name(name)}.npz"
        if not path.is_file():
            raise FileNotFoundError(f"--rescore {directory}: no saved episodes of policy {name!r} ({path})")
        with np.load(path) as z:
            alive = z["real_alive"]
            states = z["real_states"] if "real_states" in z else None
            runs[name] = (Episodes(z["real_frames"], z["real_actions"], z["real_rewards"], alive, states),
                          Episodes(z["imagined_frames"], z["imagined_actions"], None, np.ones_like(alive)))
    return runs


def _file_name(policy: str) -> str:
    return policy.replace("/", "_").replace(":", "_")


def write_outputs(out: OutputDirectory, results: dict[str, Any], runs: dict[str, tuple[Episodes, Episodes]],
                  videos: int) -> None:
    write_text(out.file("results.json"), json.dumps(results, indent=1))
    if "policies" in results:
        plot(results, out.file("returns.png"))
    write_text(out.file("report.md"), markdown(results))
    for name, (real, imagined) in runs.items():
        for e in range(min(videos, len(real.frames))):
            pair = np.concatenate([real.frames[e], imagined.frames[e]], axis=2)  # real left, imagined right
            write_video(upscale(pair, 4), out.file(f"videos/{_file_name(name)}-{e}.mp4"), fps=8)
