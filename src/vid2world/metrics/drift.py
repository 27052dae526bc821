"""Does a long rollout stay a game? Per-frame statistics that a collapse fails, pooled over blocks of frames and
held against the real game's (pure functions on uint8 frames [N, H, W, 3]).

- sharpness: variance of the grey image's Laplacian (blur drives it to 0, noise up);
- contrast: the grey image's standard deviation (a grey or black screen drives it to 0);
- change: mean absolute difference to the previous frame, in levels (a frozen picture drives it to 0);
- colour: the block's colour histogram (16 bins per channel) against the real block's, as total-variation
  distance in [0, 1] (a colour drift or a collapse to one colour raises it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

BINS = 16
STATISTICS = ("sharpness", "contrast", "change")  # compared as ratios to the real game's; colour as a distance


def _grey(frames: np.ndarray) -> np.ndarray:
    return frames.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def frame_statistics(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame sharpness, contrast and change (the first frame's change is that of the second)."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) < 2:
        raise ValueError(f"frames: expected [N >= 2, H, W, 3] uint8, got shape {frames.shape}")
    grey = _grey(frames)
    laplacian = (grey[:, :-2, 1:-1] + grey[:, 2:, 1:-1] + grey[:, 1:-1, :-2] + grey[:, 1:-1, 2:]
                 - 4 * grey[:, 1:-1, 1:-1])
    change = np.abs(np.diff(frames.astype(np.float64), axis=0)).mean(axis=(1, 2, 3))
    return {"sharpness": laplacian.var(axis=(1, 2)), "contrast": grey.std(axis=(1, 2)),
            "change": np.concatenate([change[:1], change])}


def colour_histogram(frames: np.ndarray) -> np.ndarray:
    """The frames' colour histogram [3, BINS], each channel's summing to 1."""
    bins = (frames.reshape(-1, 3).astype(np.int64) * BINS) // 256
    counts = np.stack([np.bincount(bins[:, c], minlength=BINS) for c in range(3)]).astype(np.float64)
    return counts / counts.sum(axis=1, keepdims=True)


def drift_report(model_frames: np.ndarray, real_frames: np.ndarray, block: int = 100,
                 tolerance: float = 0.2) -> dict[str, Any]:
    """Per block of `block` frames: each statistic's mean for the model and the real game, their ratio, and the
    colour distance; `last_block_ok` says whether the last block's ratios lie within 1 +- `tolerance` and its
    colour distance within `tolerance`."""
    n = min(len(model_frames), len(real_frames))
    if n < max(2, block):
        raise ValueError(f"frames: {n} in each sequence, fewer than one block of {block}")
    model_stats, real_stats = frame_statistics(model_frames[:n]), frame_statistics(real_frames[:n])
    rows = []
    for start in range(0, n - block + 1, block):
        part = slice(start, start + block)
        row: dict[str, Any] = {"frames": [start, start + block]}
        for name in STATISTICS:
            ours, theirs = float(model_stats[name][part].mean()), float(real_stats[name][part].mean())
            row[name] = {"model": ours, "real": theirs, "ratio": ours / theirs if theirs > 0 else float("inf")}
        distance = 0.5 * np.abs(colour_histogram(model_frames[part]) - colour_histogram(real_frames[part]))
        row["colour_distance"] = float(distance.sum(axis=1).mean())
        rows.append(row)
    last = rows[-1]
    ok = {name: abs(last[name]["ratio"] - 1) <= tolerance for name in STATISTICS}
    ok["colour"] = last["colour_distance"] <= tolerance
    return {"block": block, "tolerance": tolerance, "blocks": rows, "last_block": ok,
            "last_block_ok": all(ok.values())}


def format_drift(report: dict[str, Any]) -> str:
    """The report as a markdown table: one row per block, model / real for each statistic."""
    lines = ["| frames | sharpness (model / real) | contrast | change | colour distance |", "|---|---|---|---|---|"]
    for row in report["blocks"]:
        cells = [f"{row[n]['model']:.1f} / {row[n]['real']:.1f}" for n in STATISTICS]
        lines.append(f"| {row['frames'][0]}-{row['frames'][1] - 1} | " + " | ".join(cells)
                     + f" | {row['colour_distance']:.3f} |")
    verdict = "within" if report["last_block_ok"] else "NOT within"
    failed = [name for name, ok in report["last_block"].items() if not ok]  # idm_accuracy too, when measured
    lines.append(f"\nLast block {verdict} {report['tolerance']:.0%} of the real game"
                 + (f" (outside: {', '.join(failed)})" if failed else ""))
    return "\n".join(lines)
