"""`vid2world data export --format lerobot`: a dataset as a LeRobot v3.0 dataset (`data/lerobot_layout.py`), so our
recordings open in LeRobot's tools: one camera stream (all episodes in one mp4 per 'chunk-000/file-000', at the
dataset's fps, each episode's place in it in the episodes table), actions as `action`, the state as
`observation.state`, one task. Frames are encoded losslessly by default (H.264 in RGB, qp 0: an import gives
back exactly the frames exported); `lossless=False` writes LeRobot's usual yuv420p (smaller, not exact).
Our action layout (groups, one-hot / multi-hot) rides along in info.json under "vid2world", which LeRobot ignores.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..io.atomic import AtomicDirectory
from ..io.progress import progress_bar
from .lerobot_layout import (CODEBASE_VERSION, DATA_PATH, DEFAULT_FEATURES, EPISODES_PATH, STATS_PATH, TASKS_PATH,
                             VIDEO_PATH, pandas_index_metadata)
from .store import Dataset

QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)


def _stats(x: np.ndarray) -> dict[str, Any]:
    """LeRobot's per-feature statistics of values [N, D]: min, max, mean, std, count and quantiles."""
    x = x.astype(np.float64).reshape(len(x), -1)
    out = {"min": x.min(0), "max": x.max(0), "mean": x.mean(0), "std": x.std(0)}
    out.update({f"q{int(q * 100):02d}": np.quantile(x, q, axis=0) for q in QUANTILES})
    return {**{k: v.tolist() for k, v in out.items()}, "count": [len(x)]}


def _video_stats(samples: np.ndarray) -> dict[str, Any]:
    """Per-channel statistics of frames [N, H, W, 3] scaled to [0, 1], each of shape [3, 1, 1]."""
    pixels = samples.reshape(-1, 3).astype(np.float64) / 255.0
    stats = _stats(pixels)
    stats.pop("count")
    return {**{k: [[[v]] for v in values] for k, values in stats.items()}, "count": [len(samples)]}


def _encode(frames_of, lengths: list[int], path: Path, fps: float, lossless: bool, progress: bool) -> None:
    """Every episode's frames, in order, into one mp4 (frame k of the file at k / fps)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1000)
    with av.open(str(path), "w", format="mp4") as container:
        stream = None
        for e in progress_bar(range(len(lengths)), desc="encoding", unit="episode", enabled=progress):
            frames = frames_of(e)
            if stream is None:
                stream = container.add_stream("libx264rgb" if lossless else "libx264", rate=rate)
                stream.height, stream.width = frames.shape[1:3]
                stream.pix_fmt = "rgb24" if lossless else "yuv420p"
                stream.options = {"qp": "0", "g": "2"} if lossless else {"crf": "23", "g": "2"}
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _vector(values: np.ndarray):
    import pyarrow as pa

    values = np.ascontiguousarray(values, np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])


def _write_parquet(table, path: Path) -> None:
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="snappy")


def export_lerobot(ds: Dataset, out: str | Path, camera: str = "observation.image", task: str = "",
                   lossless: bool = True, robot_type: str | None = None, progress: bool = True) -> Path:
    import pyarrow as pa

    meta, episodes = ds.meta, list(range(len(ds)))
    lengths = [int(ds.lengths[e]) for e in episodes]
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    total, fps = int(starts[-1]), float(meta.fps)
    h, w = meta.frame_size
    with AtomicDirectory(out) as directory:
        root = directory.path
        loc = {"chunk_index": 0, "file_index": 0}
        _encode(lambda e: np.asarray(ds.episode(e).frames), lengths, root / VIDEO_PATH.format(video_key=camera, **loc),
                fps, lossless, progress)
        frame_index = np.concatenate([np.arange(n) for n in lengths]).astype(np.int64)
        columns = {"timestamp": pa.array((frame_index / fps).astype(np.float32)),
                   "frame_index": pa.array(frame_index), "episode_index": pa.array(np.repeat(episodes, lengths)
                                                                                    .astype(np.int64)),
                   "index": pa.array(np.arange(total, dtype=np.int64)),
                   "task_index": pa.array(np.zeros(total, np.int64))}
        features: dict[str, Any] = {camera: _video_feature(h, w, fps, lossless)}
        stats: dict[str, Any] = {}
        for key, kind, names in (("action", "actions", meta.actions.names if meta.actions else ()),
                                 ("observation.state", "state", meta.state)):
            if names:
                values = np.concatenate([getattr(ds.episode(e), kind) for e in episodes])
                columns[key] = _vector(values)
                features[key] = {"dtype": "float32", "shape": [len(names)], "names": list(names)}
                stats[key] = _stats(values)
        features.update(DEFAULT_FEATURES)
        for key in DEFAULT_FEATURES:
            stats[key] = _stats(columns[key].to_numpy(zero_copy_only=False))
        sample = np.stack([ds.episode(e).frames[0] for e in episodes[:: max(1, len(episodes) // 64)]])
        stats[camera] = _video_stats(sample)
        _write_parquet(pa.table(columns), root / DATA_PATH.format(**loc))
        _write_parquet(_episodes_table(camera, lengths, starts, fps, task), root / EPISODES_PATH.format(**loc))
        tasks = pa.table({"task_index": pa.array([0], pa.int64()), "task": pa.array([task])})
        _write_parquet(tasks.replace_schema_metadata({b"pandas": pandas_index_metadata(
            "task", [("task_index", "int64"), ("task", "unicode")])}), root / TASKS_PATH)
        (root / STATS_PATH).write_text(json.dumps(stats, indent=1))
        info = {"codebase_version": CODEBASE_VERSION, "robot_type": robot_type, "total_episodes": len(episodes),
                "total_frames": total, "total_tasks": 1, "chunks_size": 1000, "data_files_size_in_mb": 100,
                "video_files_size_in_mb": 200, "fps": fps, "splits": {"train": f"0:{len(episodes)}"},
                "data_path": DATA_PATH, "video_path": VIDEO_PATH, "features": features,
                "vid2world": {"actions": meta.actions.to_dict() if meta.actions else None,
                              "episode_names": ds.names, "splits": ds.splits, "source": meta.source}}
        (root / "meta" / "info.json").write_text(json.dumps(info, indent=1))
    return Path(out)


def _video_feature(h: int, w: int, fps: float, lossless: bool) -> dict[str, Any]:
    return {"dtype": "video", "shape": [h, w, 3], "names": ["height", "width", "channels"],
            "info": {"video.height": h, "video.width": w, "video.codec": "h264",
                     "video.pix_fmt": "gbrp" if lossless else "yuv420p", "video.is_depth_map": False,
                     "video.fps": fps, "video.channels": 3, "has_audio": False, "is_depth_map": False}}


def _episodes_table(camera: str, lengths: list[int], starts: np.ndarray, fps: float, task: str):
    import pyarrow as pa

    n, zeros = len(lengths), np.zeros(len(lengths), np.int64)
    key = f"videos/{camera}"
    return pa.table({"episode_index": pa.array(np.arange(n, dtype=np.int64)),
                     "tasks": pa.array([[task]] * n, pa.list_(pa.string())),
                     "length": pa.array(np.asarray(lengths, np.int64)),
                     "data/chunk_index": pa.array(zeros), "data/file_index": pa.array(zeros),
                     "dataset_from_index": pa.array(starts[:-1]), "dataset_to_index": pa.array(starts[1:]),
                     f"{key}/chunk_index": pa.array(zeros), f"{key}/file_index": pa.array(zeros),
                     f"{key}/from_timestamp": pa.array(starts[:-1] / fps),
                     f"{key}/to_timestamp": pa.array(starts[1:] / fps),
                     "meta/episodes/chunk_index": pa.array(zeros), "meta/episodes/file_index": pa.array(zeros)})
