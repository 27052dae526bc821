"""scripts/device/wan_gpu.py (the Wan 1.3B GPU measurements) run here with `--tiny` on the CPU: every case
it measures on a GPU runs, and its JSON holds what docs and the device README read."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "device" / "wan_gpu.py"


def load_script():
    spec = importlib.util.spec_from_file_location("wan_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("wan_gpu")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--tiny", "--device", "cpu", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads((out / "wan_gpu.json").read_text()), proc.stdout


def test_training_cases(run):
    results, _ = run
    assert results["tiny"] and results["preset"] == "wan2.1-t2v-1.3b" and results["parameters"] > 0
    train = results["train"]
    assert [r["resolution"] for r in train] == ["480x832", "256x256"]
    # tiny latents: 21 frames of 4x8 and 4x4, 2x2 patches
    assert [r["latent"] for r in train] == [[21, 4, 8], [21, 4, 4]]
    assert [r["tokens"] for r in train] == [21 * 2 * 4, 21 * 2 * 2]
    for r in train:
        assert "error" not in r
        assert len(r["step_s_each"]) == 2 and r["step_s"] == r["step_s_each"][1] > 0  # warm-up left out
        assert 0 < r["loss"] < 100 and r["peak_allocated_gib"] is None  # memory is read on CUDA only


def test_rollout_cases(run):
    results, _ = run
    rollout = results["rollout"]
    assert [(r["resolution"], r["steps"]) for r in rollout] == [("480x832", 4), ("480x832", 8),
                                                                 ("256x256", 4), ("256x256", 8)]
    for r in rollout:
        assert "error" not in r and r["finite"] and r["window"] == 21
        assert r["fill"] == 20 + 2  # the window's 20 frames, then a warm-up and a timed frame committed
        assert r["frame_ms"] == pytest.approx(r["steps"] * r["query_ms"] + r["commit_ms"], rel=1e-9)
        assert r["video_fps"] == pytest.approx(4 * r["latent_fps"]) and r["latent_fps"] > 0
    # a full ring per block of bf16 keys and values: blocks x 2 x 20 frames x tokens x width x 2 bytes
    tiny = load_script().TINY
    width = tiny["num_attention_heads"] * tiny["attention_head_dim"]
    for r, tokens in zip(rollout, (8, 8, 4, 4)):
        assert r["cache_gib"] * 2 ** 30 == tiny["num_layers"] * 2 * 20 * tokens * width * 2


def test_markdown_table(run):
    _, stdout = run
    rows = [line for line in stdout.splitlines() if line.startswith("| ")]
    assert len(rows) == 2 + 2 + 4 and "per latent frame" in rows[-1] and "per step" in rows[2]


def test_bad_arguments_are_named():
    script = load_script()
    with pytest.raises(ValueError, match="--window"):
        script.parse_args(["--out", "x", "--window", "1"])
    with pytest.raises(ValueError, match="--text-tokens"):
        script.parse_args(["--out", "x", "--text-tokens", "0"])
    args = script.parse_args(["--out", "x"])
    assert (args.text_tokens, args.train_steps, args.rollout_frames, args.steps) == (512, 3, 4, [4, 8])
    assert script.latent_size("480x832", tiny=False) == (60, 104)
    assert script.latent_size("256x256", tiny=False) == (32, 32)
