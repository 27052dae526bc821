"""Inference first, to disk (NWM style): every source's generated frames, one file per batch of windows, before
anything is scored.

    OUT/predictions/settings.json                      what produced them (model, data, windows, protocol, sampler)
    OUT/predictions/<source>/seed-<j>/batch-<k>.npz    `frames` uint8 [B, horizon, H, W, 3], `actions` [B, L, A]

Restartable: a file is written whole (a temporary sibling renamed into place) or not at all, so a second run
reuses every finished batch and a killed run redoes only the batch it was in; temporaries a killed run left are
removed. A batch's seed depends on (seed, j, k) alone and the batch size is part of the settings, so a resumed run
produces exactly the files an uninterrupted one would. Predictions made with other settings are never mixed in:
the run refuses, naming the first setting that differs, unless told to replace them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..data.clips import ClipDataset
from ..io.atomic import atomic_file, remove_stale_temporaries, write_text
from ..io.progress import progress_bar
from .sources import Batch, Rollouts, Source

SETTINGS_FILE = "settings.json"


def first_difference(old: Any, new: Any, where: str = "") -> str | None:
    """The first key path at which two JSON-like values differ, with both values; None when equal."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            found = first_difference(old.get(key), new.get(key), f"{where}.{key}" if where else str(key))
            if found:
                return found
        return None
    return None if old == new else f"{where or 'settings'}: {json.dumps(old)} before, {json.dumps(new)} now"


class PredictionStore:
    """The predictions directory of one evaluation (see the module doc)."""

    def __init__(self, root: str | Path, settings: dict[str, Any], overwrite: bool = False) -> None:
        self.root = Path(root)
        settings = json.loads(json.dumps(settings))  # as it reads back: tuples become lists
        path = self.root / SETTINGS_FILE
        if path.is_file():
            differs = first_difference(json.loads(path.read_text()), settings)
            if differs and not overwrite:
                raise FileExistsError(f"{self.root}: holds predictions made with other settings ({differs}); give "
                                      "another --out, or pass overwrite=True to replace them")
            if differs:
                remove_predictions(self.root)
        elif self.root.exists() and any(self.root.iterdir()):
            raise FileExistsError(f"{self.root}: not empty and has no {SETTINGS_FILE}: not predictions of "
                                  "`vid2world evaluate`; give another --out")
        write_text(path, json.dumps(settings, indent=1) + "\n")

    def path(self, source: Source, seed_index: int, batch: int) -> Path:
        return self.root / source.slug / f"seed-{seed_index}" / f"batch-{batch:05d}.npz"

    def clean(self, source: Source, seed_index: int) -> list[Path]:
        """Remove the temporaries a killed run left beside this source's batch files."""
        return remove_stale_temporaries(self.path(source, seed_index, 0).parent, re.compile(r"batch-\d+\.npz"))

    def save(self, path: Path, frames: np.ndarray, actions: np.ndarray | None) -> None:
        arrays = {"frames": np.ascontiguousarray(frames, dtype=np.uint8)}
        if actions is not None:
            arrays["actions"] = np.asarray(actions, dtype=np.float32)
        with atomic_file(path) as tmp:
            np.savez_compressed(tmp, **arrays)

    @staticmethod
    def load(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
        """(generated frames, actions or None) of one batch file."""
        try:
            with np.load(path) as data:
                return data["frames"], (data["actions"] if "actions" in data else None)
        except (OSError, ValueError, KeyError) as err:
            raise ValueError(f"{path}: unreadable prediction file ({err}); delete it to have it made again") from None


PREDICTION_FILE = re.compile(r"[^/]+/seed-\d+/batch-\d{5}\.npz|counterfactual\.npz")


def remove_predictions(root: Path) -> list[Path]:
    """Remove what earlier runs of `evaluate` wrote under `root` (settings, batch files, the counterfactual's
    rollouts) and the folders left empty; a file of anyone else's stays, with its folders."""
    removed = [p for p in sorted(root.rglob("*")) if p.is_file() and
               PREDICTION_FILE.fullmatch(p.relative_to(root).as_posix())]
    for path in removed + [root / SETTINGS_FILE]:
        path.unlink(missing_ok=True)
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(folder.iterdir()):
            folder.rmdir()
    return removed


def window_id(i: int, clips: ClipDataset) -> str:
    w = clips.windows[i]
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in w.name)[:40]
    return f"{i:05d}-{safe}-{w.start}"


def read_batch(clips: ClipDataset, index: list[int]) -> Batch:
    """Windows `index` of `clips` (an evaluation `ClipDataset`) as one batch of numpy arrays."""
    items = [clips[i] for i in index]
    actions = None if "actions" not in items[0] else np.stack([np.asarray(c["actions"]) for c in items])
    return Batch(index, np.stack([np.asarray(c["frames"]) for c in items]), actions)


def batch_seed(seed: int, seed_index: int, batch: int) -> int:
    """The rollout seed of batch `batch` of seed `seed_index`: distinct per batch (rows of two batches do not share
    noise), the same for every source (sources differ in their actions, not in their noise)."""
    return int(np.random.SeedSequence([seed, seed_index, batch]).generate_state(1, np.uint64)[0] % 2 ** 63)


def seed_count(source: Source, seeds: int) -> int:
    return seeds if source.seeded else 1


def predict_all(store: PredictionStore, rollouts: Rollouts, sources: list[Source], clips: ClipDataset,
                batches: list[list[int]], seeds: int, progress: bool = True) -> int:
    """Make every missing batch file; returns how many were made (0 when everything was on disk already)."""
    for source in sources:
        for j in range(seed_count(source, seeds)):
            store.clean(source, j)
    made = 0
    total = sum(seed_count(s, seeds) for s in sources) * len(batches)
    with progress_bar(total=total, desc="inference", unit="batch", enabled=progress) as bar:
        for k, index in enumerate(batches):
            batch = None
            for source in sources:
                for j in range(seed_count(source, seeds)):
                    path = store.path(source, j, k)
                    if not path.is_file():
                        batch = batch or read_batch(clips, index)
                        frames, actions = source.predict(rollouts, batch, batch_seed(rollouts.seed, j, k))
                        store.save(path, frames, actions)
                        made += 1
                    bar.update(1)
    return made
