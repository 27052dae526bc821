"""Leftovers after a kill (issue 12): stale temporaries of a killed run are removed at the next start, and only
those; a run that fails before its first step leaves no directory behind; Ctrl-C stops `train` with one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vid2world.cli import main
from vid2world.data.record import RecordConfig, record_dataset
from vid2world.train import trainer as trainer_module
from vid2world.train.checkpoint import checkpoints
from vid2world.train.config import load_config
from vid2world.io.outputs import RECORD
from vid2world.train.trainer import train

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"
FAST = ["data.size=[32,32]", "data.length=6", "train.batch_size=2", "log.every=1", "log.sample_every=0",
        "log.tensorboard=false", "data.workers=0"]
NO_PID = 2**31  # above any pid_max: no process has it

# Killed with SIGKILL in the middle of writing a checkpoint, an exported model and a dataset: what the real code
# leaves behind (a checkpoint directory holding model.safetensors, the dataset's temporary directory, ...).
KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
import numpy as np, torch
from vid2world.data.spec import DatasetMeta
from vid2world.data.writer import DatasetWriter
from vid2world.io.atomic import AtomicDirectory
from vid2world.train.checkpoint import TrainerState, save_checkpoint
run, data = Path(sys.argv[1]), Path(sys.argv[2])
writer = DatasetWriter(data, DatasetMeta("rec", 10, (32, 32), None))
writer.add(np.zeros((2, 32, 32, 3), np.uint8))
AtomicDirectory(run / "model", overwrite=True)
torch.save = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
save_checkpoint(run / "checkpoints", TrainerState(step=7), {"w": torch.ones(3)}, {}, [{}], None, keep_last=2)
"""


@pytest.fixture(scope="module")
def doom(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    return record_dataset(RecordConfig("vizdoom:deathmatch", episodes=3, steps=12, size=32, seed=3), root / "doom",
                          progress=False).root


def _kill_writers(run: Path, data: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(run), str(data)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_stale_temporaries_of_a_killed_run_go_at_resume_and_nothing_else(doom, tmp_path, capsys):
    run = tmp_path / "run"
    train(load_config(TINY, [f"data.path={doom}", f"out={run}", "train.steps=1", *FAST]), progress=False)
    _kill_writers(run, tmp_path / "rec")
    stale_ckpt, = [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".step-00000007.tmp-")]
    assert (stale_ckpt / "model.safetensors").is_file()  # the leftover: weights, no trainer.json
    stale_model, = [p for p in run.iterdir() if p.name.startswith(".model.tmp-")]
    unrelated = [run / "checkpoints" / ".step-00000007.tmp", run / "checkpoints" / "notes.txt",
                 run / f".results.tmp-{NO_PID}-abc12345", run / f"model.tmp-{NO_PID}-abc12345"]
    for path in unrelated:
        path.write_text("mine")
    capsys.readouterr()
    result = train(load_config(TINY, [f"data.path={doom}", f"out={run}", "train.steps=2", *FAST]), resume=True,
                   progress=False)
    log = capsys.readouterr().out
    assert result.steps == 2 and f"removed {stale_ckpt}" in log and f"removed {stale_model}" in log
    assert not stale_ckpt.exists() and not stale_model.exists()
    assert all(p.read_text() == "mine" for p in unrelated)
    assert _hidden(run / "checkpoints") == [".step-00000007.tmp"]
    assert _hidden(run) == [f".results.tmp-{NO_PID}-abc12345", RECORD]  # RECORD: what the run wrote there


def test_stale_dataset_temporary_goes_when_data_record_starts_again(tmp_path, capsys):
    _kill_writers(tmp_path / "run", tmp_path / "rec")
    stale, = [p for p in tmp_path.iterdir() if p.name.startswith(".rec.tmp-")]
    assert (stale / "shards").is_dir()
    unrelated = [tmp_path / ".rec.tmp-keep", tmp_path / f".other.tmp-{NO_PID}-abc12345", tmp_path / "notes.txt"]
    for path in unrelated:
        path.write_text("mine")
    assert main(["data", "record", "--env", "vizdoom:deathmatch", "--episodes", "1", "--steps", "4", "--size", "32",
                 "--out", str(tmp_path / "rec")]) == 0
    assert f"removed {stale}" in capsys.readouterr().err
    assert not stale.exists() and all(p.read_text() == "mine" for p in unrelated)
    assert (tmp_path / "rec" / "dataset.json").is_file()


def test_a_run_that_fails_before_its_first_step_leaves_no_directory(doom, tmp_path, monkeypatch):
    built = []
    real_build = trainer_module.build_model
    monkeypatch.setattr(trainer_module, "build_model", lambda *a, **k: built.append(1) or real_build(*a, **k))
    out = tmp_path / "runs" / "a"
    assert main(["train", str(TINY), f"data.path={tmp_path / 'nowhere'}", f"out={out}", *FAST]) == 2
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in doom.rglob("*"):
        target = broken / path.relative_to(doom)
        target.mkdir() if path.is_dir() else target.write_bytes(path.read_bytes())
    shard = sorted((broken / "shards").glob("*.frames"))[0]
    shard.write_bytes(shard.read_bytes()[:-5])
    with pytest.raises(ValueError, match=f"{shard}: .* bytes, expected"):
        train(load_config(TINY, [f"data.path={broken}", f"out={out}", *FAST]), progress=False)
    assert built == [], "the shards are checked before the model is built"
    # fails in the first step (an action head of the wrong width), after the directory was made
    with pytest.raises(ValueError, match=r"width 7.*width 12"):
        train(load_config(TINY, [f"data.path={doom}", f"out={out}", "model.action_space=continuous:7", *FAST]),
              progress=False)
    assert not (tmp_path / "runs").exists()
    existing = tmp_path / "mine"
    existing.mkdir()
    assert main(["train", str(TINY), f"data.path={tmp_path / 'nowhere'}", f"out={existing}", *FAST]) == 2
    assert existing.is_dir()  # it was there before: kept


def _sigint_as_a_terminal_sends_it() -> None:
    """In the child before exec: SIGINT unblocked and at its default, as a shell gives it to a command. In the full
    suite the run twice ignored SIGINT for 120 s while it stopped at once when this test ran alone: a blocked or
    ignored SIGINT left in the pytest process by an earlier test is inherited across exec (the suspicion, not yet
    confirmed; the failure message now shows the child's signal masks)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_with_one_line_and_says_where_resume_continues(doom, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "vid2world", "train", str(TINY), f"data.path={doom}",
                             f"out={out}", "train.steps=1000", "log.save_every=2", *FAST, "--no-progress"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_sigint_as_a_terminal_sends_it)
    deadline = time.time() + 180
    while not (out / "checkpoints" / "step-00000002" / "trainer.json").exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:  # never leave a 1,000-step run behind to slow every later test
        masks = Path(f"/proc/{proc.pid}/status").read_text() if Path(f"/proc/{proc.pid}/status").exists() else ""
        proc.kill()
        _, err = proc.communicate()
        signals = [line for line in masks.splitlines() if line.startswith(("SigBlk", "SigIgn", "SigCgt"))]
        raise AssertionError(f"SIGINT did not stop the run within 120 s ({signals}); its stderr ends: "
                             f"{err[-2000:]}") from None
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("vid2world train:")]
    newest = checkpoints(out / "checkpoints")[-1]
    assert len(lines) == 1 and f"; --resume continues from {newest}" in lines[0], err[-3000:]
    assert int(lines[0].split("stopped at step ")[1].split(";")[0]) >= 2
    assert _hidden(out / "checkpoints") == []


def test_train_refuses_at_start_an_out_model_that_is_not_its_own(doom, tmp_path, capsys):
    out = tmp_path / "run"
    (out / "model").mkdir(parents=True)
    (out / "model" / "notes.txt").write_text("mine")
    args = ["train", str(TINY), f"data.path={doom}", f"out={out}", "train.steps=1", *FAST, "--no-progress"]
    assert main(args) == 2
    assert "not a world-model directory" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["model"] and os.listdir(out / "model") == ["notes.txt"]
    (out / "model" / "notes.txt").unlink()
    _save_tiny_world_model(out / "model")
    before = (out / "model" / "model.safetensors").read_bytes()
    assert main(args) == 2  # a new run: that world model is someone else's
    assert "holds the world model of an earlier run" in capsys.readouterr().err
    assert (out / "model" / "model.safetensors").read_bytes() == before


def _save_tiny_world_model(directory: Path) -> Path:
    import vid2world as v2w

    cfg = v2w.UNetConfig.preset("pixel-tiny", attention_resolutions=(), channel_mult=(1,),
                                causal=v2w.CausalConfig("frame"))
    return v2w.WorldModel(v2w.VideoUNet(cfg)).save_pretrained(directory)
