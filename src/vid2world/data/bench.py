"""Clip-loader throughput: clips per second through a DataLoader with N worker processes."""

from __future__ import annotations

import time
from pathlib import Path

from .clips import ClipConfig, ClipDataset, clip_loader
from .store import open_dataset
from .transforms import AugmentConfig, FrameLayout


def loader_throughput(root: str | Path, length: int = 16, batch: int = 8, workers: int = 2, batches: int = 50,
                      size: tuple[int, int] | None = None, augment: bool = True, seed: int = 0) -> dict[str, object]:
    """Time `batches` batches after one warm-up batch (worker start-up excluded)."""
    dataset = open_dataset(root)
    cfg = ClipConfig(length=length, split=None, layout=FrameLayout(size) if size else None,
                     augment=AugmentConfig() if augment else None)
    clips = ClipDataset(dataset, cfg, seed=seed)
    epochs = -(-(batches + 1) * batch // len(clips)) + 1
    seen, start, clip_count = 0, 0.0, 0
    for batch_data in clip_loader(clips, batch, workers=workers, seed=seed, epochs=epochs):
        seen += 1
        if seen == 1:
            start = time.perf_counter()
        else:
            clip_count += len(batch_data["frames"])
        if seen == batches + 1:
            break
    elapsed = time.perf_counter() - start
    return {"root": str(root), "length": length, "batch": batch, "workers": workers, "augment": augment,
            "size": list(size) if size else list(dataset.meta.frame_size), "clips": clip_count,
            "seconds": elapsed, "clips_per_s": clip_count / elapsed, "skipped_short": clips.skipped_short}
