"""Episodes' frames encoded once by a codec and kept in one float16 `.npy` beside a run, so a training loop that
reads them again (the zoo's stages, `vid2world distill`) does not encode again."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..io.atomic import atomic_file


@torch.no_grad()
def cached_latents(path: Path, episodes: Sequence[np.ndarray], encode: Callable[[np.ndarray], torch.Tensor]
                   ) -> list[np.ndarray]:
    """The latents [T, C, h, w] of every episode (uint8 frames [T, H, W, 3]), `encode(frames)` of each written
    once to `path` as float16 [all frames, C, h, w] and read from there afterwards."""
    lengths = [len(frames) for frames in episodes]
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        flat = np.concatenate([encode(frames).to(torch.float16).numpy() for frames in episodes])
        with atomic_file(path) as tmp, open(tmp, "wb") as f:
            np.save(f, flat)
    flat = np.load(path)
    if len(flat) != sum(lengths):
        raise ValueError(f"{path}: {len(flat)} latents for the {sum(lengths)} frames of these episodes (another "
                         "dataset's?); move it away")
    return np.split(flat, np.cumsum(lengths)[:-1])
