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


@pytest.mark.skipif("vizdoom-deathmatch" not in __import__("vid2world").zoo.names(),
                    reason="the bundled ViZDoom model is not in this checkout")
def test_demo_compares_the_bundled_model_with_the_game(tmp_path):
    # A small configuration checks the plumbing; `make demo` runs the full one (docs/results.md has its numbers).
    from vid2world.demo.run import run_demo
    from vid2world.demo.vizdoom import DemoConfig

    import av

    cfg = DemoConfig(starts=2, horizon=3, turn_starts=2, turn_steps=2, steps=2, drift_frames=6, drift_block=3)
    paths = run_demo(tmp_path / "demo", progress=False, config=cfg)
    report = json.loads(paths["json"].read_text())
    assert set(report["scores"]) == {"model", "other actions", "copy last frame"}
    assert len(report["scores"]["model"]["psnr_per_frame"]) == 3
    for name in ("other actions", "copy last frame"):  # start by start: the mean gap is the gap of the means
        gap = report["scores"]["model"]["psnr"] - report["scores"][name]["psnr"]
        assert report["against_baselines"][name]["difference"] == pytest.approx(gap, rel=1e-9, abs=1e-12)
        assert report["against_baselines"][name]["windows"] == 2
    assert report["config"]["settle"] == 2 and set(report["spawn_scores"]) == set(report["scores"])
    assert report["spawn_against_baselines"]["copy last frame"]["windows"] == 2
    assert report["spawn_scores"]["copy last frame"]["psnr"] != report["scores"]["copy last frame"]["psnr"]
    assert report["causality_max_past_change"] == 0.0
    assert report["turning"]["of"] == 2 and len(report["turning"]["starts"]) == 2
    assert set(report["action_accuracy"]) == {"real", "model", "chance"}
    with av.open(str(paths["video"])) as container:
        assert len(list(container.decode(video=0))) == 4  # the start frame + 3 generated
    with av.open(str(paths["counterfactual"])) as container:
        assert len(list(container.decode(video=0))) == 4
    with Image.open(paths["picture"]) as img:
        assert img.size[0] > 4 * 64
    text = paths["report"].read_text()
    assert "## Turning: " in text and "| copy last frame |" in text and "- against copy last frame: " in text
    assert "Starts are taken 2 game steps after the spawn" in text
    drift = report["drift"]  # the long session, in miniature: two blocks of 3 frames beside the game
    assert drift["frames"] == 6 and [row["frames"] for row in drift["blocks"]] == [[0, 3], [3, 6]]
    assert "## A long session: 6 frames beside the real game" in text and "| 3-5 | " in text

def test_bench_causal_json_and_bad_preset(tmp_path):
    proc = run("bench", "causal", "--frames", "5", "--size", "8", "--leak-at", "1", "--json", str(tmp_path / "b.json"))
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "b.json").read_text())
    assert len(result["rows"]) == 10 and result["frames"] == 5
    bad = run("bench", "causal", "--preset", "huge")
    assert bad.returncode == 2
    from vid2world.models import UNetConfig

    assert bad.stderr.strip().splitlines() == [f"vid2world bench: error: unknown UNet preset 'huge'; available: "
                                               f"{UNetConfig.preset_names()}"]
    assert "'pixel-tiny'" in bad.stderr


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


# ---- --model: one rule for every command that runs a model (a path when it looks like one, else a bundled name) ----
def model_commands(model: str, data: Path, out: Path) -> dict[str, list[str]]:
    return {"rollout": ["rollout", "--model", model, "--data", str(data), "--episode", "0", "--context", "1",
                        "--horizon", "1", "--out", str(out / "roll.mp4")],
            "evaluate": ["evaluate", "--model", model, "--data", str(data), "--protocol", "generic", "--context", "1",
                         "--horizon", "1", "--out", str(out / "eval")],
            "play": ["play", "--model", model, "--data", str(data)]}


@pytest.mark.skipif("atari-boxing" not in __import__("vid2world").zoo.names(), reason="bundled model not installed")
def test_every_command_takes_a_bundled_models_name_and_names_a_missing_path_alike(tmp_path, capsys):
    from .test_eval_run import make_inputs

    _, data = make_inputs(tmp_path)  # 2-d actions: the bundled model is found, loaded, then refused for its data
    for command, argv in model_commands("atari-boxing", data, tmp_path).items():
        if command == "play":
            continue  # it would serve: its names are tested in test_play_server
        assert main(argv) == 2
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert last.startswith(f"vid2world {command}: error: {data.resolve()}: its actions are 2-d"), last
        assert "zoo/models/atari-boxing takes" in last
    missing = tmp_path / "no" / "such"
    for command, argv in model_commands(str(missing), data, tmp_path).items():
        assert main(argv) == 2
        assert capsys.readouterr().err.strip().splitlines()[-1] == \
            f"vid2world {command}: error: --model {missing}: no such directory"
