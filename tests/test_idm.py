"""The inverse-dynamics model: scores on hand-made arrays, a fit on a synthetic world whose actions are readable
from the frames (beats chance; shuffled labels stay at chance), save/load, the apply API and `vid2world idm train`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vid2world.cli import main
from vid2world.data.spec import ActionGroup, ActionSpec, DatasetMeta
from vid2world.data.store import open_dataset
from vid2world.data.writer import DatasetWriter
from vid2world.eval.idm.model import IDM, IDMConfig
from vid2world.eval.idm.data import held_out_split
from vid2world.eval.idm.fit import FitConfig, fit_idm
from vid2world.eval.idm.store import load_idm, save_idm
from vid2world.eval.idm.scores import action_scores, majority_action, scores_with_chance

SIZE = 16
MOVES = {"stay": (0, 0), "up": (-2, 0), "down": (2, 0), "left": (0, -2), "right": (0, 2)}
SPEC = ActionSpec((ActionGroup("move", "one_hot", tuple(MOVES)),
                   ActionGroup("lights", "multi_hot", ("red", "green")),
                   ActionGroup("dim", "continuous", ("level",), low=(0.0,), high=(1.0,))))
TINY = IDMConfig(width=8, stages=1, hidden=32, stem_stride=1)


def episode(rng: np.random.Generator, length: int) -> tuple[np.ndarray, np.ndarray]:
    """A square on a torus moved by a one-hot direction; lamps in two corners lit by a multi-hot group; the
    background's brightness set by a continuous level: action t shows in frame t+1."""
    actions = np.zeros((length, SPEC.dim), np.float32)
    actions[np.arange(length), rng.integers(0, len(MOVES), length)] = 1.0
    actions[:, 5:7] = rng.random((length, 2)) < 0.3  # unbalanced, so that chance is not 0.5
    actions[:, 7] = rng.random(length)
    pos, level, lamps = rng.integers(0, SIZE, 2), 0.5, np.zeros(2)
    frames = np.zeros((length, SIZE, SIZE, 3), np.uint8)
    for t in range(length):
        frame = np.full((SIZE, SIZE, 3), int(40 + 120 * level), np.uint8)
        frame[np.ix_((np.arange(4) + pos[0]) % SIZE, (np.arange(4) + pos[1]) % SIZE)] = 255
        frame[:2, :2, 0], frame[:2, -2:, 1] = 255 * lamps[0], 255 * lamps[1]
        frames[t] = frame
        pos = pos + MOVES[list(MOVES)[int(actions[t, :5].argmax())]]
        lamps, level = actions[t, 5:7], actions[t, 7]
    return frames, actions


def write_dataset(path, episodes: int = 36, val: int = 8, length: int = 20, shuffle: bool = False, seed: int = 0):
    rng = np.random.default_rng(seed)
    with DatasetWriter(path, DatasetMeta("squares", 8.0, (SIZE, SIZE), SPEC, source="test")) as w:
        for i in range(episodes):
            frames, actions = episode(rng, length)
            if shuffle:  # labels no longer tied to the frames: nothing to read back
                actions = actions[rng.permutation(length)]
            w.add(frames, actions, name=f"ep{i:03d}", split="val" if i >= episodes - val else "train")
    return path


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, one_thread):
    data = write_dataset(tmp_path_factory.mktemp("idm") / "squares")
    return data, fit_idm(str(data), FitConfig(steps=300, batch=32, lr=3e-3, model=TINY), progress=False)


def test_scores_on_hand_made_arrays():
    spec = ActionSpec((ActionGroup("turn", "one_hot", ("l", "s", "r")), ActionGroup("keys", "multi_hot", ("a", "b")),
                       ActionGroup("xy", "continuous", ("x", "y"))))
    true = np.array([[1, 0, 0, 1, 0, 1.0, -1.0], [0, 1, 0, 0, 0, 2.0, 1.0], [0, 0, 1, 1, 1, 3.0, 0.5],
                     [0, 1, 0, 0, 1, 4.0, -2.0]])
    pred = np.array([[1, 0, 0, 1, 1, 1.0, -1.0], [0, 0, 1, 0, 0, 2.0, 1.0], [0, 0, 1, 0, 1, 3.0, -0.5],
                     [0, 1, 0, 0, 1, 4.0, -2.0]])
    s = action_scores(spec, pred, true)
    assert s["groups"]["turn"]["accuracy"] == 0.75
    assert s["groups"]["keys"]["per_label"] == {"a": 0.75, "b": 0.75}
    assert s["groups"]["keys"]["exact_match"] == 0.5  # rows 0 and 2 have one label wrong
    # only y's row 2 is off (0.5 vs -0.5): residual 1; totals: x 5, y 5.6875 (mean -0.375)
    assert s["groups"]["xy"]["r2"] == pytest.approx(1 - 1 / (5 + 5.6875), rel=1e-12)
    assert s["groups"]["xy"]["sign_agreement"] == 7 / 8
    assert s["action_accuracy"] == pytest.approx((0.75 + 0.75) / 2, rel=1e-12) and s["pairs"] == 4
    chance = majority_action(spec, true)
    np.testing.assert_array_equal(chance, np.array([0, 1, 0, 0, 0, 2.5, -0.375], np.float32))
    with_chance = scores_with_chance(spec, pred, true, chance)
    assert with_chance["groups"]["turn"]["chance"] == {"accuracy": 0.5}
    assert with_chance["groups"]["keys"]["chance"]["exact_match"] == 0.25
    assert with_chance["groups"]["xy"]["chance"]["r2"] <= 0.0
    assert with_chance["chance_accuracy"] == pytest.approx((0.5 + 0.5) / 2, rel=1e-12)
    constant = action_scores(spec, pred, np.tile(true[:1], (4, 1)))
    assert constant["groups"]["xy"]["r2"] is None  # the truth does not vary: R^2 undefined, not a made-up number


@pytest.mark.parametrize("pred, message", [(np.zeros((4, 6)), r"predicted actions have shape \(4, 6\)"),
                                           (np.full((4, 7), np.nan), "NaN"),
                                           (np.zeros((3, 7)), "same number of rows")])
def test_scores_refuse_bad_arrays(pred, message):
    spec = ActionSpec((ActionGroup("turn", "one_hot", ("l", "s", "r")), ActionGroup("k", "multi_hot", ("a", "b")),
                       ActionGroup("xy", "continuous", ("x", "y"))))
    with pytest.raises(ValueError, match=message):
        action_scores(spec, pred, np.zeros((4, 7)))


def test_idm_beats_chance_on_held_out_frames(fitted):
    _, idm = fitted
    held = idm.report["held_out"]
    assert held["rule"] == "split 'val'" and held["episodes"] == 8 and held["pairs"] == 8 * 19
    move, lights, dim = (held["groups"][k] for k in ("move", "lights", "dim"))
    assert move["accuracy"] > move["chance"]["accuracy"] + 0.3, move
    assert lights["accuracy"] > lights["chance"]["accuracy"] + 0.15, lights
    assert dim["r2"] > 0.5 and dim["chance"]["r2"] <= 0.0, dim
    assert held["action_accuracy"] > held["chance_accuracy"] + 0.3


def test_shuffled_labels_stay_near_chance(tmp_path):
    data = write_dataset(tmp_path / "shuffled", shuffle=True)
    held = fit_idm(str(data), FitConfig(steps=300, batch=32, lr=3e-3, model=TINY), progress=False).report["held_out"]
    move = held["groups"]["move"]
    assert abs(move["accuracy"] - move["chance"]["accuracy"]) < 0.12, move  # 152 pairs: chance +- 0.04 (1 sd)
    assert held["action_accuracy"] < held["chance_accuracy"] + 0.1


def test_same_seed_same_weights(tmp_path):
    data = str(write_dataset(tmp_path / "d", episodes=6, val=2, length=6))
    a, b, c = (fit_idm(data, FitConfig(steps=4, batch=8, seed=s, model=TINY), progress=False) for s in (1, 1, 2))
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    assert not torch.equal(a.heads[0].weight, c.heads[0].weight)


def test_save_load_roundtrip_and_apply_api(fitted, tmp_path):
    data, idm = fitted
    out = save_idm(idm, tmp_path / "idm")
    again = load_idm(out, device="cpu")
    meta = json.loads((out / "idm.json").read_text())
    assert meta["report"]["held_out"] == idm.report["held_out"] and meta["frame_size"] == [SIZE, SIZE]
    ep = open_dataset(data).episode(int(open_dataset(data).episodes_in("val")[0]))
    frames, actions = np.asarray(ep.frames)[None], np.asarray(ep.actions)[None]
    np.testing.assert_array_equal(idm.predict(frames), again.predict(frames))
    assert idm.predict(frames).shape == (1, len(ep.frames) - 1, SPEC.dim)
    scores = again.score(frames, actions)
    assert set(scores) == set(idm.report["held_out"]) - {"rule", "episodes"}
    assert scores["pairs"] == len(ep.frames) - 1
    with pytest.raises(ValueError, match="frames are 8x8, but this IDM reads 16x16"):
        idm.score(frames[:, :, :8, :8], actions)
    with pytest.raises(ValueError, match=r"actions have shape \[1, 20, 7\], expected \[B, T, A\] = \[1, 20, 8\]"):
        idm.score(frames, actions[..., :7])
    with pytest.raises(FileExistsError, match="not empty"):
        save_idm(idm, out)


def test_load_errors_name_the_file(fitted, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such directory"):
        load_idm(tmp_path / "absent")
    out = save_idm(fitted[1], tmp_path / "idm")
    (out / "idm.safetensors").write_bytes(b"not weights")
    with pytest.raises(ValueError, match="idm.safetensors: cannot load"):
        load_idm(out)
    (out / "idm.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="idm.json: key 'format' is 'something else'"):
        load_idm(out)


def test_held_out_by_name_without_val_split(tmp_path):
    data = open_dataset(write_dataset(tmp_path / "d", episodes=20, val=0, length=3))
    train, held, rule = held_out_split(data, 0.1)
    assert len(held) == 2 and not set(train) & set(held) and len(train) + len(held) == 20
    assert "SHA-1" in rule and held_out_split(data, 0.1) == (train, held, rule)


def test_cli_idm_train(tmp_path, capsys):
    data = write_dataset(tmp_path / "d", episodes=6, val=2, length=6)
    args = ["idm", "train", "--data", str(data), "--out", str(tmp_path / "idm"), "--steps", "2", "--batch", "4",
            "--width", "8", "--no-progress"]
    assert main(args) == 0
    assert {p.name for p in (tmp_path / "idm").iterdir()} == {"idm.json", "idm.safetensors"}
    assert "action accuracy (mean of discrete groups)" in capsys.readouterr().out
    assert main(args) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    assert main(args[:4] + ["--out", str(tmp_path / "other"), "--overwrite"]) == 2
    assert "not an IDM directory" in capsys.readouterr().err and (tmp_path / "other" / "keep.txt").exists()
    assert main(["idm", "train", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nothing" in err and "not a vid2world dataset" in err


def test_windows_reach_the_network_in_order(monkeypatch):
    idm = IDM(IDMConfig(frame_size=(4, 4), width=8, stages=1, hidden=8, before=2, after=1), SPEC)
    seen = []
    monkeypatch.setattr(idm, "forward", lambda windows: seen.append(windows.clone()) or
                        [torch.zeros(len(windows), g.dim) for g in SPEC.groups])
    frames = np.arange(2 * 7, dtype=np.uint8).reshape(2, 7, 1, 1, 1) * np.ones((1, 1, 4, 4, 3), np.uint8)
    assert idm.predict(frames, batch=3).shape == (2, 7 - 1 - 2 - 1, SPEC.dim)  # actions 2..4 of each sequence
    windows = torch.cat(seen)[:, :, 0, 0, 0]
    expected = torch.tensor([[b * 7 + t + j for j in range(5)] for b in range(2) for t in range(3)], dtype=torch.uint8)
    assert torch.equal(windows, expected)
    actions = np.zeros((2, 7, SPEC.dim), np.float32)
    actions[..., 0] = actions[..., 7] = 1.0
    assert idm.score(frames, actions)["pairs"] == 2 * 3
    with pytest.raises(ValueError, match=r"expected uint8 \[B, T >= 5, H, W, 3\]"):
        idm.predict(frames[:, :4])
