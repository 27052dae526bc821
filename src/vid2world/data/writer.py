"""Writing datasets atomically: everything goes to a hidden temporary directory beside the target, which is
renamed into place by `close()`. A failure leaves no half-written dataset behind.

Parallel writers (recorder processes) each write their own shards into the same temporary directory through a
`ShardWriter` and hand back `EpisodeRecord`s; the parent adds them with `add_records` and closes.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..io.atomic import AtomicDirectory, remove_stale_temporaries
from .spec import DatasetMeta
from .store import FORMAT, VERSION, Dataset


@dataclass(frozen=True)
class EpisodeRecord:
    name: str
    split: str
    shard: str
    offset: int
    length: int
    order: int = 0  # position in the final index (recorders: the episode number)


class ShardWriter:
    """Appends episodes to shard files `<prefix><k>.frames/.actions/.state` in `shard_dir` (actions unless the
    dataset is action-free, state when it has one); a new shard every `shard_frames` frames so that no file grows
    without bound."""

    def __init__(self, shard_dir: Path, meta: DatasetMeta, prefix: str = "", shard_frames: int = 8192) -> None:
        self.dir, self.meta, self.prefix, self.shard_frames = Path(shard_dir), meta, prefix, shard_frames
        self.records: list[EpisodeRecord] = []
        self.rows: dict[str, int] = {}
        self._k = -1
        self._files: tuple[BinaryIO, BinaryIO | None, BinaryIO | None] | None = None

    def add(self, frames: np.ndarray, actions: np.ndarray | None, name: str, split: str = "train",
            order: int = 0, state: np.ndarray | None = None) -> EpisodeRecord:
        frames, actions = self._checked(frames, actions, name)
        state = self._checked_state(state, len(frames), name)
        if self._files is None or self.rows[self._current] >= self.shard_frames:
            self._open_next()
        shard = self._current
        frames_file, actions_file, state_file = self._files
        frames_file.write(np.ascontiguousarray(frames).tobytes())
        if actions_file is not None:
            actions_file.write(np.ascontiguousarray(actions, dtype="<f4").tobytes())
        if state_file is not None:
            state_file.write(np.ascontiguousarray(state, dtype="<f4").tobytes())
        record = EpisodeRecord(name, split, shard, self.rows[shard], len(frames), order)
        self.rows[shard] += len(frames)
        self.records.append(record)
        return record

    @property
    def _current(self) -> str:
        return f"{self.prefix}{self._k:05d}"

    def _open_next(self) -> None:
        self.close()
        self._k += 1
        self.dir.mkdir(parents=True, exist_ok=True)
        frames_file = open(self.dir / f"{self._current}.frames", "wb")
        actions_file = open(self.dir / f"{self._current}.actions", "wb") if self.meta.actions is not None else None
        state_file = open(self.dir / f"{self._current}.state", "wb") if self.meta.state else None
        self._files = (frames_file, actions_file, state_file)
        self.rows[self._current] = 0

    def close(self) -> None:
        if self._files is not None:
            for f in self._files:
                if f is not None:
                    f.close()
            self._files = None

    def _checked(self, frames: np.ndarray, actions: np.ndarray | None,
                 name: str) -> tuple[np.ndarray, np.ndarray | None]:
        frames = np.asarray(frames)
        h, w = self.meta.frame_size
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[1:] != (h, w, 3) or len(frames) == 0:
            raise ValueError(f"episode {name!r}: frames are {frames.dtype} {list(frames.shape)}, "
                             f"expected uint8 [T>0, {h}, {w}, 3]")
        if self.meta.actions is None:
            if actions is not None:
                raise ValueError(f"episode {name!r}: the dataset is action-free but actions were given")
            return frames, None
        if actions is None:
            raise ValueError(f"episode {name!r}: the dataset has {self.meta.action_dim}-d actions, none given")
        actions = np.asarray(actions, dtype=np.float32)
        if len(actions) != len(frames):
            raise ValueError(f"episode {name!r}: {len(actions)} actions for {len(frames)} frames "
                             "(expected one action per frame: a_t is taken after frame t)")
        self.meta.actions.validate(actions, f"episode {name!r}")
        return frames, actions

    def _checked_state(self, state: np.ndarray | None, frames: int, name: str) -> np.ndarray | None:
        dim = len(self.meta.state)
        if not dim:
            if state is not None:
                raise ValueError(f"episode {name!r}: the dataset stores no state but a state was given")
            return None
        state = None if state is None else np.asarray(state, dtype=np.float32)
        if state is None or state.shape != (frames, dim):
            raise ValueError(f"episode {name!r}: state is {None if state is None else list(state.shape)}, "
                             f"expected float [{frames}, {dim}] ({', '.join(self.meta.state)})")
        if not np.isfinite(state).all():
            raise ValueError(f"episode {name!r}: state holds NaN or inf")
        return state


class DatasetWriter:
    """`with DatasetWriter(out, meta) as w: w.add(frames, actions, name)` writes `out` atomically."""

    def __init__(self, out: str | Path, meta: DatasetMeta, shard_frames: int = 8192) -> None:
        self.out, self.meta = Path(out), meta
        if self.out.exists():
            raise FileExistsError(f"{self.out}: already exists (choose another --out, or remove it first)")
        for stale in remove_stale_temporaries(self.out.parent, self.out.name):
            print(f"removed {stale}: a temporary dataset left by an interrupted run", file=sys.stderr, flush=True)
        self._dir = AtomicDirectory(self.out)
        self.tmp = self._dir.path
        self.shard_dir = self.tmp / "shards"
        self.shard_dir.mkdir()
        self._main = ShardWriter(self.shard_dir, meta, prefix="s", shard_frames=shard_frames)
        self._records: list[EpisodeRecord] = []
        self._rows: dict[str, int] = {}
        self.closed = False

    def add(self, frames: np.ndarray, actions: np.ndarray | None = None, name: str | None = None,
            split: str = "train", state: np.ndarray | None = None) -> EpisodeRecord:
        order = len(self._records) + len(self._main.records)
        return self._main.add(frames, actions, name or f"episode_{order:06d}", split, order, state)

    def add_records(self, records: list[EpisodeRecord], rows: dict[str, int]) -> None:
        """Episodes a `ShardWriter` in another process wrote into `self.shard_dir`."""
        self._records.extend(records)
        self._rows.update(rows)

    def close(self) -> Dataset:
        self._main.close()
        records = sorted(self._records + self._main.records, key=lambda r: r.order)
        rows = {**self._rows, **self._main.rows}
        if len({r.name for r in records}) != len(records):
            raise ValueError(f"{self.out}: episode names are not unique")
        shards = sorted(rows)
        shard_id = {s: i for i, s in enumerate(shards)}
        index = {"shards": shards, "shard_rows": [rows[s] for s in shards],
                 "name": [r.name for r in records], "split": [r.split for r in records],
                 "shard": [shard_id[r.shard] for r in records], "offset": [r.offset for r in records],
                 "length": [r.length for r in records]}
        (self.tmp / "episodes.json").write_text(json.dumps(index))
        (self.tmp / "dataset.json").write_text(json.dumps({"format": FORMAT, "version": VERSION,
                                                           **self.meta.to_dict()}, indent=1))
        Dataset(self.tmp).check()  # before the rename: a dataset that appears is a complete one
        self._dir.commit()
        self.closed = True
        return Dataset(self.out)

    def abort(self) -> None:
        self._main.close()
        self._dir.abort()

    def __enter__(self) -> "DatasetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        elif not self.closed:
            self.close()
