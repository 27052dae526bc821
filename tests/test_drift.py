"""The drift report: the real game passes against itself, and each collapse a long rollout can suffer (blur,
grey, a frozen picture, noise, a colour drift) fails the statistic that watches for it; `bench drift` runs the
bundled ViZDoom model beside the real game."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vid2world.metrics.drift import colour_histogram, drift_report, format_drift, frame_statistics


def moving_scene(n: int = 60, seed: int = 0) -> np.ndarray:
    """Frames of a textured scene that scrolls: sharp, contrasted, changing."""
    rng = np.random.default_rng(seed)
    world = rng.integers(0, 256, (32, 32 + n, 3)).astype(np.uint8)
    world = np.repeat(np.repeat(world, 2, axis=0), 2, axis=1)  # blocks of 2x2: edges, not pure noise
    return np.stack([world[:32, 2 * i: 2 * i + 32] for i in range(n)])


def test_the_real_game_against_itself_passes():
    real = moving_scene()
    report = drift_report(real, moving_scene(seed=1), block=20)
    assert report["last_block_ok"], report["last_block"]
    assert len(report["blocks"]) == 3 and report["blocks"][0]["frames"] == [0, 20]


@pytest.mark.parametrize("collapse,fails", [
    ("frozen", "change"), ("grey", "contrast"), ("blur", "sharpness"), ("noise", "sharpness"),
    ("tinted", "colour")])
def test_each_collapse_fails_its_statistic(collapse, fails):
    real, model = moving_scene(), moving_scene().copy()
    rng = np.random.default_rng(5)
    if collapse == "frozen":
        model[:] = model[0]
    elif collapse == "grey":
        model[:] = 128
    elif collapse == "blur":
        k = model.astype(np.float64)
        for axis in (1, 2):
            k = (np.roll(k, 1, axis) + k + np.roll(k, -1, axis)) / 3
        model = k.astype(np.uint8)
    elif collapse == "noise":
        model = rng.integers(0, 256, model.shape).astype(np.uint8)
    else:
        model[..., 0] = (model[..., 0] // 4).astype(np.uint8)
    report = drift_report(model, real, block=20)
    assert not report["last_block"][fails] and not report["last_block_ok"]
    assert "NOT within" in format_drift(report) and fails in format_drift(report)


def test_statistics_and_histograms_are_what_they_say():
    frames = moving_scene(5)
    stats = frame_statistics(frames)
    assert set(stats) == {"sharpness", "contrast", "change"} and all(len(v) == 5 for v in stats.values())
    assert stats["change"][0] == stats["change"][1] > 0
    hist = colour_histogram(frames)
    assert hist.shape == (3, 16) and np.allclose(hist.sum(axis=1), 1)
    with pytest.raises(ValueError, match=r"frames: expected \[N >= 2, H, W, 3\]"):
        frame_statistics(frames[:1])
    with pytest.raises(ValueError, match="fewer than one block of 100"):
        drift_report(frames, frames, block=100)


def test_bench_drift_plays_the_bundled_model_beside_the_real_game(tmp_path, capsys):
    pytest.importorskip("vizdoom")
    from vid2world.cli import main

    out = tmp_path / "drift.json"
    assert main(["bench", "drift", "--frames", "12", "--block", "6", "--no-progress", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["env"].startswith("vizdoom") and len(result["blocks"]) == 2
    assert all(row["sharpness"]["real"] > 0 for row in result["blocks"])
    assert 0 < result["codec_sharpness_ratio"] < 2  # the codec round trip of the real frames
    assert all(0 <= row["idm_accuracy"]["real"] <= 1 for row in result["blocks"])  # the bundled IDM reads both
    assert "idm_accuracy" in result["last_block"]
    assert "| frames | sharpness" in capsys.readouterr().out
    assert main(["bench", "drift", "--frames", "5", "--block", "6"]) == 2
