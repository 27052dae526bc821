"""The on-disk dataset: one directory, raw memory-mappable shards and a columnar index (docs/data.md).

    DIR/dataset.json            metadata (DatasetMeta) and the format version
    DIR/episodes.json           the index: shard names and row counts, then one column per episode field
                                (name, split, shard, offset, length)
    DIR/shards/<S>.frames       uint8, C order, [n, H, W, 3]: the frames of several episodes, back to back
    DIR/shards/<S>.actions      float32 little-endian, [n, A] (absent for action-free data)

Opening a dataset reads two JSON files; an episode is a slice of a memory map, so reading a clip touches only
its frames whatever the number of episodes, and no directory is listed after opening.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .spec import DatasetMeta

FORMAT = "vid2world-dataset"
VERSION = 1
INDEX_FIELDS = ("name", "split", "shard", "offset", "length")


@dataclass(frozen=True)
class Episode:
    index: int
    name: str
    split: str
    frames: np.ndarray  # uint8 [T, H, W, 3], read-only memory map
    actions: np.ndarray | None  # float32 [T, A]


class Dataset:
    """A dataset directory opened for reading. Picklable (memory maps are reopened in each process)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        meta_path, index_path = self.root / "dataset.json", self.root / "episodes.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{self.root}: not a vid2world dataset (no dataset.json)")
        raw = _read_json(meta_path)
        if raw.get("format") != FORMAT or raw.get("version") != VERSION:
            raise ValueError(f"{meta_path}: expected format {FORMAT!r} version {VERSION}, "
                             f"got {raw.get('format')!r} version {raw.get('version')!r}")
        try:
            self.meta = DatasetMeta.from_dict(raw)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{meta_path}: {err}") from err
        index = _read_json(index_path)
        missing = [k for k in ("shards", *INDEX_FIELDS) if k not in index]
        if missing:
            raise ValueError(f"{index_path}: missing columns {missing}")
        self.shards: list[str] = list(index["shards"])
        self.shard_rows: list[int] = [int(n) for n in index.get("shard_rows", [])]
        if len(self.shard_rows) != len(self.shards):
            raise ValueError(f"{index_path}: 'shard_rows' must give the frame count of each of the "
                             f"{len(self.shards)} shards")
        self.names: list[str] = list(index["name"])
        self.splits: list[str] = list(index["split"])
        self._shard = np.asarray(index["shard"], dtype=np.int64)
        self._offset = np.asarray(index["offset"], dtype=np.int64)
        self.lengths = np.asarray(index["length"], dtype=np.int64)
        if not all(len(index[k]) == len(self.names) for k in INDEX_FIELDS):
            raise ValueError(f"{index_path}: columns have different lengths")
        self._maps: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}

    def __len__(self) -> int:
        return len(self.names)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_maps"] = {}
        return state

    @property
    def num_frames(self) -> int:
        return int(self.lengths.sum())

    def episodes_in(self, split: str | None) -> np.ndarray:
        """Episode indices of a split (all when None)."""
        if split is None:
            return np.arange(len(self))
        return np.array([i for i, s in enumerate(self.splits) if s == split], dtype=np.int64)

    def episode(self, i: int) -> Episode:
        if not 0 <= i < len(self):
            raise IndexError(f"{self.root}: episode {i} out of range (dataset has {len(self)})")
        frames, actions = self._shard_maps(int(self._shard[i]))
        start, stop = int(self._offset[i]), int(self._offset[i] + self.lengths[i])
        return Episode(i, self.names[i], self.splits[i], frames[start:stop],
                       actions[start:stop] if actions is not None else None)

    def _shard_maps(self, k: int) -> tuple[np.ndarray, np.ndarray | None]:
        if k not in self._maps:
            h, w = self.meta.frame_size
            rows = self.shard_rows[k]
            frames = _memmap(self.root / "shards" / f"{self.shards[k]}.frames", np.uint8, (rows, h, w, 3))
            actions = None
            if self.meta.actions is not None:
                actions = _memmap(self.root / "shards" / f"{self.shards[k]}.actions", np.dtype("<f4"),
                                  (rows, self.meta.action_dim))
            self._maps[k] = (frames, actions)
        return self._maps[k]

    def check(self) -> None:
        """Open every shard: a truncated or missing shard raises here, not in the middle of training."""
        for k in range(len(self.shards)):
            self._shard_maps(k)


def _memmap(path: Path, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    expected = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if not path.is_file():
        raise FileNotFoundError(f"{path}: shard file missing")
    size = path.stat().st_size
    if size != expected:
        raise ValueError(f"{path}: {size} bytes, expected {expected} for {np.dtype(dtype).name} {list(shape)} "
                         "(truncated or written by something else)")
    if expected == 0:
        return np.zeros(shape, dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=shape)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err


def open_dataset(root: str | Path) -> Dataset:
    """Open a dataset directory written by `DatasetWriter` (a recorder or an importer)."""
    return Dataset(root)
