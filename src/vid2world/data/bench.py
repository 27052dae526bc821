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


def index_scale(episodes: int = 100_000, length: int = 20, fetches: int = 2000, seed: int = 0) -> dict[str, object]:
    """Write a dataset of `episodes` tiny episodes (8 x 8 frames) into a temporary directory, then time opening it
    and fetching random training clips: what a 100k-episode index costs."""
    import tempfile

    import numpy as np

    from .spec import ActionSpec, DatasetMeta
    from .writer import DatasetWriter

    frames = np.zeros((length, 8, 8, 3), np.uint8)
    actions = np.zeros((length, 2), np.float32)
    actions[:, 0] = 1
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "index"
        start = time.perf_counter()
        with DatasetWriter(root, DatasetMeta("index-scale", 10.0, (8, 8), ActionSpec.one_hot(["a", "b"])),
                           shard_frames=65536) as writer:
            for _ in range(episodes):
                writer.add(frames, actions)
        written = time.perf_counter() - start
        start = time.perf_counter()
        dataset = open_dataset(root)
        opened = time.perf_counter() - start
        clips = ClipDataset(dataset, ClipConfig(length=min(16, length)), seed=seed)
        keys = np.random.default_rng(seed).integers(0, len(clips), fetches)
        start = time.perf_counter()
        for key in keys:
            clips[int(key)]
        fetch = (time.perf_counter() - start) / fetches
        index_bytes = (root / "episodes.json").stat().st_size
    return {"episodes": episodes, "length": length, "write_s": written, "open_s": opened,
            "index_bytes": index_bytes, "fetch_us": fetch * 1e6}
