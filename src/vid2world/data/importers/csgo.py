"""CS:GO deathmatch on Dust II (Pearce & Zhu), as DIAMOND ships it: one HDF5 file per 1000-frame episode with
`frame_{i}_x` (uint8 [150, 280, 3], BGR) and `frame_{i}_y` (the 51-d action; `_xaux` and `_helperarr` are not
used). DIAMOND's `test_split.txt` lists the held-out files by bare name."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..spec import ActionGroup, ActionSpec, DatasetMeta
from .common import SourceEpisode, import_episodes, read_split_file, source_files

KEYS = ("w", "a", "s", "d", "space", "ctrl", "shift", "1", "2", "3", "r")
MOUSE_X = (-1000, -500, -300, -200, -100, -60, -30, -20, -10, -4, -2, 0, 2, 4, 10, 20, 30, 60, 100, 200, 300, 500,
           1000)
MOUSE_Y = (-200, -100, -50, -20, -10, -4, -2, 0, 2, 4, 10, 20, 50, 100, 200)
ACTION_SPEC = ActionSpec((
    ActionGroup("keys", "multi_hot", KEYS),
    ActionGroup("clicks", "multi_hot", ("left", "right")),
    ActionGroup("mouse_x", "one_hot", tuple(f"{v:+d}" for v in MOUSE_X), values=tuple(float(v) for v in MOUSE_X)),
    ActionGroup("mouse_y", "one_hot", tuple(f"{v:+d}" for v in MOUSE_Y), values=tuple(float(v) for v in MOUSE_Y))))
FPS = 16.0  # the recording's rate; the paper conditions on fps = 3 regardless


def load_hdf5(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import h5py

    with h5py.File(path, "r") as f:
        count = sum(1 for k in f.keys() if k.startswith("frame_") and k.endswith("_x"))
        if count == 0:
            raise KeyError("no 'frame_{i}_x' datasets (not a CS:GO episode file)")
        frames, actions = [], []
        for i in range(count):
            for key in (f"frame_{i}_x", f"frame_{i}_y"):
                if key not in f:
                    raise KeyError(f"missing '{key}' (frames must be numbered 0..{count - 1})")
            x, y = f[f"frame_{i}_x"][()], f[f"frame_{i}_y"][()]
            if x.ndim != 3 or x.shape[-1] != 3:
                raise ValueError(f"'frame_{i}_x' has shape {list(x.shape)}, expected [H, W, 3] (BGR)")
            if y.shape != (ACTION_SPEC.dim,):
                raise ValueError(f"'frame_{i}_y' has shape {list(y.shape)}, expected [{ACTION_SPEC.dim}]")
            frames.append(x[..., ::-1])  # BGR -> RGB
            actions.append(y)
    return np.ascontiguousarray(np.stack(frames), dtype=np.uint8), np.stack(actions).astype(np.float32)


def hdf5_sources(src: str | Path, split_file: str | Path | None = None) -> list[SourceEpisode]:
    """Every `*.hdf5` under `src`, in DIAMOND's order (by the number after the last '_'); listed files -> "test"."""
    def number(path: Path) -> tuple[int, str]:
        tail = path.stem.rsplit("_", 1)[-1]
        return (int(tail) if tail.isdigit() else -1, str(path))

    held_out = read_split_file(split_file)
    src = Path(src)
    return [SourceEpisode(str(p.relative_to(src).with_suffix("")), p, "test" if p.stem in held_out else "train",
                          lambda p=p: load_hdf5(p))
            for p in sorted(source_files(src, "*.hdf5", "DIAMOND's CS:GO episode files"), key=number)]


def import_csgo(src: str | Path, out: str | Path, size: tuple[int, int] | None = None, skip_bad: bool = False,
                split_file: str | Path | None = None, progress: bool = True):
    meta = DatasetMeta("csgo", FPS, (0, 0), ACTION_SPEC, source=f"csgo-hdf5:{Path(src).resolve()}")
    return import_episodes(hdf5_sources(src, split_file), out, meta, size, skip_bad, progress=progress)
