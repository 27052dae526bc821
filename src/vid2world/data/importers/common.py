"""What every importer shares: one source episode at a time into a dataset, bad inputs named or counted."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from ...io.progress import progress_bar
from ..spec import ActionSpec, DatasetMeta
from ..store import Dataset
from ..transforms import resize_uint8
from ..writer import DatasetWriter


class DataImportError(ValueError):
    """A source file that cannot be imported; the message names the file."""


@dataclass(frozen=True)
class SourceEpisode:
    """One episode of a source dataset: `load()` returns (uint8 frames [T, H, W, 3], actions [T, A]) and, for a
    dataset with a per-frame state, its state [T, S] third."""

    name: str
    path: Path
    split: str
    load: Callable[[], tuple[np.ndarray, ...]]


@dataclass
class ImportReport:
    imported: int = 0
    frames: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)

    def summary(self) -> str:
        text = f"imported {self.imported} episodes ({self.frames} frames); skipped {len(self.skipped)} bad inputs"
        return text + "".join(f"\n  skipped {path}: {reason}" for path, reason in self.skipped)


def source_files(src: str | Path, pattern: str, expected: str) -> list[Path]:
    """The files matching `pattern` anywhere under the source directory `src`, sorted; an error names `src` when it
    is missing, is not a directory, or holds no such file (`expected` says what should be there)."""
    src = Path(src)
    if not src.exists():
        raise FileNotFoundError(f"{src}: no such source directory")
    if not src.is_dir():
        raise DataImportError(f"{src}: not a directory; expected a directory of {expected}")
    files = sorted(src.rglob(pattern))
    if not files:
        raise DataImportError(f"{src}: no {pattern} files under it; expected {expected}")
    return files


def read_split_file(path: str | Path | None) -> set[str]:
    """Names listed one per line (DIAMOND's test_split.txt, NoMaD's traj_names.txt) or as a JSON list (the official
    RT-1 validation list); directories and the file suffixes .hdf5/.h5/.npz/.pkl are ignored when matching."""
    if path is None:
        return set()
    text = Path(path).read_text()
    names = json.loads(text) if text.lstrip().startswith("[") else text.split("\n")
    return {_strip_suffix(Path(str(n).strip()).name) for n in names if str(n).strip()}


def _strip_suffix(name: str) -> str:
    for suffix in (".hdf5", ".h5", ".npz", ".pkl"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def with_ranges(spec: ActionSpec, low: np.ndarray, high: np.ndarray) -> ActionSpec:
    """The spec with the observed [low, high] of each continuous entry filled in."""
    groups = []
    for g, cols in spec.slices():
        if g.kind == "continuous" and not g.low:
            g = dataclasses.replace(g, low=tuple(low[cols].tolist()), high=tuple(high[cols].tolist()))
        groups.append(g)
    return ActionSpec(tuple(groups))


def import_episodes(sources: Iterable[SourceEpisode], out: str | Path, meta: DatasetMeta,
                    size: tuple[int, int] | None = None, skip_bad: bool = False,
                    errors: tuple[type[BaseException], ...] = (OSError, ValueError, KeyError, EOFError),
                    progress: bool = True) -> tuple[Dataset, ImportReport]:
    """Write every source episode into `out`. The frame size is `size`, or the first good episode's (then every
    other must have it). A bad episode raises DataImportError naming its file, or with `skip_bad` is counted."""
    report = ImportReport()
    writer: DatasetWriter | None = None
    low = high = None
    try:
        for source in _progress(sources, progress):
            try:
                frames, actions, *state = source.load()
                frames = resize_uint8(frames, size) if size is not None else frames
                if writer is None:
                    meta.frame_size = tuple(frames.shape[1:3])
                    writer = DatasetWriter(out, meta)
                writer.add(frames, actions, source.name, source.split, state=state[0] if state else None)
            except errors as err:
                reason = f"{type(err).__name__}: {err}"
                if not skip_bad:
                    raise DataImportError(f"{source.path}: {reason} (pass skip_bad=True to skip and count it)") from err
                report.skipped.append((str(source.path), reason))
                continue
            report.imported += 1
            report.frames += len(frames)
            if actions is not None and meta.actions is not None:
                low = actions.min(0) if low is None else np.minimum(low, actions.min(0))
                high = actions.max(0) if high is None else np.maximum(high, actions.max(0))
        if writer is None:
            raise DataImportError(f"no episode could be imported into {out}" +
                                  (f" ({len(report.skipped)} skipped)" if report.skipped else " (no source files)"))
        if low is not None:
            meta.actions = with_ranges(meta.actions, low, high)
        meta.extra["import"] = {"imported": report.imported, "frames": report.frames,
                                "skipped": [list(s) for s in report.skipped]}
        return writer.close(), report
    except BaseException:
        if writer is not None and not writer.closed:
            writer.abort()
        raise


def _progress(sources: Iterable[SourceEpisode], enabled: bool) -> Iterator[SourceEpisode]:
    total = len(sources) if hasattr(sources, "__len__") else None
    yield from progress_bar(sources, total=total, desc="importing", unit="ep", enabled=enabled)
