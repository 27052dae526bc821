"""The on-disk dataset: one directory, raw memory-mappable shards and a columnar index (docs/data.md).

    DIR/dataset.json            metadata (DatasetMeta) and the format version
    DIR/episodes.json           the index: shard names and row counts, then one column per episode field
                                (name, split, shard, offset, length)
    DIR/shards/<S>.frames       uint8, C order, [n, H, W, 3]: the frames of several episodes, back to back
    DIR/shards/<S>.actions      float32 little-endian, [n, A] (absent for action-free data)

Opening a dataset reads two JSON files and checks the index: each episode inside its shard and clear of the
next, each shard file of the size its row count implies (a stat, no frame read). An episode is a slice of a
memory map, so reading a clip touches only its frames whatever the number of episodes; no directory is listed.
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
    state: np.ndarray | None = None  # float32 [T, S] when the dataset stores a state (meta.state names it)


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
        self.shard_rows: list[int] = _integers(index_path, index, "shard_rows").tolist()
        if len(self.shard_rows) != len(self.shards):
            raise ValueError(f"{index_path}: 'shard_rows' must give the frame count of each of the "
                             f"{len(self.shards)} shards")
        self.names: list[str] = list(index["name"])
        self.splits: list[str] = list(index["split"])
        if not all(isinstance(index[k], list) and len(index[k]) == len(self.names) for k in INDEX_FIELDS):
            raise ValueError(f"{index_path}: columns {list(INDEX_FIELDS)} must be lists of the same length, "
                             "one entry per episode")
        self._shard = _integers(index_path, index, "shard")
        self._offset = _integers(index_path, index, "offset")
        self.lengths = _integers(index_path, index, "length")
        self._check_index(index_path)
        for k in range(len(self.shards)):  # a stat per shard: sizes, not frames, so opening stays cheap
            for path, dtype, shape in self._shard_files(k):
                _check_size(path, dtype, shape,
                            f"{index_path} gives shard {self.shards[k]!r} {shape[0]} frames")
        self._maps: dict[int, dict[str, np.ndarray]] = {}

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
        maps = self._shard_maps(int(self._shard[i]))
        start, stop = int(self._offset[i]), int(self._offset[i] + self.lengths[i])
        actions, state = maps.get("actions"), maps.get("state")
        return Episode(i, self.names[i], self.splits[i], maps["frames"][start:stop],
                       actions[start:stop] if actions is not None else None,
                       state[start:stop] if state is not None else None)

    def _shard_files(self, k: int) -> list[tuple[Path, np.dtype, tuple[int, ...]]]:
        """Shard k's files: (path, dtype, shape) of its frames, its actions unless action-free, its state if any."""
        h, w = self.meta.frame_size
        rows, stem = self.shard_rows[k], self.root / "shards" / self.shards[k]
        files = [(Path(f"{stem}.frames"), np.dtype(np.uint8), (rows, h, w, 3))]
        if self.meta.actions is not None:
            files.append((Path(f"{stem}.actions"), np.dtype("<f4"), (rows, self.meta.action_dim)))
        if self.meta.state:
            files.append((Path(f"{stem}.state"), np.dtype("<f4"), (rows, len(self.meta.state))))
        return files

    def _shard_maps(self, k: int) -> dict[str, np.ndarray]:
        """Shard k's memory maps by kind (frames, actions, state: the file suffixes)."""
        if k not in self._maps:
            self._maps[k] = {path.suffix[1:]: _memmap(path, dtype, shape)
                             for path, dtype, shape in self._shard_files(k)}
        return self._maps[k]

    def _check_index(self, path: Path) -> None:
        """Each episode within its shard and clear of the next episode there, as the writer lays them out: an
        edited or foreign index is named now, not as short clips in `torch.stack` or garbage statistics."""
        n = len(self.shards)
        for k, rows in enumerate(self.shard_rows):
            if rows < 0:
                raise ValueError(f"{path}: column 'shard_rows': shard {k} ({self.shards[k]!r}) has {rows}, "
                                 "expected >= 0")
        columns = (("shard", self._shard, 0), ("offset", self._offset, 0), ("length", self.lengths, 1))
        for key, column, low in columns:
            bad = np.flatnonzero(column < low)
            if bad.size:
                i = int(bad[0])
                raise ValueError(f"{path}: column {key!r}: episode {i} ({self.names[i]!r}) has "
                                 f"{int(column[i])}, expected >= {low}")
        bad = np.flatnonzero(self._shard >= n)
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"{path}: column 'shard': episode {i} ({self.names[i]!r}) has "
                             f"{int(self._shard[i])}, "
                             + (f"expected a shard number in 0..{n - 1}" if n else "but 'shards' lists none"))
        order = np.lexsort((self._offset, self._shard))  # by shard, then offset
        shard, start = self._shard[order], self._offset[order]
        followed = np.append(shard[1:] == shard[:-1], False)  # the next in this order shares the shard
        limit = np.where(followed, np.append(start[1:], 0), np.asarray(self.shard_rows, np.int64)[shard])
        over = np.flatnonzero(start + self.lengths[order] > limit)
        if over.size:
            k = int(over[np.argmin(order[over])])  # the lowest episode number at fault
            i, name = int(order[k]), self.shards[int(shard[k])]
            if followed[k]:
                j = int(order[k + 1])
                limit_text = f"episode {j} ({self.names[j]!r}) starts at {int(start[k + 1])}"
            else:
                limit_text = f"the shard holds {self.shard_rows[int(shard[k])]} frames"
            room = max(0, int(limit[k] - start[k]))
            raise ValueError(f"{path}: episode {i} ({self.names[i]!r}) has length {int(self.lengths[i])} at "
                             f"offset {int(start[k])} of shard {name!r}, but {limit_text} (only {room} from "
                             "there); the index does not match the shards")

    def check(self) -> None:
        """Map every shard (their sizes were checked on open; this maps them before any worker starts)."""
        for k in range(len(self.shards)):
            self._shard_maps(k)


def _check_size(path: Path, dtype: np.dtype, shape: tuple[int, ...], source: str = "") -> None:
    """A shard file holds exactly `shape` of `dtype` (`source`: what says it should)."""
    expected = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if not path.is_file():
        raise FileNotFoundError(f"{path}: shard file missing")
    size = path.stat().st_size
    if size != expected:
        raise ValueError(f"{path}: {size} bytes, expected {expected} for {np.dtype(dtype).name} {list(shape)}"
                         + (f" ({source})" if source else "") + "; truncated, or written by something else")


def _memmap(path: Path, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    _check_size(path, dtype, shape)
    if int(np.prod(shape)) == 0:
        return np.zeros(shape, dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=shape)


def _integers(path: Path, index: dict[str, Any], key: str) -> np.ndarray:
    """Column `key` of the index as int64; anything but a list of integers is named."""
    values = index.get(key, [])
    try:
        array = np.asarray(values)
    except (TypeError, ValueError):  # ragged nested lists
        array = np.asarray(None)
    if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
        raise ValueError(f"{path}: column {key!r} must hold integers (a JSON list of them)")
    return array.astype(np.int64)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing")
    try:
        content = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(content, dict):
        kind = "array" if isinstance(content, list) else type(content).__name__
        raise ValueError(f"{path}: a JSON {kind}, expected a JSON object")
    return content


def open_dataset(root: str | Path) -> Dataset:
    """Open a dataset directory written by `DatasetWriter` (a recorder or an importer)."""
    return Dataset(root)
