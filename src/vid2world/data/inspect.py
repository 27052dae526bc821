"""Looking at a dataset: `info` (counts, lengths, action statistics) and `preview` (a video grid with the actions
written under each frame)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ..io.outputs import check_output_file
from ..io.video import write_video
from .store import Dataset


def dataset_info(dataset: Dataset, max_frames: int = 1_000_000) -> dict[str, Any]:
    """Counts per split, episode lengths, and per-action statistics over up to `max_frames` frames."""
    lengths = dataset.lengths
    splits = {s: int(sum(1 for x in dataset.splits if x == s)) for s in sorted(set(dataset.splits))}
    info: dict[str, Any] = {
        "root": str(dataset.root), "name": dataset.meta.name, "source": dataset.meta.source, "fps": dataset.meta.fps,
        "frame_size": list(dataset.meta.frame_size), "episodes": len(dataset), "frames": int(lengths.sum()),
        "splits": splits, "shards": len(dataset.shards),
        "length": {"min": int(lengths.min()), "mean": float(lengths.mean()), "max": int(lengths.max())}
        if len(lengths) else {},
        "action_dim": dataset.meta.action_dim, "actions": []}
    spec = dataset.meta.actions
    if spec is None or len(dataset) == 0:
        return info
    chunks, seen = [], 0
    for i in range(len(dataset)):
        chunks.append(np.asarray(dataset.episode(i).actions))
        seen += len(chunks[-1])
        if seen >= max_frames:
            break
    actions = np.concatenate(chunks)
    _refuse_non_finite(dataset, actions, seen < dataset.num_frames)
    info["action_frames"] = int(len(actions))
    for g, cols in spec.slices():
        part = actions[:, cols]
        entry: dict[str, Any] = {"group": g.name, "kind": g.kind}
        if g.kind == "continuous":
            entry["stats"] = {label: {"mean": float(part[:, j].mean()), "std": float(part[:, j].std()),
                                      "min": float(part[:, j].min()), "max": float(part[:, j].max())}
                              for j, label in enumerate(g.labels)}
        else:
            entry["frequency"] = {label: float(part[:, j].mean()) for j, label in enumerate(g.labels)}
        info["actions"].append(entry)
    return info


def _refuse_non_finite(dataset: Dataset, actions: np.ndarray, partial: bool) -> None:
    """NaN or inf actions make every statistic NaN and every batch that holds them fail in training: an error
    naming each such column, its count and where it first occurs, instead of a report of "nan%"."""
    found = dataset.meta.actions.non_finite(actions)
    if not found:
        return
    starts = np.concatenate([[0], np.cumsum(dataset.lengths)])  # the episodes were read in order, from 0
    problems = []
    for name, count, row in found:
        i = int(np.searchsorted(starts, row, side="right")) - 1
        plural = "s" if count > 1 else ""
        problems.append(f"action column {name!r} holds {count} non-finite value{plural} (NaN or inf), the "
                        f"first at episode {i} ({dataset.names[i]!r}) step {row - int(starts[i])}")
    scope = f" in the first {len(actions)} frames" if partial else ""
    raise ValueError(f"{dataset.root}: " + "; ".join(problems) + f"{scope}; actions must be finite numbers")


def format_info(info: dict[str, Any]) -> str:
    lines = [f"{info['root']}: {info['name']} from {info['source'] or '?'}",
             f"  {info['episodes']} episodes, {info['frames']} frames at {info['fps']:g} fps, "
             f"{info['frame_size'][0]}x{info['frame_size'][1]}, {info['shards']} shards",
             "  splits: " + ", ".join(f"{k} {v}" for k, v in info["splits"].items())]
    if info["length"]:
        lengths = info["length"]
        lines.append(f"  episode length: min {lengths['min']}, mean {lengths['mean']:.1f}, max {lengths['max']}")
    lines.append(f"  actions: {info['action_dim']}-d" + ("" if info["action_dim"] else " (action-free video)"))
    for entry in info["actions"]:
        if entry["kind"] == "continuous":
            for label, s in entry["stats"].items():
                lines.append(f"    {entry['group']}.{label:<12} mean {s['mean']:+.3f} std {s['std']:.3f} "
                             f"range [{s['min']:+.3f}, {s['max']:+.3f}]")
        else:
            freq = " ".join(f"{label}:{100 * p:.0f}%" for label, p in entry["frequency"].items())
            lines.append(f"    {entry['group']} ({entry['kind']}): {freq}")
    return "\n".join(lines)


def preview_frames(dataset: Dataset, episodes: list[int], frames: int, scale: int = 2) -> np.ndarray:
    """A grid video [T, H', W', 3]: one tile per episode, the action taken at each frame written under it."""
    spec = dataset.meta.actions
    h, w = dataset.meta.frame_size
    tile_h, tile_w = h * scale + 14, w * scale
    cols = int(np.ceil(np.sqrt(len(episodes))))
    rows = int(np.ceil(len(episodes) / cols))
    length = min(frames, max(int(dataset.lengths[i]) for i in episodes))
    grid = np.zeros((length, rows * tile_h, cols * tile_w, 3), np.uint8)
    for k, i in enumerate(episodes):
        ep = dataset.episode(i)
        r, c = divmod(k, cols)
        for t in range(min(length, len(ep.frames))):
            tile = Image.new("RGB", (tile_w, tile_h))
            tile.paste(Image.fromarray(np.asarray(ep.frames[t])).resize((tile_w, h * scale), Image.NEAREST))
            text = f"{ep.name[-10:]} t{t}" if spec is None else spec.describe(np.asarray(ep.actions[t]))
            ImageDraw.Draw(tile).text((2, h * scale + 2), text[: max(4, tile_w // 6)], fill=(255, 255, 0))
            grid[t, r * tile_h:(r + 1) * tile_h, c * tile_w:(c + 1) * tile_w] = np.asarray(tile)
    return grid


def write_preview(dataset: Dataset, out: str | Path, episodes: int = 4, frames: int = 64, scale: int = 2,
                  seed: int = 0, overwrite: bool = False) -> Path:
    """Write an mp4 or GIF (by suffix) of up to `episodes` episodes, chosen with `seed`; an existing `out` is
    replaced only with `overwrite`."""
    check_output_file(out, overwrite)
    for name, value in (("episodes", episodes), ("frames", frames), ("scale", scale)):
        if value < 1:
            raise ValueError(f"preview: {name} must be >= 1, got {value}")
    if len(dataset) == 0:
        raise ValueError(f"{dataset.root}: the dataset has no episodes")
    chosen = np.random.default_rng(seed).choice(len(dataset), size=min(episodes, len(dataset)), replace=False)
    fps = max(1, round(dataset.meta.fps))
    return write_video(preview_frames(dataset, sorted(chosen.tolist()), frames, scale), out, fps=fps)
