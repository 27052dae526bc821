"""The dataset format: writer -> reader round trips, metadata, atomic writes, named errors."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from vid2world.data.spec import ActionGroup, ActionSpec, DatasetMeta
from vid2world.data.store import open_dataset
from vid2world.data.writer import DatasetWriter

SPEC = ActionSpec((ActionGroup("keys", "multi_hot", ("w", "a", "s")),
                   ActionGroup("turn", "one_hot", ("left", "none", "right"), values=(-5.0, 0.0, 5.0))))


def episode(rng: np.random.Generator, length: int, h: int = 6, w: int = 8) -> tuple[np.ndarray, np.ndarray]:
    frames = rng.integers(0, 256, (length, h, w, 3), dtype=np.uint8)
    actions = np.zeros((length, SPEC.dim), np.float32)
    actions[:, :3] = rng.integers(0, 2, (length, 3))
    actions[np.arange(length), 3 + rng.integers(0, 3, length)] = 1
    return frames, actions


def write(tmp_path, episodes, shard_frames=16, spec=SPEC, name="ds"):
    meta = DatasetMeta("test", 8.0, (6, 8), spec, source="unit-test")
    with DatasetWriter(tmp_path / name, meta, shard_frames=shard_frames) as writer:
        for i, (frames, actions) in enumerate(episodes):
            writer.add(frames, actions, name=f"ep{i}", split="val" if i % 3 == 2 else "train")
    return open_dataset(tmp_path / name)


def test_round_trip_across_shards(tmp_path):
    rng = np.random.default_rng(0)
    episodes = [episode(rng, int(n)) for n in rng.integers(1, 20, 12)]
    ds = write(tmp_path, episodes, shard_frames=16)
    assert len(ds.shards) > 1, "small shards must roll over"
    assert len(ds) == 12 and ds.num_frames == sum(len(f) for f, _ in episodes)
    for i, (frames, actions) in enumerate(episodes):
        ep = ds.episode(i)
        assert ep.name == f"ep{i}" and ep.split == ("val" if i % 3 == 2 else "train")
        np.testing.assert_array_equal(ep.frames, frames)
        np.testing.assert_array_equal(ep.actions, actions)
    assert ds.episodes_in("val").tolist() == [2, 5, 8, 11]
    copy = pickle.loads(pickle.dumps(ds))  # DataLoader workers get a pickled dataset
    np.testing.assert_array_equal(copy.episode(5).frames, episodes[5][0])
    assert not list(tmp_path.glob(".ds.tmp-*")), "the temporary directory must be gone after close"


def test_metadata_round_trip_and_model_space(tmp_path):
    ds = write(tmp_path, [episode(np.random.default_rng(1), 5)])
    assert ds.meta.actions == SPEC and ds.meta.fps == 8.0 and ds.meta.frame_size == (6, 8)
    assert ds.meta.actions.model_space().kind == "multi_hot" and ds.meta.actions.model_space().dim == 6
    cont = ActionSpec.continuous(["x", "y"], [-1, -2], [1, 2])
    assert cont.model_space().kind == "continuous" and cont.model_space().names == ("action.x", "action.y")
    assert SPEC.describe(np.array([1, 0, 1, 0, 0, 1], np.float32)) == "w+s turn+5"
    raw = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert raw["format"] == "vid2world-dataset" and raw["actions"]["dim"] == 6


def test_action_free_dataset(tmp_path):
    rng = np.random.default_rng(2)
    meta = DatasetMeta("video", 10.0, (6, 8), None)
    with DatasetWriter(tmp_path / "v", meta) as w:
        w.add(rng.integers(0, 256, (4, 6, 8, 3), dtype=np.uint8))
        with pytest.raises(ValueError, match="action-free"):
            w.add(rng.integers(0, 256, (4, 6, 8, 3), dtype=np.uint8), np.zeros((4, 2)))
    ds = open_dataset(tmp_path / "v")
    assert ds.meta.actions is None and ds.episode(0).actions is None
    assert not (tmp_path / "v" / "shards" / "s00000.actions").exists()


@pytest.mark.parametrize("frames, actions, message", [
    (np.zeros((4, 6, 9, 3), np.uint8), np.zeros((4, 6)), r"episode 'bad'.*expected uint8 \[T>0, 6, 8, 3\]"),
    (np.zeros((4, 6, 8, 3), np.float32), np.zeros((4, 6)), "episode 'bad'.*float32"),
    (np.zeros((4, 6, 8, 3), np.uint8), np.zeros((3, 6)), "3 actions for 4 frames"),
    (np.zeros((4, 6, 8, 3), np.uint8), np.zeros((4, 5)), r"expected \[T, 6\]"),
    (np.zeros((4, 6, 8, 3), np.uint8), np.zeros((4, 6)), "'turn' is one-hot"),
    (np.zeros((4, 6, 8, 3), np.uint8), np.full((4, 6), 0.5), "'keys' .* values other than 0 and 1"),
])
def test_bad_episodes_are_named_and_nothing_is_left(tmp_path, frames, actions, message):
    meta = DatasetMeta("test", 8.0, (6, 8), SPEC)
    with pytest.raises(ValueError, match=message):
        with DatasetWriter(tmp_path / "ds", meta) as w:
            w.add(frames, actions, name="bad")
    assert not (tmp_path / "ds").exists() and list(tmp_path.iterdir()) == [], "a failed write leaves nothing"


def test_existing_output_is_refused(tmp_path):
    (tmp_path / "ds").mkdir()
    with pytest.raises(FileExistsError, match="already exists"):
        DatasetWriter(tmp_path / "ds", DatasetMeta("t", 1.0, (6, 8), SPEC))


def test_truncated_or_missing_shard_is_named(tmp_path):
    ds = write(tmp_path, [episode(np.random.default_rng(3), 10) for _ in range(3)], shard_frames=8)
    shard = tmp_path / "ds" / "shards" / f"{ds.shards[1]}.frames"
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(ValueError, match=f"{shard.name}.*bytes, expected"):
        open_dataset(tmp_path / "ds").check()
    shard.unlink()
    with pytest.raises(FileNotFoundError, match=shard.name):
        open_dataset(tmp_path / "ds").episode(1)


def test_not_a_dataset(tmp_path):
    with pytest.raises(FileNotFoundError, match="no dataset.json"):
        open_dataset(tmp_path)
    (tmp_path / "dataset.json").write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="expected format 'vid2world-dataset'"):
        open_dataset(tmp_path)


def test_spec_validation_errors():
    with pytest.raises(ValueError, match="kind must be one of"):
        ActionGroup("g", "binary", ("a",))
    with pytest.raises(ValueError, match="values has 2 entries"):
        ActionGroup("g", "one_hot", ("a", "b", "c"), values=(1.0, 2.0))
    with pytest.raises(ValueError, match="'dim' says 7"):
        ActionSpec.from_dict({"dim": 7, "groups": [g.to_dict() for g in SPEC.groups]})
    assert ActionSpec.from_dict(SPEC.to_dict()) == SPEC


def test_a_per_frame_state_round_trips_and_is_checked(tmp_path):
    rng = np.random.default_rng(1)
    meta = DatasetMeta("test", 8.0, (6, 8), SPEC, state=("x", "y"))
    episodes = [(*episode(rng, n), rng.normal(size=(n, 2)).astype(np.float32)) for n in (5, 9, 3)]
    with DatasetWriter(tmp_path / "ds", meta, shard_frames=8) as writer:
        for i, (frames, actions, state) in enumerate(episodes):
            writer.add(frames, actions, f"ep{i}", state=state)
    ds = open_dataset(tmp_path / "ds")
    assert ds.meta.state == ("x", "y") and len(ds.shards) > 1
    assert all(np.array_equal(ds.episode(i).state, s) for i, (_, _, s) in enumerate(episodes))
    assert write(tmp_path, [episode(rng, 4)], name="plain").episode(0).state is None
    frames, actions, state = episodes[0]
    with DatasetWriter(tmp_path / "bad", meta) as writer:
        with pytest.raises(ValueError, match=r"state is \[5, 3\], expected float \[5, 2\] \(x, y\)"):
            writer.add(frames, actions, "e", state=np.zeros((5, 3)))
        with pytest.raises(ValueError, match="NaN or inf"):
            writer.add(frames, actions, "e", state=np.full((5, 2), np.nan))
        writer.add(frames, actions, "e", state=state)
