"""`vid2world rollout`: one window beside its ground truth as a playable mp4, per-frame PSNR, named errors."""

from __future__ import annotations

import re

import av
import pytest
import torch

from vid2world.cli import main

from .test_eval_run import make_inputs


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return make_inputs(tmp_path_factory.mktemp("rollout"))


pytestmark = pytest.mark.usefixtures("one_thread")


def run(inputs, out, *extra):
    model, data = inputs
    return main(["rollout", "--model", str(model), "--data", str(data), "--out", str(out), "--no-progress", *extra])


def test_rollout_writes_a_playable_side_by_side_video(inputs, tmp_path, capsys):
    out = tmp_path / "r.mp4"
    assert run(inputs, out, "--episode", "6", "--context", "2", "--horizon", "6", "--start", "1", "--seed", "3") == 0
    printed = capsys.readouterr().out
    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 8 and frames[0].shape[1] > 2 * frames[0].shape[0] - 40  # two panels side by side
    lines = [line for line in printed.splitlines() if line.startswith("frame")]
    assert len(lines) == 8 and "(given): PSNR  80.00 dB" in lines[0] and "(generated 6)" in lines[-1]
    assert "mean PSNR of the 6 generated frames" in printed


@pytest.mark.parametrize("extra, message", [
    (["--episode", "8", "--context", "2", "--horizon", "3"], r"--episode 8: out of range; .* has 8 episodes \(0..7\)"),
    (["--episode", "0", "--context", "4", "--horizon", "6"], r"--episode 0 \(ep0\) has 9 frames; --start 0 \+ "
                                                             r"--context 4 \+ --horizon 6 need 10"),
])
def test_bad_windows_are_named(inputs, tmp_path, capsys, extra, message):
    assert run(inputs, tmp_path / "r.mp4", *extra) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert re.search(message, err), err


def test_action_space_mismatch_and_existing_output_are_refused(inputs, tmp_path, capsys):
    _, other_data = make_inputs(tmp_path / "three", action_dim=3)
    model, _ = inputs
    code = main(["rollout", "--model", str(model), "--data", str(other_data), "--episode", "0", "--context", "1",
                 "--horizon", "1", "--out", str(tmp_path / "r.mp4")])
    assert code == 2 and "its actions are 3-d (['action.dx', 'action.dy', 'action.dz']), but the model in" in \
        capsys.readouterr().err
    existing = tmp_path / "old.mp4"
    existing.write_bytes(b"x")
    assert run(inputs, existing, "--episode", "0", "--context", "1", "--horizon", "1") == 2
    assert "exists; give a new file name, or pass --overwrite to replace it" in capsys.readouterr().err
    assert existing.read_bytes() == b"x"


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "--model", "m", "--data", "d", "--out", "o", "--protocol", "nwm"], "argument --protocol: invalid "
                                                                                    "choice: 'nwm'"),
    (["evaluate", "--model", "m", "--data", "d", "--out", "o", "--protocol", "rt1", "--windows", "0"],
     "argument --windows: must be an integer >= 1, got 0"),
    (["rollout", "--model", "m", "--data", "d", "--out", "o.mp4", "--episode", "0", "--context", "1", "--horizon",
      "1", "--guidance", "nan"], "argument --guidance: expected a finite number, got 'nan'"),
])
def test_bad_flags_are_refused_before_any_work(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err.strip().splitlines()[-1]


def test_evaluate_names_a_missing_model_in_one_line(tmp_path, capsys):
    code = main(["evaluate", "--model", str(tmp_path / "none"), "--data", str(tmp_path / "none"), "--protocol", "rt1",
                 "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"vid2world evaluate: error: --model {tmp_path / 'none'}: no such directory"]
    assert not (tmp_path / "out").exists()  # refused before the output directory is made
