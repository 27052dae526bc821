"""Importers on small files written in exactly the real layouts: RT-1 npz and RLDS, CS:GO HDF5, RECON folders."""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest
from PIL import Image

from vid2world.cli import main
from vid2world.data.importers import (DataImportError, import_csgo, import_recon, import_rlds, import_rt1,
                                      recon_actions, rlds_to_npz)
from vid2world.data.importers.csgo import ACTION_SPEC as CSGO_SPEC
from vid2world.data.importers.rt1 import ACTION_FIELDS


def rt1_episode(rng, length):
    return rng.integers(0, 256, (length, 8, 10, 3), dtype=np.uint8), rng.normal(size=(length, 13)).astype(np.float32)


def test_rt1_npz(tmp_path):
    rng = np.random.default_rng(0)
    src = tmp_path / "rt1"
    src.mkdir()
    episodes = {}
    for name in ("train_eps_00000000", "train_eps_00000001", "val_eps_00000000"):
        episodes[name] = rt1_episode(rng, int(rng.integers(3, 9)))
        np.savez(src / f"{name}.npz", image=episodes[name][0], action=episodes[name][1])
    ds, report = import_rt1(src, tmp_path / "out", progress=False)
    assert report.imported == 3 and not report.skipped
    assert ds.names == sorted(episodes) and ds.splits == ["train", "train", "val"]
    for i, name in enumerate(ds.names):
        np.testing.assert_array_equal(ds.episode(i).frames, episodes[name][0])
        np.testing.assert_array_equal(ds.episode(i).actions, episodes[name][1])
    spec = ds.meta.actions
    assert spec.dim == 13 and spec.names[3] == "gripper_closedness_action.close" and ds.meta.fps == 3
    everything = np.concatenate([a for _, a in episodes.values()])
    assert spec.groups[0].low == pytest.approx(everything[:, :2].min(0).tolist())  # observed ranges recorded
    held = tmp_path / "val.json"
    held.write_text('["train_eps_00000001.npz"]')  # the official validation list is JSON
    ds2, _ = import_rt1(src, tmp_path / "out2", split_file=held, progress=False)
    assert ds2.splits == ["train", "test", "train"]


def test_rt1_bad_files_are_named_or_counted(tmp_path):
    rng = np.random.default_rng(1)
    src = tmp_path / "rt1"
    src.mkdir()
    np.savez(src / "train_eps_00000000.npz", image=rt1_episode(rng, 4)[0], action=rt1_episode(rng, 4)[1])
    (src / "train_eps_00000001.npz").write_bytes(b"PK\x03\x04 this is not a zip archive")
    np.savez(src / "train_eps_00000002.npz", image=rt1_episode(rng, 4)[0])  # no 'action'
    np.savez(src / "train_eps_00000003.npz", image=rt1_episode(rng, 4)[0], action=np.zeros((4, 7)))
    with pytest.raises(DataImportError, match="train_eps_00000001.npz.*not a valid npz archive, or a truncated one"):
        import_rt1(src, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists() and [p.name for p in tmp_path.iterdir()] == ["rt1"]
    ds, report = import_rt1(src, tmp_path / "out", skip_bad=True, progress=False)
    assert len(ds) == 1 and report.imported == 1 and len(report.skipped) == 3
    reasons = dict(report.skipped)
    assert "missing ['action']" in reasons[str(src / "train_eps_00000002.npz")]
    assert "expected [4, 13]" in reasons[str(src / "train_eps_00000003.npz")]
    assert "skipped 3 bad inputs" in report.summary() and len(ds.meta.extra["import"]["skipped"]) == 3


def fake_rlds_episode(rng, length):
    """What tfds.as_numpy yields for fractal20220817_data: nested step dicts; terminate_episode is int32."""
    steps = []
    for t in range(length):
        action = {"base_displacement_vector": np.float32([10 + t, 11]), "base_displacement_vertical_rotation":
                  np.float32([20]), "gripper_closedness_action": np.float32([30]),
                  "rotation_delta": np.float32([40, 41, 42]), "terminate_episode": np.int32([0, 1, 0]),
                  "world_vector": np.float32([60, 61, 62])}
        steps.append({"observation": {"image": rng.integers(0, 256, (8, 10, 3), dtype=np.uint8),
                                      "natural_language_instruction": b"close drawer"},
                      "action": action, "is_first": t == 0, "is_last": t == length - 1})
    return {"steps": iter(steps)}


def test_rlds_to_official_npz_and_straight_import(tmp_path):
    rng = np.random.default_rng(2)
    files = rlds_to_npz([fake_rlds_episode(rng, 3), fake_rlds_episode(rng, 5)], tmp_path / "npz")
    assert [f.name for f in files] == ["train_eps_00000000.npz", "train_eps_00000001.npz"]
    with np.load(files[1]) as data:
        assert data["image"].shape == (5, 8, 10, 3) and data["image"].dtype == np.uint8
        np.testing.assert_array_equal(data["action"][2], [12, 11, 20, 30, 40, 41, 42, 0, 1, 0, 60, 61, 62])
    assert [name for name, _ in ACTION_FIELDS] == sorted(name for name, _ in ACTION_FIELDS)  # the release's order
    ds, report = import_rlds("fractal", tmp_path / "ds", episodes=[fake_rlds_episode(rng, 4)], progress=False)
    assert report.imported == 1 and ds.episode(0).actions[0, 10:].tolist() == [60, 61, 62]


def write_csgo_file(path, rng, frames=6):
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = rng.integers(0, 256, (frames, 150, 280, 3), dtype=np.uint8)
    actions = np.zeros((frames, 51))
    with h5py.File(path, "w") as f:
        for i in range(frames):
            y = np.zeros(51)
            y[rng.integers(0, 11)] = 1.0  # one key
            y[11] = float(i % 2)  # left click
            y[13 + rng.integers(0, 23)] = 1.0  # mouse x bin
            y[36 + 7] = 1.0  # mouse y: no motion
            f.create_dataset(f"frame_{i}_x", data=rgb[i][..., ::-1])  # stored BGR
            f.create_dataset(f"frame_{i}_y", data=y)
            f.create_dataset(f"frame_{i}_xaux", data=np.zeros(54))
            f.create_dataset(f"frame_{i}_helperarr", data=np.zeros(2))
            actions[i] = y
    return rgb, actions


def test_csgo_hdf5(tmp_path):
    rng = np.random.default_rng(3)
    src = tmp_path / "full_res"
    truth = {name: write_csgo_file(src / sub / f"{name}.hdf5", rng)
             for sub, name in (("1-200", "hdf5_dm_july2021_1"), ("1-200", "hdf5_dm_july2021_10"),
                               ("201-400", "hdf5_dm_july2021_3"))}
    (tmp_path / "test_split.txt").write_text("hdf5_dm_july2021_3.hdf5\nhdf5_dm_july2021_99.hdf5")  # no newline
    ds, _ = import_csgo(src, tmp_path / "out", split_file=tmp_path / "test_split.txt", progress=False)
    assert ds.names == ["1-200/hdf5_dm_july2021_1", "201-400/hdf5_dm_july2021_3", "1-200/hdf5_dm_july2021_10"]
    assert ds.splits == ["train", "test", "train"] and ds.meta.frame_size == (150, 280)
    for i, name in enumerate(ds.names):
        rgb, actions = truth[name.split("/")[1]]
        np.testing.assert_array_equal(ds.episode(i).frames, rgb)  # BGR flipped to RGB
        np.testing.assert_array_equal(ds.episode(i).actions, actions)
    assert ds.meta.actions == CSGO_SPEC and ds.meta.actions.model_space().kind == "multi_hot"
    assert [g.dim for g in CSGO_SPEC.groups] == [11, 2, 23, 15]
    assert CSGO_SPEC.groups[2].values[11] == 0 and CSGO_SPEC.groups[3].values[7] == 0  # "no motion" bins


def test_csgo_truncated_file(tmp_path):
    rng = np.random.default_rng(4)
    src = tmp_path / "csgo"
    write_csgo_file(src / "hdf5_dm_july2021_1.hdf5", rng)
    bad = src / "hdf5_dm_july2021_2.hdf5"
    write_csgo_file(bad, rng)
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    with pytest.raises(DataImportError, match="hdf5_dm_july2021_2.hdf5"):
        import_csgo(src, tmp_path / "out", progress=False)
    ds, report = import_csgo(src, tmp_path / "out", skip_bad=True, progress=False)
    assert len(ds) == 1 and [p for p, _ in report.skipped] == [str(bad)]


def write_trajectory(folder, rng, position, yaw):
    folder.mkdir(parents=True)
    for t in range(len(yaw)):
        Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(folder / f"{t}.jpg")
    with open(folder / "traj_data.pkl", "wb") as f:
        pickle.dump({"position": position, "yaw": yaw}, f)


def test_recon_actions_by_hand():
    # facing +y (yaw pi/2), moving 0.25 m along +y: one waypoint straight ahead, no sideways motion
    position = np.array([[0.0, 0.0], [0.0, 0.25], [0.0, 0.25]])
    yaw = np.array([np.pi / 2, np.pi / 2 + 0.1, np.pi / 2 + 0.1 + 3.5])
    a = recon_actions(position, yaw)
    assert a[0, 0] == pytest.approx(2 * (1 + 2.5) / 7.5 - 1) and a[0, 1] == pytest.approx(2 * 4 / 8 - 1, abs=1e-6)
    assert a[0, 2] == pytest.approx(0.1, abs=1e-6)
    assert a[1, 2] == pytest.approx(3.5 - 2 * np.pi, abs=1e-5)  # wrapped into [-pi, pi)
    assert a[2].tolist() == pytest.approx([-1 / 3, 0.0, 0.0])  # the last frame: normalised zero motion


def test_recon_folders(tmp_path):
    rng = np.random.default_rng(5)
    src = tmp_path / "recon"
    for name in ("jackal_2019-10-20_0_r00", "jackal_2019-10-20_0_r01"):
        write_trajectory(src / name, rng, rng.normal(size=(5, 2)).cumsum(0), rng.uniform(-3, 3, 5))
    (tmp_path / "traj_names.txt").write_text("jackal_2019-10-20_0_r01\n")
    ds, _ = import_recon(src, tmp_path / "out", split_file=tmp_path / "traj_names.txt", progress=False)
    assert ds.names == ["jackal_2019-10-20_0_r00", "jackal_2019-10-20_0_r01"] and ds.splits == ["train", "test"]
    for i, name in enumerate(ds.names):
        decoded = np.stack([np.asarray(Image.open(src / name / f"{t}.jpg")) for t in range(5)])
        np.testing.assert_array_equal(ds.episode(i).frames, decoded)
        with open(src / name / "traj_data.pkl", "rb") as f:
            data = pickle.load(f)
        np.testing.assert_allclose(ds.episode(i).actions, recon_actions(data["position"], data["yaw"]))


def test_recon_missing_jpg_and_hostile_pickle(tmp_path):
    rng = np.random.default_rng(6)
    src = tmp_path / "recon"
    write_trajectory(src / "a", rng, np.zeros((4, 2)), np.zeros(4))
    write_trajectory(src / "b", rng, np.zeros((4, 2)), np.zeros(4))
    (src / "b" / "2.jpg").unlink()
    with pytest.raises(DataImportError, match=r"b/2\.jpg: missing"):
        import_recon(src, tmp_path / "out", progress=False)
    (src / "a" / "traj_data.pkl").write_bytes(pickle.dumps({"position": np.zeros((4, 2)), "yaw": print}))
    with pytest.raises(DataImportError, match="refusing to unpickle builtins.print"):
        import_recon(src, tmp_path / "out", progress=False)


def test_cli_convert_summary_and_errors(tmp_path, capsys):
    rng = np.random.default_rng(7)
    src = tmp_path / "rt1"
    src.mkdir()
    np.savez(src / "train_eps_00000000.npz", image=rt1_episode(rng, 4)[0], action=rt1_episode(rng, 4)[1])
    (src / "train_eps_00000001.npz").write_bytes(b"garbage")
    assert main(["data", "convert", "--format", "rt1", "--src", str(src), "--out", str(tmp_path / "a")]) == 2
    assert "train_eps_00000001.npz" in capsys.readouterr().err
    assert main(["data", "convert", "--format", "rt1", "--src", str(src), "--out", str(tmp_path / "b"),
                 "--skip-bad", "--size", "4x6"]) == 0
    out = capsys.readouterr().out
    assert "imported 1 episodes" in out and "skipped 1 bad inputs" in out and "train_eps_00000001.npz" in out
    from vid2world.data.store import open_dataset
    assert open_dataset(tmp_path / "b").meta.frame_size == (4, 6)


def test_missing_or_empty_sources_and_files_that_are_not_npz_are_named(tmp_path, capsys):
    for importer in (import_rt1, import_csgo, import_recon, import_rlds):  # was "no source files"
        with pytest.raises(FileNotFoundError, match="nonexistent: no such "):
            importer(tmp_path / "nonexistent", tmp_path / "out", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataImportError, match=r"empty: no \*.npz files under it; expected RT-1 episodes"):
        import_rt1(tmp_path / "empty", tmp_path / "out", progress=False)
    src = tmp_path / "rt1"
    src.mkdir()
    (src / "notes.npz").write_text("hello, I am text")  # numpy answered with a message about pickles
    with pytest.raises(DataImportError) as err:
        import_rt1(src, tmp_path / "out", progress=False)
    text = str(err.value)
    assert text.startswith(f"{src / 'notes.npz'}: ValueError: not a valid npz archive (a zip of .npy arrays)")
    assert "pickle" not in text and "pass skip_bad=True" in text and "--skip-bad" not in text
    (src / "notes.npz").unlink()
    with open(src / "array.npz", "wb") as f:  # a bare .npy under an .npz name crashed the import
        np.save(f, np.zeros(3))
    with pytest.raises(DataImportError, match=r"array.npz: ValueError: not a valid npz archive"):
        import_rt1(src, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
    assert main(["data", "convert", "--format", "rt1", "--src", str(src), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err  # before the error line: the progress bar (stderr)
    last = err.strip().splitlines()[-1]
    assert "Traceback" not in err and last.startswith("vid2world data: error: ") and "array.npz" in last
    assert "pass --skip-bad" in last and "skip_bad" not in last
    assert main(["data", "convert", "--format", "csgo", "--src", str(tmp_path / "nonexistent"), "--out",
                 str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.strip() == f"vid2world data: error: {tmp_path / 'nonexistent'}: no such source " \
                                              "directory"
