"""LeRobot v3.0 datasets in and out (issue 33). A dataset is written here by LeRobot's own layout rules (its
writer's paths, parquet schemas, pandas-indexed tasks, per-episode H.264 yuv420p streams concatenated in one mp4,
as lerobot >= 0.4 lays them out), imported, exported and imported again: the same frames, actions, state and
episode boundaries. Broken datasets are refused by name."""

from __future__ import annotations

import json
from fractions import Fraction

import av
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vid2world.cli import main
from vid2world.data.importers import import_lerobot
from vid2world.data.store import open_dataset

FPS, H, W = 10, 24, 32
LENGTHS = (7, 5, 9)


def _vector(values: np.ndarray) -> pa.Array:
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1).astype(np.float32)), values.shape[1])


def _encode(path, episodes: list[np.ndarray]) -> list[float]:
    """All episodes into one mp4, as LeRobot's concatenation leaves them; returns each one's from_timestamp."""
    path.parent.mkdir(parents=True, exist_ok=True)
    starts, t = [], 0.0
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(FPS))
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"g": "2", "crf": "30"}
        for frames in episodes:
            starts.append(t)
            t += len(frames) / FPS
            for f in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return starts


def write_lerobot(root, cameras=("observation.images.top",), seed=0) -> dict:
    """A small v3.0 dataset laid out as LeRobot's writer lays it out."""
    rng = np.random.default_rng(seed)
    grid = np.linspace(0, 255, W, dtype=np.uint8)
    episodes = [np.stack([np.broadcast_to(np.roll(grid, 3 * t + e)[None, :, None], (H, W, 3)) for t in range(n)])
                for e, n in enumerate(LENGTHS)]
    total = sum(LENGTHS)
    starts = np.concatenate([[0], np.cumsum(LENGTHS)])
    action, state = rng.normal(size=(total, 2)), rng.normal(size=(total, 3))
    video = {}
    for cam in cameras:
        video[cam] = _encode(root / f"videos/{cam}/chunk-000/file-000.mp4", episodes)
    frame_index = np.concatenate([np.arange(n) for n in LENGTHS])
    data = pa.table({"action": _vector(action), "observation.state": _vector(state),
                     "timestamp": pa.array((frame_index / FPS).astype(np.float32)),
                     "frame_index": pa.array(frame_index.astype(np.int64)),
                     "episode_index": pa.array(np.repeat(np.arange(3), LENGTHS).astype(np.int64)),
                     "index": pa.array(np.arange(total, dtype=np.int64)),
                     "task_index": pa.array(np.zeros(total, np.int64))})
    (root / "data/chunk-000").mkdir(parents=True)
    pq.write_table(data, root / "data/chunk-000/file-000.parquet")
    columns = {"episode_index": np.arange(3), "tasks": [["push the block"]] * 3, "length": list(LENGTHS),
               "data/chunk_index": [0] * 3, "data/file_index": [0] * 3,
               "dataset_from_index": starts[:-1], "dataset_to_index": starts[1:],
               "meta/episodes/chunk_index": [0] * 3, "meta/episodes/file_index": [0] * 3,
               "stats/action/min": [[-1.0, -1.0]] * 3}
    for cam in cameras:
        columns.update({f"videos/{cam}/chunk_index": [0] * 3, f"videos/{cam}/file_index": [0] * 3,
                        f"videos/{cam}/from_timestamp": video[cam],
                        f"videos/{cam}/to_timestamp": [s + n / FPS for s, n in zip(video[cam], LENGTHS)]})
    (root / "meta/episodes/chunk-000").mkdir(parents=True)
    pq.write_table(pa.table(columns), root / "meta/episodes/chunk-000/file-000.parquet")
    pd.DataFrame({"task_index": [0]}, index=pd.Index(["push the block"], name="task")).to_parquet(
        root / "meta/tasks.parquet")
    features = {cam: {"dtype": "video", "shape": [H, W, 3], "names": ["height", "width", "channels"],
                      "info": {"video.fps": FPS, "video.codec": "h264", "video.pix_fmt": "yuv420p"}}
                for cam in cameras}
    features["action"] = {"dtype": "float32", "shape": [2], "names": ["x", "y"]}
    features["observation.state"] = {"dtype": "float32", "shape": [3], "names": {"motors": ["a", "b", "c"]}}
    for name, dtype in (("timestamp", "float32"), ("frame_index", "int64"), ("episode_index", "int64"),
                        ("index", "int64"), ("task_index", "int64")):
        features[name] = {"dtype": dtype, "shape": [1], "names": None}
    info = {"codebase_version": "v3.0", "robot_type": "toy", "total_episodes": 3, "total_frames": total,
            "total_tasks": 1, "chunks_size": 1000, "data_files_size_in_mb": 100, "video_files_size_in_mb": 200,
            "fps": FPS, "splits": {"train": "0:2", "test": "2:3"},
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
            "features": features}
    (root / "meta/info.json").write_text(json.dumps(info))
    return {"episodes": episodes, "action": action, "state": state}


def test_import_export_import_keeps_frames_actions_state_and_boundaries(tmp_path):
    truth = write_lerobot(tmp_path / "lr")
    first, report = import_lerobot(tmp_path / "lr", tmp_path / "a", progress=False)
    assert report.imported == 3 and first.meta.fps == FPS and first.lengths.tolist() == list(LENGTHS)
    assert first.meta.state == ("a", "b", "c") and first.meta.actions.groups[0].labels == ("x", "y")
    assert first.splits == ["train", "train", "test"]
    for e, frames in enumerate(truth["episodes"]):  # lossy H.264 in the source: close, not equal
        assert np.abs(first.episode(e).frames.astype(int) - frames).mean() < 3
    starts = np.concatenate([[0], np.cumsum(LENGTHS)])
    assert all(np.allclose(first.episode(e).actions, truth["action"][starts[e]:starts[e + 1]]) for e in range(3))
    assert main(["data", "export", "--format", "lerobot", "--src", str(tmp_path / "a"), "--out",
                 str(tmp_path / "lr2"), "--no-progress"]) == 0
    assert main(["data", "convert", "--format", "lerobot", "--src", str(tmp_path / "lr2"), "--out",
                 str(tmp_path / "b"), "--no-progress"]) == 0
    second = open_dataset(tmp_path / "b")
    assert second.lengths.tolist() == first.lengths.tolist() and second.splits == first.splits
    for e in range(3):
        a, b = first.episode(e), second.episode(e)
        assert np.array_equal(a.frames, b.frames) and np.array_equal(a.actions, b.actions)
        assert np.array_equal(a.state, b.state)
    tasks = pd.read_parquet(tmp_path / "lr2/meta/tasks.parquet")  # as LeRobot reads it: the text is the index
    assert tasks.iloc[0].name == first.meta.source and tasks.task_index.tolist() == [0]
    info = json.loads((tmp_path / "lr2/meta/info.json").read_text())
    assert info["total_frames"] == sum(LENGTHS) and info["features"]["observation.state"]["shape"] == [3]
    stats = json.loads((tmp_path / "lr2/meta/stats.json").read_text())
    assert np.array(stats["observation.image"]["mean"]).shape == (3, 1, 1) and stats["action"]["count"] == [21]


def test_a_camera_is_chosen_by_name(tmp_path):
    write_lerobot(tmp_path / "lr", cameras=("observation.images.top", "observation.images.wrist"))
    ds, _ = import_lerobot(tmp_path / "lr", tmp_path / "w", camera="observation.images.wrist", progress=False)
    assert ds.meta.extra["lerobot"]["camera"] == "observation.images.wrist"
    with pytest.raises(ValueError, match=r"--camera side: not a video feature .*'observation.images.top'"):
        import_lerobot(tmp_path / "lr", tmp_path / "x", camera="side", progress=False)


def _break(root, what: str) -> None:
    if what == "video":
        (root / "videos/observation.images.top/chunk-000/file-000.mp4").unlink()
    elif what == "gap":
        table = pq.read_table(root / "data/chunk-000/file-000.parquet")
        stamps = table.column("timestamp").to_numpy().copy()
        stamps[9] += 0.1  # episode 1, frame 2 a frame late
        pq.write_table(table.set_column(table.schema.get_field_index("timestamp"), "timestamp",
                                        pa.array(stamps)), root / "data/chunk-000/file-000.parquet")
    elif what == "episode":
        table = pq.read_table(root / "data/chunk-000/file-000.parquet")
        index = table.column("episode_index").to_numpy().copy()
        index[8] = 2
        pq.write_table(table.set_column(table.schema.get_field_index("episode_index"), "episode_index",
                                        pa.array(index)), root / "data/chunk-000/file-000.parquet")
    else:
        info = json.loads((root / "meta/info.json").read_text())
        info["codebase_version"] = "v2.1"
        (root / "meta/info.json").write_text(json.dumps(info))


@pytest.mark.parametrize("what, message", [
    ("video", r"file-000\.mp4: the episode's video is missing"),
    ("gap", r"episode 1, frame 2: timestamp 0\.3000 s, expected 0\.2000 s"),
    ("episode", r"rows 7\.\.12 of episode 1 carry episode_index \[1, 2\]"),
    ("version", r"codebase_version 'v2\.1'"),
])
def test_broken_datasets_are_named(tmp_path, what, message, capsys):
    write_lerobot(tmp_path / "lr")
    _break(tmp_path / "lr", what)
    assert main(["data", "convert", "--format", "lerobot", "--src", str(tmp_path / "lr"), "--out",
                 str(tmp_path / "out"), "--no-progress"]) == 2
    assert pytest.importorskip("re").search(message, capsys.readouterr().err)
    assert not (tmp_path / "out").exists()
