"""RECON in the NoMaD / NWM layout: one folder per trajectory with `0.jpg .. {T-1}.jpg` and `traj_data.pkl`
(`position` [T, 2], `yaw` [T]); NWM's `data_splits/recon/test/traj_names.txt` lists held-out folders.

Action a_t (method.md §9.4, as the official loader): the odometry change from frame t to t+1 in frame t's local
coordinates; dx, dy divided by the waypoint spacing 0.25 m and min-max normalised to [-1, 1] with
min (-2.5, -4), max (5, 4); yaw the raw angle difference wrapped to [-pi, pi). The last frame has no successor: its
action is the normalised zero motion (-1/3, 0, 0), as in the official code (no model frame is conditioned on it).
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from ..spec import ActionGroup, ActionSpec, DatasetMeta
from .common import SourceEpisode, import_episodes, read_split_file, source_files

WAYPOINT_SPACING = 0.25
XY_MIN, XY_MAX = np.array([-2.5, -4.0]), np.array([5.0, 4.0])
ACTION_SPEC = ActionSpec((ActionGroup("odometry", "continuous", ("dx", "dy", "dyaw"),
                                      low=(-1.0, -1.0, -np.pi), high=(1.0, 1.0, np.pi)),))
FPS = 4.0


class _ArrayUnpickler(pickle.Unpickler):
    """traj_data.pkl holds a dict of numpy arrays; refuse anything else rather than run arbitrary code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("builtins", "float")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name} (only numpy arrays are expected)")
        return super().find_class(module, name)


def recon_actions(position: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """[T, 2] positions and [T] yaws -> [T, 3] normalised actions (pure; see the module docstring)."""
    delta = position[1:] - position[:-1]
    c, s = np.cos(yaw[:-1]), np.sin(yaw[:-1])
    local = np.stack([delta[:, 0] * c + delta[:, 1] * s, -delta[:, 0] * s + delta[:, 1] * c], axis=1)
    xy = np.concatenate([local / WAYPOINT_SPACING, np.zeros((1, 2))])
    xy = 2 * (xy - XY_MIN) / (XY_MAX - XY_MIN) - 1
    dyaw = np.concatenate([(yaw[1:] - yaw[:-1] + np.pi) % (2 * np.pi) - np.pi, [0.0]])
    return np.concatenate([xy, dyaw[:, None]], axis=1).astype(np.float32)


def load_trajectory(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    pkl = folder / "traj_data.pkl"
    try:
        data = _ArrayUnpickler(io.BytesIO(pkl.read_bytes())).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError) as err:
        raise ValueError(f"{pkl}: unreadable ({err})") from err
    if not isinstance(data, dict) or "position" not in data or "yaw" not in data:
        raise KeyError(f"{pkl}: expected a dict with 'position' [T, 2] and 'yaw' [T]")
    position = np.asarray(data["position"], dtype=np.float64)[:, :2]
    yaw = np.asarray(data["yaw"], dtype=np.float64).reshape(-1)
    if position.ndim != 2 or len(position) != len(yaw) or len(yaw) == 0:
        raise ValueError(f"{pkl}: 'position' {list(position.shape)} and 'yaw' {list(yaw.shape)} disagree")
    frames = []
    for t in range(len(yaw)):
        jpg = folder / f"{t}.jpg"
        if not jpg.is_file():
            raise FileNotFoundError(f"{jpg}: missing (traj_data.pkl has {len(yaw)} poses)")
        with Image.open(jpg) as image:
            frames.append(np.asarray(image.convert("RGB")))
    if len({f.shape for f in frames}) != 1:
        raise ValueError(f"{folder}: frames differ in size")
    return np.stack(frames), recon_actions(position, yaw)


def trajectory_sources(src: str | Path, split_file: str | Path | None = None) -> list[SourceEpisode]:
    held_out = read_split_file(split_file)
    src = Path(src)
    folders = sorted(p.parent for p in source_files(src, "traj_data.pkl", "RECON trajectory folders (0.jpg .., "
                                                    "traj_data.pkl)"))
    return [SourceEpisode(str(f.relative_to(src)), f, "test" if f.name in held_out else "train",
                          lambda f=f: load_trajectory(f)) for f in folders]


def import_recon(src: str | Path, out: str | Path, size: tuple[int, int] | None = None, skip_bad: bool = False,
                 split_file: str | Path | None = None, progress: bool = True):
    meta = DatasetMeta("recon", FPS, (0, 0), ACTION_SPEC, source=f"recon:{Path(src).resolve()}")
    return import_episodes(trajectory_sources(src, split_file), out, meta, size, skip_bad, progress=progress)
