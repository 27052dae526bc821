"""Nothing lost (issue 12): every writer goes through `vid2world.io.atomic`; a command never deletes what it did not
create, replaces a world model only when asked, and gives its outputs the umask's permissions."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import vid2world as v2w
from vid2world.cli import main
from vid2world.io.atomic import AtomicDirectory, atomic_file, remove_stale_temporaries, temporary_prefix, write_text
from vid2world.train.checkpoint import TrainerState, save_checkpoint
from vid2world.checkpoints.registry import PRETRAINED
from vid2world.testing import random_parts, write_checkpoint

TINY = PRETRAINED["tiny"]


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt", random_parts(TINY, seed=0))


def _convert(ckpt: Path, out: Path | str, *extra: str) -> int:
    return main(["convert", "--base", str(ckpt), "--preset", "tiny", "--action-dim", "5", "--out", str(out), *extra])


def _pixel_model() -> v2w.WorldModel:
    cfg = v2w.UNetConfig.preset("pixel-tiny", attention_resolutions=(), channel_mult=(1,),
                                causal=v2w.CausalConfig("frame"))
    return v2w.WorldModel(v2w.VideoUNet(cfg))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask():
    """Set the process umask for one test, and restore it."""
    saved = os.umask(0o022)
    yield os.umask
    os.umask(saved)


# ---- convert / save_pretrained ---------------------------------------------------------------------------------
def test_convert_into_a_directory_that_is_not_a_world_model_keeps_its_files(tmp_path, tiny_ckpt, capsys):
    out = tmp_path / "ne"
    out.mkdir()
    (out / "important.txt").write_text("keep\n")
    assert _convert(tiny_ckpt, out) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "not a world-model directory" in err and len(err.strip().splitlines()) == 1
    assert (out / "important.txt").read_text() == "keep\n" and sorted(os.listdir(out)) == ["important.txt"]
    assert _convert(tiny_ckpt, out, "--overwrite") == 2  # --overwrite replaces world models only
    assert sorted(os.listdir(out)) == ["important.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ne"]  # no temporary left beside it


def test_convert_out_holding_the_input_checkpoint_never_removes_it(tmp_path, tiny_ckpt, capsys):
    folder = tmp_path / "bc"
    folder.mkdir()
    ckpt = folder / "tiny.ckpt"
    ckpt.write_bytes(tiny_ckpt.read_bytes())
    for extra in ((), ("--overwrite",)):
        assert _convert(ckpt, folder, *extra) == 2
        err = capsys.readouterr().err
        assert str(folder) in err and "tiny.ckpt" in err
        assert ckpt.read_bytes() == tiny_ckpt.read_bytes()
    # a world model around the input (the input copied into it) is not replaced either, even with --overwrite
    assert _convert(ckpt, tmp_path / "wm") == 0
    inner = tmp_path / "wm" / "tiny.ckpt"
    inner.write_bytes(tiny_ckpt.read_bytes())
    assert _convert(inner, tmp_path / "wm", "--overwrite") == 2
    assert inner.is_file() and "must not be replaced" in capsys.readouterr().err


def test_convert_replaces_a_world_model_only_with_overwrite(tmp_path, tiny_ckpt, capsys):
    out = tmp_path / "wm"
    assert _convert(tiny_ckpt, out) == 0
    first = (out / "model.safetensors").read_bytes()
    assert _convert(tiny_ckpt, out, "--transfer", "shift") == 2
    err = capsys.readouterr().err
    assert "holds a world model already" in err and "pass --overwrite to replace it" in err and "=True" not in err
    assert (out / "model.safetensors").read_bytes() == first
    assert _convert(tiny_ckpt, out, "--transfer", "shift", "--overwrite") == 0
    assert (out / "model.safetensors").read_bytes() != first
    assert v2w.WorldModel.from_pretrained(out).action_dim == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wm"]  # neither a temporary nor the replaced copy


def test_convert_out_dot_names_the_directory(tmp_path, tiny_ckpt, capsys, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("mine")
    monkeypatch.chdir(work)
    assert _convert(tiny_ckpt, ".") == 2
    err = capsys.readouterr().err
    assert "empty name" not in err and str(work) in err and "current directory" in err
    assert sorted(os.listdir(work)) == ["notes.txt"]


def test_save_pretrained_overwrite_in_python(tmp_path):
    model = _pixel_model()
    target = tmp_path / "m"
    target.mkdir()  # an empty directory is fine
    assert model.save_pretrained(target) == target
    with pytest.raises(FileExistsError, match=r"holds a world model already; give a new directory, or pass overwrite=True to replace it"):
        model.save_pretrained(target)
    model.metadata["second"] = True
    model.save_pretrained(target, overwrite=True)
    assert v2w.WorldModel.from_pretrained(target).metadata == {"second": True}
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="not a directory"):
        model.save_pretrained(tmp_path / "file", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "m"]


def test_from_pretrained_on_a_checkpoint_file_points_to_convert(tmp_path, tiny_ckpt):
    with pytest.raises(ValueError, match=r"tiny.ckpt: is a file, not a world-model directory.*vid2world convert"):
        v2w.WorldModel.from_pretrained(tiny_ckpt)
    with pytest.raises(FileNotFoundError, match=r"nowhere: no such directory"):
        v2w.WorldModel.from_pretrained(tmp_path / "nowhere")


# ---- permissions -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mask", [0o022, 0o002])
def test_outputs_follow_the_umask(tmp_path, umask, mask):
    umask(mask)
    files, dirs = 0o666 & ~mask, 0o777 & ~mask
    model_dir = _pixel_model().save_pretrained(tmp_path / "model")
    assert _mode(model_dir) == dirs and {_mode(p) for p in model_dir.iterdir()} == {files}
    ckpt = save_checkpoint(tmp_path / "checkpoints", TrainerState(step=1), {"w": torch.ones(2)}, {"optimizer": {}},
                           [{}], None, keep_last=1)
    assert _mode(ckpt) == dirs and {_mode(p) for p in ckpt.iterdir()} == {files}
    assert _mode(write_text(tmp_path / "report.json", "{}")) == files


# ---- the atomic writers themselves -----------------------------------------------------------------------------
def test_atomic_file_keeps_the_old_file_when_writing_fails(tmp_path):
    path = write_text(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError):
        with atomic_file(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert path.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["a.txt"]


def test_atomic_directory_refuses_what_is_not_its_to_replace(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(FileExistsError, match="full: exists and is not empty"):
        AtomicDirectory(tmp_path / "full")
    with AtomicDirectory(tmp_path / "new") as d:
        (d.path / "y").write_text("y")
    assert os.listdir(tmp_path / "new") == ["y"]
    with pytest.raises(ValueError):
        with AtomicDirectory(tmp_path / "other") as d:
            raise ValueError("failed")
    assert sorted(os.listdir(tmp_path)) == ["full", "new"]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_remove_stale_temporaries_only_of_the_kind_and_only_of_dead_writers(tmp_path):
    dead, alive = _dead_pid(), os.getppid()
    ours = temporary_prefix("step-00000003")
    stale = [tmp_path / (ours.replace(f"-{os.getpid()}-", f"-{dead}-") + "abc12345"),  # a killed run's checkpoint
             tmp_path / f".summary.json.tmp-{dead}-zz9_y8x7"]
    (stale[0]).mkdir()
    (stale[0] / "model.safetensors").write_bytes(b"0" * 100)
    stale[1].write_text("{}")
    kept = [tmp_path / f".step-00000004.tmp-{alive}-abc12345",  # a writer still running
            tmp_path / "step-00000003", tmp_path / ".step-00000003.tmp", tmp_path / "notes.tmp-1-2",
            tmp_path / f".other.tmp-{dead}-abc12345"]
    for path in kept:
        path.mkdir()
    removed = remove_stale_temporaries(tmp_path, re.compile(r"step-\d{8}"))
    assert removed == [stale[0]]
    assert remove_stale_temporaries(tmp_path, "summary.json") == [stale[1]]
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in kept)


def test_rlds_to_npz_removes_its_own_stale_temporaries_only(tmp_path, capsys):
    from vid2world.data.importers.rt1 import rlds_to_npz

    from .test_data_importers import fake_rlds_episode

    out, no_pid = tmp_path / "npz", 2**31  # above any pid_max: a process long gone
    out.mkdir()
    stale = out / f".train_eps_00000001.npz.tmp-{no_pid}-abc12345.npz"
    other_split = out / f".val_eps_00000001.npz.tmp-{no_pid}-abc12345.npz"
    for path in (stale, other_split):
        path.write_bytes(b"half")
    files = rlds_to_npz([fake_rlds_episode(np.random.default_rng(0), 3)], out)
    assert f"removed {stale}" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == sorted([files[0].name, other_split.name])


def test_a_replaced_directory_left_by_a_kill_goes_only_once_its_replacement_is_in_place(tmp_path):
    old = tmp_path / f".model.old-{2**31}-0a1b2c3d"  # killed between the swap and removing the old copy
    old.mkdir()
    assert remove_stale_temporaries(tmp_path, "model") == []  # no "model" beside it: this is the only copy
    (tmp_path / "model").mkdir()
    assert remove_stale_temporaries(tmp_path, "model") == [old] and not old.exists()
