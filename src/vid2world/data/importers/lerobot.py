"""LeRobot v3.0 datasets (`meta/info.json`, frames and episodes in parquet, camera streams in mp4;
`data/lerobot_layout.py`) into the dataset format: one camera's frames (decoded with PyAV at the times LeRobot
decodes them: the episode's `from_timestamp` in its mp4 plus the row's `timestamp`), `action` as continuous
actions, `observation.state` as the per-frame state, LeRobot's episode boundaries, fps and splits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..lerobot_layout import EPISODE_COLUMNS, INFO_PATH, TOLERANCE_S, feature_names, read_info, video_keys
from ..spec import ActionSpec, DatasetMeta
from .common import DataImportError, SourceEpisode, import_episodes, read_split_file


def _pyarrow():
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError("LeRobot datasets need pyarrow: pip install 'vid2world[lerobot]'") from None
    return pq


def read_columns(directory: Path, what: str) -> dict[str, np.ndarray]:
    """Every `*/*.parquet` under `directory` in LeRobot's order (sorted paths), as numpy columns (a vector
    column as [rows, n])."""
    pq = _pyarrow()
    files = sorted(directory.glob("*/*.parquet"))
    if not files:
        raise FileNotFoundError(f"{directory}: no parquet files ({what}: chunk-XXX/file-XXX.parquet)")
    import pyarrow as pa

    table = pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")
    out = {}
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        if pa.types.is_fixed_size_list(column.type) or pa.types.is_list(column.type):
            values = column.flatten().to_numpy(zero_copy_only=False)
            out[name] = values.reshape(len(column), -1) if len(column) else values.reshape(0, 0)
        else:
            out[name] = column.to_numpy(zero_copy_only=False)
    return out


def _split_of(info: dict[str, Any], held_out: set[str]) -> dict[int, str]:
    """Episode -> split from info.json's "splits" ({"train": "0:80", "test": "80:100"}); a split file's names
    (episode_000012) override them as "test"."""
    splits = {}
    for name, span in (info.get("splits") or {}).items():
        lo, _, hi = str(span).partition(":")
        for e in range(int(lo or 0), int(hi or info["total_episodes"])):
            splits[e] = name
    return {e: ("test" if f"episode_{e:06d}" in held_out else splits.get(e, "train"))
            for e in range(int(info["total_episodes"]))}


def decode_times(path: Path, start: float, count: int, fps: float) -> np.ndarray:
    """`count` frames of the mp4 at `path` at times start + k / fps (each within LeRobot's tolerance), uint8."""
    import av

    if not path.is_file():
        raise FileNotFoundError(f"{path}: the episode's video is missing")
    wanted = start + np.arange(count) / fps
    frames: list[np.ndarray | None] = [None] * count
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        container.seek(max(0, int(start / stream.time_base)), stream=stream, backward=True)
        for frame in container.decode(stream):
            t = float(frame.pts * stream.time_base)
            if t > wanted[-1] + TOLERANCE_S:
                break
            k = int(round((t - start) * fps))
            if 0 <= k < count and abs(t - wanted[k]) <= TOLERANCE_S:
                frames[k] = frame.to_ndarray(format="rgb24")
    missing = [k for k, f in enumerate(frames) if f is None]
    if missing:
        raise ValueError(f"{path}: no frame at {wanted[missing[0]]:.4f} s (frame {missing[0]} of an episode "
                         f"from {start:.4f} s; {len(missing)} of {count} missing)")
    return np.stack(frames)


class LeRobotSource:
    """The columns of a LeRobot dataset, and one episode's frames, actions and state from them."""

    def __init__(self, root: Path, camera: str | None) -> None:
        self.root, self.info = root, read_info(root)
        cameras = video_keys(self.info)
        if not cameras:
            raise DataImportError(f"{root / INFO_PATH}: no video feature (dtype 'video'); datasets that keep "
                                  "images inside the parquet are not read yet")
        if camera is not None and camera not in cameras:
            raise ValueError(f"--camera {camera}: not a video feature of {root}; it has {cameras}")
        self.camera, self.fps = camera or cameras[0], float(self.info["fps"])
        self.episodes = read_columns(root / "meta" / "episodes", "episodes metadata")
        needed = [*EPISODE_COLUMNS, f"videos/{self.camera}/chunk_index", f"videos/{self.camera}/file_index",
                  f"videos/{self.camera}/from_timestamp"]
        missing = [c for c in needed if c not in self.episodes]
        if missing:
            raise ValueError(f"{root / 'meta' / 'episodes'}: columns {missing} missing")
        self.data = read_columns(root / "data", "frames")
        for column in ("episode_index", "frame_index", "timestamp", "index"):
            if column not in self.data:
                raise ValueError(f"{root / 'data'}: column {column!r} missing")

    def episode(self, row: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        e = int(self.episodes["episode_index"][row])
        lo, hi = int(self.episodes["dataset_from_index"][row]), int(self.episodes["dataset_to_index"][row])
        at = np.searchsorted(self.data["index"], [lo, hi])
        if at[1] - at[0] != hi - lo or hi <= lo:
            raise ValueError(f"{self.root / 'data'}: episode {e} spans index {lo}..{hi}, the frames hold "
                             f"{at[1] - at[0]} of those rows")
        rows = slice(int(at[0]), int(at[1]))
        if not (self.data["episode_index"][rows] == e).all():
            raise ValueError(f"{self.root / 'data'}: rows {lo}..{hi} of episode {e} carry episode_index "
                             f"{sorted(set(self.data['episode_index'][rows].tolist()))[:3]}")
        stamps, count = self.data["timestamp"][rows].astype(np.float64), hi - lo
        gap = np.flatnonzero(np.abs(stamps - np.arange(count) / self.fps) > TOLERANCE_S)
        if gap.size:
            raise ValueError(f"{self.root / 'data'}: episode {e}, frame {int(gap[0])}: timestamp "
                             f"{stamps[gap[0]]:.4f} s, expected {gap[0] / self.fps:.4f} s at {self.fps:g} fps "
                             "(a gap or a duplicated frame)")
        key = f"videos/{self.camera}"
        video = self.root / self.info["video_path"].format(video_key=self.camera,
                                                           chunk_index=int(self.episodes[f"{key}/chunk_index"][row]),
                                                           file_index=int(self.episodes[f"{key}/file_index"][row]))
        frames = decode_times(video, float(self.episodes[f"{key}/from_timestamp"][row]), count, self.fps)
        actions = self.data["action"][rows].astype(np.float32) if "action" in self.data else None
        state = self.data["observation.state"][rows].astype(np.float32) if "observation.state" in self.data \
            else None
        return frames, actions, state


def import_lerobot(src: str | Path, out: str | Path, size: tuple[int, int] | None = None, skip_bad: bool = False,
                   split_file: str | Path | None = None, progress: bool = True, camera: str | None = None):
    source = LeRobotSource(Path(src), camera)
    info = source.info
    has = lambda key: key in info["features"]  # noqa: E731
    ours = info.get("vid2world") or {}  # what `data export` keeps of our own layout (LeRobot ignores it)
    actions = ActionSpec.continuous(feature_names(info, "action")) if has("action") else None
    if actions is not None and ours.get("actions"):
        actions = ActionSpec.from_dict(ours["actions"])
    state = tuple(feature_names(info, "observation.state")) if has("observation.state") else ()
    meta = DatasetMeta(Path(src).resolve().name, source.fps, (0, 0), actions, source=f"lerobot:{Path(src).resolve()}",
                       extra={"lerobot": {"camera": source.camera, "robot_type": info.get("robot_type"),
                                          "codebase_version": info["codebase_version"]}}, state=state)
    splits = _split_of(info, read_split_file(split_file))
    names = ours.get("episode_names") or []
    if len(names) == len(splits) and len(ours.get("splits") or []) == len(splits) and split_file is None:
        splits = dict(enumerate(ours["splits"]))
    sources = [SourceEpisode(names[int(e)] if len(names) == len(splits) else f"episode_{int(e):06d}", Path(src),
                             splits.get(int(e), "train"), lambda row=row: source.episode(row))
               for row, e in enumerate(source.episodes["episode_index"])]
    return import_episodes(sources, out, meta, size, skip_bad, progress=progress)
