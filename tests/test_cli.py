"""The command line, run as users run it: a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from vid2world.cli import main


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
    import vid2world

    proc = run("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"vid2world {vid2world.__version__}\n"
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]  # one source
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "vid2world.__version__"}


# ---- bad argument values: refused by argparse, before any work, in one line ----------------------------------------
@pytest.mark.parametrize("argv,message", [
    (["data", "record", "--env", "crafter", "--episodes", "0", "--out", "x"],  # printed a whole dataclass
     "argument --episodes: must be an integer >= 1, got 0"),
    (["data", "record", "--env", "crafter", "--episodes", "1", "--seed", "-1", "--out", "x"],
     "argument --seed: must be an integer >= 0, got -1"),
    (["data", "preview", "DIR", "--episodes", "0"], "argument --episodes: must be an integer >= 1, got 0"),  # 1/0
    (["data", "convert", "--format", "rt1", "--src", "s", "--out", "o", "--size", "0x4"],
     "argument --size: expected a size like 64 or 150x280 (positive), got '0x4'"),
    (["bench", "rollout", "--histories", "0"], "argument --histories: must be an integer >= 1, got 0"),  # IndexError
    (["bench", "rollout", "--histories", ","], "argument --histories: expected comma-separated integers >= 1, got ','"),
    (["bench", "rollout", "--guidance", "1,nan"], "argument --guidance: expected comma-separated finite numbers, "
                                                  "got '1,nan'"),
    (["bench", "causal", "--size", "0"], "argument --size: must be an integer >= 1, got 0"),  # a torch error
    (["bench", "cache", "--size", "-2"], "argument --size: must be an integer >= 1, got -2"),
    (["convert", "--base", "b", "--out", "o", "--action-dim", "0"], "argument --action-dim: must be an integer >= 1, "
                                                                    "got 0"),
    (["bench", "rollout", "--device", "gpu"],
     "argument --device: expected a torch device such as cpu, cuda, cuda:1 or mps, got 'gpu'"),
])
def test_bad_argument_values_are_refused_before_any_work(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].endswith(f"error: {message}")


@pytest.mark.parametrize("command", [["demo"], ["bench", "causal"], ["bench", "rollout"]])
def test_cuda_device_on_a_torch_without_cuda_says_how_to_get_one(command, monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.version, "cuda", None)  # a CPU-only build, whatever this machine has
    monkeypatch.setattr(torch.version, "hip", None)
    with pytest.raises(SystemExit) as exit_:  # was torch's AssertionError "Torch not compiled with CUDA enabled"
        main([*command, "--device", "cuda"])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert exit_.value.code == 2
    assert f"argument --device: cuda: this torch build ({torch.__version__}) has no CUDA" in last
    assert "pip install torch --index-url https://download.pytorch.org/whl/" in last


def test_cuda_device_without_a_visible_gpu(monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit):
        main(["bench", "rollout", "--device", "cuda"])
    err = capsys.readouterr().err
    assert "argument --device: cuda: torch" in err and "has CUDA, but no GPU is visible" in err
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(SystemExit):
        main(["bench", "rollout", "--device", "cuda:1"])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.endswith("argument --device: cuda:1: only 1 GPU(s) visible (device indices 0 to 0)")


def test_bench_arguments_that_cannot_be_timed_are_named():
    from vid2world.bench.causal import run_study
    from vid2world.bench.rollout import run_bench

    with pytest.raises(ValueError, match=r"^histories: every value must be >= 1, got \[0, 3\]$"):
        run_bench(histories=[0, 3])
    with pytest.raises(ValueError, match=r"^repeats must be >= 1, got 0$"):
        run_bench(histories=[1], repeats=0)
    with pytest.raises(ValueError, match=r"^leak_at must lie in \[0, frames - 1\) = \[0, 7\)"):
        run_study(frames=8, leak_at=7)  # no frame after it to perturb: the study measured nothing


def test_a_closed_pipe_ends_quietly(tmp_path):
    """`vid2world inspect FILE | head -1`: the reader goes away; no BrokenPipeError traceback."""
    from vid2world.checkpoints.registry import model_spec
    from vid2world.testing import random_parts, write_checkpoint

    ckpt = write_checkpoint(tmp_path / "tiny.ckpt", random_parts(model_spec("tiny"), seed=0))
    proc = subprocess.Popen([sys.executable, "-m", "vid2world", "inspect", str(ckpt)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # nothing will read the report
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
