"""RT-1 (Open X-Embodiment `fractal20220817_data`): the official per-episode npz layout, and RLDS -> npz.

npz: `image` uint8 [T, H, W, 3] (256 x 320), `action` [T, 13], files named `{split}_eps_{i:08d}.npz`. The 13-d
action concatenates the RLDS action fields in this order (method.md §9.2); values are raw, not normalised.
"""

from __future__ import annotations

import re
import sys
import zipfile
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np

from ...io.atomic import atomic_file, remove_stale_temporaries
from ..spec import ActionGroup, ActionSpec, DatasetMeta
from .common import SourceEpisode, import_episodes, read_split_file, source_files

ACTION_FIELDS = (("base_displacement_vector", ("x", "y")), ("base_displacement_vertical_rotation", ("yaw",)),
                 ("gripper_closedness_action", ("close",)), ("rotation_delta", ("roll", "pitch", "yaw")),
                 ("terminate_episode", ("terminate", "continue", "undefined")), ("world_vector", ("x", "y", "z")))
ACTION_SPEC = ActionSpec(tuple(ActionGroup(name, "continuous", labels) for name, labels in ACTION_FIELDS))
FPS = 3.0
ZIP_MAGIC = b"PK\x03\x04"  # an npz archive is a zip of .npy files


def load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as f:
        head = f.read(len(ZIP_MAGIC))
    if head != ZIP_MAGIC:  # numpy would answer a text file with a message about pickles
        raise ValueError(f"not a valid npz archive (a zip of .npy arrays): the file starts with {head!r}")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("image", "action") if k not in data.files]
            if missing:
                raise KeyError(f"missing {missing}; has {data.files} (expected 'image' [T,H,W,3], 'action' [T,13])")
            image, action = data["image"], data["action"]
    except (zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"not a valid npz archive, or a truncated one ({err})") from err
    if image.dtype != np.uint8 or image.ndim != 4 or image.shape[-1] != 3:
        raise ValueError(f"'image' is {image.dtype} {list(image.shape)}, expected uint8 [T, H, W, 3]")
    if action.shape != (len(image), ACTION_SPEC.dim):
        raise ValueError(f"'action' has shape {list(action.shape)}, expected [{len(image)}, {ACTION_SPEC.dim}]")
    return image, action.astype(np.float32)


def npz_sources(src: str | Path, split_file: str | Path | None = None) -> list[SourceEpisode]:
    """Every `*.npz` under `src`, sorted. The split comes from `split_file` (listed -> "test"), else from the
    `{split}_eps_` file-name prefix, else "train"."""
    files = source_files(src, "*.npz", "RT-1 episodes ({split}_eps_{i:08d}.npz with 'image' and 'action')")
    held_out = read_split_file(split_file)
    out = []
    for path in files:
        prefix = path.stem.split("_eps_")[0] if "_eps_" in path.stem else "train"
        split = "test" if path.stem in held_out else ("train" if held_out else prefix)
        out.append(SourceEpisode(str(path.relative_to(src).with_suffix("")), path, split,
                                 lambda p=path: load_npz(p)))
    return out


def import_rt1(src: str | Path, out: str | Path, size: tuple[int, int] | None = None, skip_bad: bool = False,
               split_file: str | Path | None = None, progress: bool = True):
    meta = DatasetMeta("rt1", FPS, (0, 0), ACTION_SPEC, source=f"rt1-npz:{Path(src).resolve()}")
    return import_episodes(npz_sources(src, split_file), out, meta, size, skip_bad, progress=progress)


def rlds_episode_arrays(episode: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """An RLDS episode (a dict with `steps`, each step holding `observation/image` and the action fields) ->
    (image [T, H, W, 3] uint8, action [T, 13] float32)."""
    images, actions = [], []
    for step in episode["steps"]:
        images.append(np.asarray(step["observation"]["image"], dtype=np.uint8))
        act = step["action"]
        actions.append(np.concatenate([np.asarray(act[name], dtype=np.float32).reshape(-1)
                                       for name, _ in ACTION_FIELDS]))
    if not images:
        raise ValueError("RLDS episode has no steps")
    return np.stack(images), np.stack(actions)


def rlds_to_npz(episodes: Iterable[Mapping[str, Any]], out_dir: str | Path, split: str = "train",
                start: int = 0) -> list[Path]:
    """Write RLDS episodes as the official npz files `{split}_eps_{i:08d}.npz` (atomically; existing ones are kept,
    so an interrupted conversion resumes)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in remove_stale_temporaries(out_dir, re.compile(rf"{re.escape(split)}_eps_\d{{8}}\.npz")):
        print(f"removed {stale}: left half-written by an interrupted conversion", file=sys.stderr, flush=True)
    written = []
    for i, episode in enumerate(episodes, start=start):
        path = out_dir / f"{split}_eps_{i:08d}.npz"
        if not path.exists():
            image, action = rlds_episode_arrays(episode)
            with atomic_file(path) as tmp, open(tmp, "wb") as f:
                np.savez_compressed(f, image=image, action=action)
        written.append(path)
    return written


def rlds_episodes(builder_dir: str | Path, split: str = "train") -> Iterator[Mapping[str, Any]]:
    """Episodes of an RLDS/TFDS directory (e.g. `.../fractal20220817_data/0.1.0`) as numpy dicts. Needs the
    `rlds` extra (tensorflow-cpu, tensorflow-datasets)."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:
        raise ValueError("reading RLDS needs the 'rlds' extra: pip install 'vid2world[rlds]'") from err
    builder = tfds.builder_from_directory(str(builder_dir))
    for episode in tfds.as_numpy(builder.as_dataset(split=split)):
        yield {"steps": list(episode["steps"])}


def import_rlds(builder_dir: str | Path, out: str | Path, split: str = "train", size: tuple[int, int] | None = None,
                skip_bad: bool = False, progress: bool = True, episodes: Iterable[Mapping[str, Any]] | None = None):
    """RLDS straight into a dataset (no npz in between). `episodes` replaces reading `builder_dir` (tests)."""
    if episodes is None and not Path(builder_dir).is_dir():
        raise FileNotFoundError(f"{builder_dir}: no such RLDS builder directory (e.g. .../fractal20220817_data/0.1.0)")
    source = episodes if episodes is not None else rlds_episodes(builder_dir, split)
    sources = (SourceEpisode(f"{split}_eps_{i:08d}", Path(f"{builder_dir}[{split}][{i}]"), split,
                             lambda e=episode: rlds_episode_arrays(e)) for i, episode in enumerate(source))
    meta = DatasetMeta("rt1", FPS, (0, 0), ACTION_SPEC, source=f"rlds:{builder_dir}")
    return import_episodes(sources, out, meta, size, skip_bad, progress=progress)
