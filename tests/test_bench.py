"""The bench commands' own promises: `bench convert` checks the disk first; `bench rollout` / `bench cache` on a
saved world model."""

from __future__ import annotations

import shutil
from collections import namedtuple

import pytest

from vid2world.cli import main
from vid2world.world import bench_convert

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
    assert err == [f"vid2world bench: error: --dir {target}: 0.0 GB free on its disk, but the tiny stand-in "
                   f"checkpoint and world model need about {need / 1e9:.1f} GB; free space or choose a --dir on a "
                   f"larger disk"]
    assert seen == [tmp_path] and not (tmp_path / "new").exists()  # measured where it exists; nothing created


def test_bench_convert_need_comes_from_the_parameter_counts():
    full = bench_convert.disk_needed("dynamicrafter-512", 13)
    # every part's parameters in float32: docs/performance.md measured 2,609,132,405 elements (schedule buffers too)
    assert full["checkpoint"] == pytest.approx(2_609_132_405 * 4, rel=1e-5)
    text_tower = 354_032_641 * 4
    assert full["world_model"] == pytest.approx(full["checkpoint"] - text_tower, rel=2e-3)  # + action layers
    assert bench_convert.disk_needed("dynamicrafter-512", 13, checkpoint_exists=True)["total"] == full["world_model"]
