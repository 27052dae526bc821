"""Clip-loader throughput: clips per second through a DataLoader with N worker processes."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..data.clips import ClipConfig, ClipDataset, clip_loader
from ..data.store import open_dataset
from ..data.transforms import AugmentConfig, FrameLayout
from ..io.args import add_json_flag, frame_size, non_negative_int, positive_int, write_json


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

    from ..data.spec import ActionSpec, DatasetMeta
    from ..data.writer import DatasetWriter

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


def _bench_loader(args: argparse.Namespace) -> int:
    result = loader_throughput(args.data, length=args.length, batch=args.batch, workers=args.workers,
                               batches=args.batches, size=args.size, augment=not args.no_augment)
    print(f"{result['clips_per_s']:.1f} clips/s ({result['clips']} clips of {result['length']} frames at "
          f"{result['size'][0]}x{result['size'][1]}, batch {result['batch']}, {result['workers']} workers, "
          f"augment {result['augment']}; {result['skipped_short']} episodes shorter than a clip skipped)")
    write_json(args.json, result)
    return 0


def _bench_index(args: argparse.Namespace) -> int:
    r = index_scale(episodes=args.episodes, length=args.length)
    print(f"{r['episodes']} episodes of {r['length']} frames: written in {r['write_s']:.2f} s, opened in "
          f"{1000 * r['open_s']:.0f} ms ({r['index_bytes'] / 1e6:.1f} MB index), {r['fetch_us']:.0f} us per clip")
    write_json(args.json, r)
    return 0


def register(bench_sub) -> None:
    """The `bench loader` and `bench index` commands."""
    loader = bench_sub.add_parser("loader", help="clip-loader throughput in clips/s")
    loader.add_argument("--data", required=True, help="dataset directory")
    loader.add_argument("--length", type=positive_int, default=16, help="frames per clip (default: 16)")
    loader.add_argument("--batch", type=positive_int, default=8, help="clips per batch (default: 8)")
    loader.add_argument("--workers", type=non_negative_int, default=2, help="DataLoader worker processes (default: 2)")
    loader.add_argument("--batches", type=positive_int, default=50, help="timed batches (default: 50)")
    loader.add_argument("--size", type=frame_size, help="resize clips to this size, e.g. 64 or 320x512")
    loader.add_argument("--no-augment", action="store_true", help="skip colour jitter and shift")
    add_json_flag(loader)
    loader.set_defaults(func=_bench_loader)

    index = bench_sub.add_parser("index", help="dataset index at scale: write, open and fetch with many episodes")
    index.add_argument("--episodes", type=positive_int, default=100_000, help="episodes (default: 100000)")
    index.add_argument("--length", type=positive_int, default=20,
                       help="frames per episode, 8 x 8 pixels (default: 20)")
    add_json_flag(index)
    index.set_defaults(func=_bench_index)
