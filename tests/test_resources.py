"""Resources are checked before work (io/resources.py, io/outputs.py) and simulator processes end with their parent
(io/processes.py): one line, nothing left behind."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import pytest

from vid2world.cli import main
from vid2world.io import outputs
from vid2world.io.processes import children

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"


@pytest.fixture(scope="module")
def doom(tmp_path_factory) -> Path:
    from vid2world.data.record import RecordConfig, record_dataset

    root = tmp_path_factory.mktemp("data")
    return record_dataset(RecordConfig("vizdoom:deathmatch", episodes=2, steps=10, size=32, seed=3), root / "doom",
                          progress=False).root


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_a_recording_too_large_for_memory_is_refused_before_a_simulator_starts(tmp_path, capsys):
    before = children()
    assert main(["data", "record", "--env", "vizdoom:deathmatch", "--episodes", "2", "--size", "100000",
                 "--out", str(tmp_path / "d")]) == 2
    line = _one_line(capsys)
    assert "--size 100000" in line and "of memory" in line and "available" in line
    assert children() == before and os.listdir(tmp_path) == []


def test_a_recording_too_large_for_the_disk_is_refused(tmp_path, monkeypatch, capsys):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 10**6, 10**6))
    assert main(["data", "record", "--env", "vizdoom:deathmatch", "--episodes", "50", "--out",
                 str(tmp_path / "d")]) == 2
    line = _one_line(capsys)
    assert "--episodes 50" in line and "1.0 MB is free" in line and os.listdir(tmp_path) == []


READ_ONLY = {  # command line with {ro} (a folder that cannot be written) and {data}; the flag the line names
    "rollout": (["rollout", "--model", "{data}", "--data", "{data}", "--episode", "0", "--context", "1",
                 "--horizon", "2", "--out", "{ro}/r.mp4"], "--out"),
    "evaluate": (["evaluate", "--model", "{data}", "--data", "{data}", "--protocol", "generic", "--context", "1",
                  "--horizon", "2", "--out", "{ro}/eval"], "--out"),
    "train": (["train", str(TINY), "data.path={data}", "out={ro}/run", "train.steps=1", "data.size=[32,32]",
               "data.length=6", "log.tensorboard=false", "--no-progress"], "out="),
    "data record": (["data", "record", "--env", "vizdoom:deathmatch", "--episodes", "1", "--out", "{ro}/d"],
                    "--out"),
    "inspect --json": (["inspect", "{data}/episodes.json", "--json", "{ro}/i.json"], "--json"),
}


@pytest.mark.parametrize("case", sorted(READ_ONLY))
def test_a_read_only_output_place_is_one_line_before_any_work(case, doom, tmp_path, monkeypatch, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    real = os.access  # root may write anywhere: the check is what is tested, so deny it there as the kernel would
    monkeypatch.setattr(outputs.os, "access", lambda p, mode: real(p, mode) and not str(p).startswith(str(ro)))
    argv, flag = READ_ONLY[case]
    try:
        assert main([a.format(ro=ro, data=doom) for a in argv]) == 2
        line = _one_line(capsys)
        assert f"{flag}" in line and "is not writable" in line, line
        assert os.listdir(ro) == []
    finally:
        ro.chmod(0o755)


def test_a_full_disk_while_writing_is_one_line(doom, tmp_path, monkeypatch, capsys):
    import vid2world.io.args as args

    def full(path, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(args, "write_text", full)
    assert main(["data", "info", str(doom), "--json", str(tmp_path / "i.json")]) == 2
    assert _one_line(capsys).endswith(f"{tmp_path / 'i.json'}: the disk is full")


WATCHED = """
from vid2world.data.sim import make_simulator
sim = make_simulator("vizdoom:deathmatch", 32)
print(*sim.processes, flush=True)
import time; time.sleep(120)
"""


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended, awaiting its reaper
    except OSError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads child processes from /proc (Linux)")
def test_the_vizdoom_process_ends_when_its_parent_is_killed():
    pytest.importorskip("vizdoom")
    parent = subprocess.Popen([sys.executable, "-c", WATCHED], stdout=subprocess.PIPE, text=True)
    game = [int(p) for p in parent.stdout.readline().split()]
    assert game and all(_running(p) for p in game)  # ViZDoom's game is a process of its own
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 10
    while any(_running(p) for p in game) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(_running(p) for p in game)
