"""The command line, run as users run it: a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vid2world", *args], capture_output=True, text=True, timeout=300)


def test_demo_writes_picture_study_model_and_video(tmp_path):
    # A 3-step training run: this checks the plumbing (the learning itself is tests/test_learning.py).
    proc = run("demo", "--out", str(tmp_path / "demo"), "--train-steps", "3")
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr and "train: 3/3 step (100%)" in proc.stderr  # a log gets lines, not a bar
    assert "rollout: 16/16 frame (100%)" in proc.stderr
    out = tmp_path / "demo"
    study = json.loads((out / "study.json").read_text())
    by_mode = {(r["transfer"], r["temporal_norm"]): r for r in study["rows"]}
    assert by_mode[("extrapolative", "frame")]["leak_max_past"] == 0.0
    assert by_mode[("extrapolative", "causal")]["leak_max_past"] == 0.0
    assert by_mode[("extrapolative", "clip")]["leak_max_past"] > 1e-3
    with Image.open(out / "causality.png") as img:
        assert img.size[0] > 300 and img.size[1] > 200
    assert "| extrapolative | frame | 0 |" in proc.stdout
    import av

    with av.open(str(out / "rollout.mp4")) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == 17 and decoded[0].shape[2] == 3  # the context frame + 16 generated
    report = json.loads((out / "report.json").read_text())
    assert len(report["psnr_per_frame"]) == 16 and report["train_steps"] == 3
    import vid2world as v2w

    model = v2w.WorldModel.from_pretrained(out / "square-world-model")
    assert model.action_dim == 2 and model.metadata["env"] == "square-world"
    again = run("demo", "--out", str(out))  # a second run reuses the saved model instead of training
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "report.json").read_text())["loss_first_last"] == []


def test_bench_causal_json_and_bad_preset(tmp_path):
    proc = run("bench", "causal", "--frames", "5", "--size", "8", "--leak-at", "1", "--json", str(tmp_path / "b.json"))
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "b.json").read_text())
    assert len(result["rows"]) == 10 and result["frames"] == 5
    bad = run("bench", "causal", "--preset", "huge")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["vid2world bench: error: unknown UNet preset 'huge'; available: "
                                               "['dynamicrafter-1024', 'dynamicrafter-256', 'dynamicrafter-512', "
                                               "'pixel-64', 'pixel-tiny', 'tiny']"]


def test_help_explains_every_command():
    proc = run("--help")
    assert proc.returncode == 0 and "demo" in proc.stdout and "bench" in proc.stdout
    proc = run("bench", "causal", "--help")
    assert "--leak-at" in proc.stdout and "--device" in proc.stdout


def test_version_comes_from_the_package():
    import pytest

    import vid2world

    proc = run("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"vid2world {vid2world.__version__}\n"
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]  # one source
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "vid2world.__version__"}
