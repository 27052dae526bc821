"""The bench commands' own promises: `bench convert` checks the disk first; `bench rollout` / `bench cache` on a
saved world model."""

from __future__ import annotations

import shutil
from collections import namedtuple

import pytest

from vid2world.bench import convert as bench_convert
from vid2world.cli import main
from vid2world.io.resources import gb

_Usage = namedtuple("_Usage", "total used free")


def test_bench_convert_refuses_a_disk_too_small_before_writing(tmp_path, monkeypatch, capsys):
    seen = []

    def small_disk(path):
        seen.append(path)
        return _Usage(10**12, 10**12 - 5 * 10**6, 5 * 10**6)  # 5 MB free

    monkeypatch.setattr(shutil, "disk_usage", small_disk)
    target = tmp_path / "new" / "bench"
    assert main(["bench", "convert", "--preset", "tiny", "--dir", str(target)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    need = bench_convert.disk_needed("tiny", 13)["total"]
    assert err == [f"vid2world bench: error: --dir {target}: the tiny stand-in checkpoint and world model: needs "
                   f"about {gb(need)} on the disk of {target}, 5.0 MB is free; free space or choose a --dir on a "
                   f"larger disk"]
    assert seen == [tmp_path] and not (tmp_path / "new").exists()  # measured where it exists; nothing created


def test_bench_convert_need_comes_from_the_parameter_counts():
    full = bench_convert.disk_needed("dynamicrafter-512", 13)
    # every part's parameters in float32: docs/performance.md measured 2,609,132,405 elements (schedule buffers too)
    assert full["checkpoint"] == pytest.approx(2_609_132_405 * 4, rel=1e-5)
    text_tower = 354_032_641 * 4
    assert full["world_model"] == pytest.approx(full["checkpoint"] - text_tower, rel=2e-3)  # + action layers
    assert bench_convert.disk_needed("dynamicrafter-512", 13, checkpoint_exists=True)["total"] == full["world_model"]


@pytest.fixture
def one_thread():
    """Ops on a model this small are microseconds; extra threads only add their start-up and contention."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _saved_world_model(directory, norm: str, action_dim: int | None):
    """A tiny random-weight pixel world model saved as `vid2world convert` / training would."""
    from vid2world.testing import randomize_weights
    from vid2world.models.codec import IdentityCodec
    from vid2world.models.config import ActionSpace, CausalConfig, UNetConfig
    from vid2world.models.unet import VideoUNet
    from vid2world.world import WorldModel

    cfg = UNetConfig.preset("pixel-tiny", model_channels=16, channel_mult=(1,), attention_resolutions=(1,),
                            temporal_length=6, causal=CausalConfig(norm),
                            action_space=None if action_dim is None else ActionSpace.continuous(action_dim))
    WorldModel(randomize_weights(VideoUNet(cfg), 3).eval(), IdentityCodec(3)).save_pretrained(directory)
    return directory


def test_bench_rollout_times_a_saved_world_model(tmp_path, capsys, one_thread):
    model = _saved_world_model(tmp_path / "wm", "causal", action_dim=3)  # not the random model's 7 actions
    json_path = tmp_path / "r.json"
    assert main(["bench", "rollout", "--model", str(model), "--size", "8", "--histories", "1,2", "--steps", "1",
                 "--guidance", "1", "--repeats", "1", "--json", str(json_path)]) == 0
    import json

    result = json.loads(json_path.read_text())
    assert result["model"] == str(model) and result["norm"] == "causal"
    assert [(r["history"], r["cache"]) for r in result["rows"]] == [(1, True), (1, False), (2, True), (2, False)]
    assert all(r["seconds_per_frame"] > 0 for r in result["rows"])
    assert capsys.readouterr().out.startswith(f"model {model}, 8x8 latents")
    assert main(["bench", "rollout", "--model", str(model), "--preset", "tiny"]) == 2
    assert capsys.readouterr().err.strip() == (f"vid2world bench: error: --model {model} has its own architecture "
                                               "and norm; give --model or --preset/--norm, not both")
    assert main(["bench", "rollout", "--model", str(tmp_path / "missing")]) == 2
    assert f"{tmp_path / 'missing'}: no such directory; expected a world-model directory" in capsys.readouterr().err


def test_bench_cache_measures_a_saved_world_model(tmp_path, capsys, one_thread):
    model = _saved_world_model(tmp_path / "wm", "frame", action_dim=None)  # an action-free model too
    json_path = tmp_path / "c.json"
    assert main(["bench", "cache", "--model", str(model), "--frames", "4", "--steps", "2", "--size", "8",
                 "--json", str(json_path)]) == 0
    import json

    result = json.loads(json_path.read_text())
    assert [(r["norm"], r["dtype"], r["exact_cache"]) for r in result["rows"]] == [("frame", "float32", True),
                                                                                   ("frame", "float64", True)]
    for row in result["rows"]:
        assert len(row["per_frame"]) == 4 and row["latent_abs_max"] > 0.1
    eps = {"float32": 1.2e-7, "float64": 2.2e-16}  # the cache is exact: rounding only, relative to the latents
    for row in result["rows"]:
        assert row["max_abs_diff"] <= 1e4 * eps[row["dtype"]] * row["latent_abs_max"]
    assert capsys.readouterr().out.startswith(f"model {model}: 4 frames, 2 steps, 8x8 latents")
