"""The videos an evaluation writes: ground truth | prediction side by side, and the counterfactual grid (one start,
several action sequences), each frame labelled so a viewer knows what is what."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..io.video import upscale, write_video

LABEL_HEIGHT = 14
MIN_HEIGHT = 128  # small worlds are scaled up (nearest neighbour) to at least this many rows


def scale_for(height: int) -> int:
    return max(1, -(-MIN_HEIGHT // height))


def labelled(frames: np.ndarray, label: str, scale: int) -> np.ndarray:
    """uint8 [T, H, W, 3] scaled up by `scale`, with `label` written in a black band above: [T, H', W', 3]."""
    big = upscale(frames, scale)
    band = Image.new("RGB", (big.shape[2], LABEL_HEIGHT), "black")
    ImageDraw.Draw(band).text((2, 1), label, fill="white")
    return np.concatenate([np.broadcast_to(np.asarray(band), (len(big), *np.asarray(band).shape)), big], axis=1)


def side_by_side(truth: np.ndarray, prediction: np.ndarray, context: int) -> np.ndarray:
    """Ground truth | prediction, [T, H', 2W' + gap, 3]; frames before `context` are the given ones in both."""
    scale = scale_for(truth.shape[1])
    left, right = labelled(truth, "ground truth", scale), labelled(prediction, "prediction", scale)
    gap = np.zeros((*left.shape[:2], 4, 3), np.uint8)
    out = np.concatenate([left, gap, right], axis=2)
    out[:context, -3:] = (255, 200, 0)  # a yellow bottom rule while the frames are given, not generated
    return out


def grid(cells: list[np.ndarray], labels: list[str], columns: int | None = None) -> np.ndarray:
    """Videos [T, H, W, 3] of one length as a labelled grid [T, rows * H', columns * W', 3]."""
    columns = columns or int(np.ceil(np.sqrt(len(cells))))
    scale = scale_for(cells[0].shape[1])
    tiles = [labelled(c, label, scale) for c, label in zip(cells, labels)]
    blank = np.zeros_like(tiles[0])
    tiles += [blank] * (-len(tiles) % columns)
    rows = [np.concatenate(tiles[i:i + columns], axis=2) for i in range(0, len(tiles), columns)]
    return np.concatenate(rows, axis=1)


def write_pair(path: Path, truth: np.ndarray, prediction: np.ndarray, context: int, fps: int = 4) -> Path:
    return write_video(side_by_side(truth, prediction, context), path, fps=fps)


def write_grid(path: Path, cells: list[np.ndarray], labels: list[str], fps: int = 4) -> Path:
    return write_video(grid(cells, labels), path, fps=fps)
