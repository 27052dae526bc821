"""LeRobot's v3.0 dataset layout, as its own writer lays it out (lerobot >= 0.4.0: src/lerobot/datasets/*.py;
facts gathered in docs/data.md "LeRobot"): the paths, the default features, the parquet schemas, and the checks a
reader makes before it trusts a directory. `importers/lerobot.py` reads it; `export_lerobot.py` writes it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
TASKS_PATH = "meta/tasks.parquet"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TOLERANCE_S = 1e-4  # LeRobot's default: a decoded frame's time must be this close to the one asked for
DEFAULT_FEATURES = {name: {"dtype": dtype, "shape": [1], "names": None}
                    for name, dtype in (("timestamp", "float32"), ("frame_index", "int64"),
                                        ("episode_index", "int64"), ("index", "int64"), ("task_index", "int64"))}
EPISODE_COLUMNS = ("episode_index", "data/chunk_index", "data/file_index", "dataset_from_index", "dataset_to_index")


def read_info(root: Path) -> dict[str, Any]:
    """meta/info.json of a v3 dataset, its required keys checked (each error names the file and key)."""
    path = root / INFO_PATH
    if not path.is_file():
        raise FileNotFoundError(f"{root}: not a LeRobot dataset (no {INFO_PATH})")
    try:
        info = json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    for key in ("codebase_version", "fps", "features", "total_episodes", "total_frames", "data_path"):
        if key not in info:
            raise ValueError(f"{path}: key {key!r} missing (a LeRobot v3.0 info.json has it)")
    version = str(info["codebase_version"])
    if not version.startswith("v3."):
        raise ValueError(f"{path}: codebase_version {version!r}; vid2world reads LeRobot v3.x datasets "
                         "(convert older ones with LeRobot's convert_dataset_v21_to_v30)")
    if not float(info["fps"]) > 0:
        raise ValueError(f"{path}: fps must be > 0, got {info['fps']!r}")
    return info


def feature_names(info: dict[str, Any], key: str) -> list[str]:
    """The entry names of a vector feature (`names` as a list, a dict of lists, or null: key_0, key_1, ...)."""
    feature = info["features"][key]
    size = int(feature["shape"][0])
    names = feature.get("names")
    if isinstance(names, dict):
        names = [n for part in names.values() for n in (part if isinstance(part, list) else [part])]
    if not isinstance(names, list) or len(names) != size:
        names = [f"{key}_{i}" for i in range(size)]
    return [str(n) for n in names]


def video_keys(info: dict[str, Any]) -> list[str]:
    return [k for k, f in info["features"].items() if f.get("dtype") == "video"]


def pandas_index_metadata(index: str, columns: list[tuple[str, str]]) -> bytes:
    """The `pandas` schema metadata that makes pandas read column `index` back as the table's index (LeRobot's
    tasks.parquet: the task text is the index, so `tasks.iloc[i].name` is the text, not the number i)."""
    described = [{"name": name, "field_name": name, "pandas_type": kind, "numpy_type": "object" if kind == "unicode"
                  else kind, "metadata": None} for name, kind in columns]
    return json.dumps({"index_columns": [index], "column_indexes": [{"name": None, "field_name": None,
                       "pandas_type": "unicode", "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}],
                       "columns": described, "creator": {"library": "pyarrow"}, "pandas_version": "2.2.3"}).encode()
