"""Progress output: a bar on a terminal, plain lines in logs (no carriage returns), nothing with --no-progress."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import numpy as np

from vid2world.io.progress import PlainProgress, progress_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_every_tenth_with_count_total_and_rate():
    log = io.StringIO()
    bar = progress_bar(total=50, desc="train", unit="step", stream=log)
    assert isinstance(bar, PlainProgress)
    for step in range(50):
        bar.update(1)
        if step == 20:
            bar.set_postfix(loss="0.1234")
    bar.close()
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 10  # 5, 10, ..., 50 of 50
    assert lines[0].startswith("train: 5/50 step (10%), ") and "step/s" in lines[0]
    assert lines[-1].startswith("train: 50/50 step (100%)") and lines[-1].endswith("loss=0.1234")


def test_plain_lines_over_an_iterable_resumed_and_unsized():
    log = io.StringIO()
    assert list(progress_bar(range(7), desc="rollout", unit="frame", stream=log)) == list(range(7))
    assert log.getvalue().splitlines()[-1].startswith("rollout: 7/7 frame (100%)")
    log = io.StringIO()
    bar = progress_bar(total=100, initial=90, desc="train", stream=log)  # a resumed run: one line per 10% left
    bar.update(5)
    assert log.getvalue() == ""
    bar.update(5)
    assert log.getvalue().startswith("train: 100/100 it (100%)")
    log = io.StringIO()
    assert list(progress_bar(iter("abc"), desc="importing", unit="ep", stream=log)) == ["a", "b", "c"]
    lines = log.getvalue().splitlines()  # no total: no percentages, one line at the end (or every 30 s)
    assert len(lines) == 1 and lines[0].startswith("importing: 3 ep, ")


def test_a_terminal_gets_a_bar_and_disabled_prints_nothing():
    tty = _Terminal()
    for _ in progress_bar(range(3), desc="train", stream=tty):
        pass
    assert "\r" in tty.getvalue() and "3/3" in tty.getvalue()
    quiet = io.StringIO()
    bar = progress_bar(total=10, desc="train", stream=quiet, enabled=False)
    bar.update(10)
    bar.close()
    for _ in progress_bar(range(3), stream=quiet, enabled=False):
        pass
    assert quiet.getvalue() == ""


def _rt1_source(tmp_path, episodes: int):
    rng = np.random.default_rng(0)
    src = tmp_path / "rt1"
    src.mkdir()
    for i in range(episodes):
        np.savez(src / f"train_eps_{i:08d}.npz", image=rng.integers(0, 256, (3, 4, 4, 3), dtype=np.uint8),
                 action=rng.normal(size=(3, 13)).astype(np.float32))
    return src


def test_commands_write_plain_progress_lines_to_logs(tmp_path):
    src = _rt1_source(tmp_path, 20)

    def convert(out: str, *flags: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "vid2world", "data", "convert", "--format", "rt1", "--src",
                               str(src), "--out", str(tmp_path / out), *flags], capture_output=True, text=True,
                              timeout=300)  # pipes, as in a log: not a terminal
        assert proc.returncode == 0, proc.stderr
        return proc.stdout + proc.stderr

    logged = convert("a")
    assert "\r" not in logged
    lines = re.findall(r"^importing: (\d+)/20 ep .*ep/s", logged, flags=re.M)
    assert len(lines) >= 3 and lines[-1] == "20"
    quiet = convert("b", "--no-progress")
    assert "importing" not in quiet and "\r" not in quiet and "wrote" in quiet


def test_every_progress_command_has_the_same_no_progress_flag():
    from vid2world.cli import build_parser

    parser = build_parser()
    commands = [["demo"], ["train", "c.yaml"], ["bench", "train"], ["data", "record", "--env", "crafter",
                "--episodes", "1", "--out", "o"], ["data", "convert", "--format", "rt1", "--src", "s", "--out", "o"],
                ["idm", "train", "--data", "d", "--out", "o"], ["zoo", "build", "vizdoom-deathmatch"],
                ["evaluate", "--model", "m", "--data", "d", "--protocol", "rt1", "--out", "o"],
                ["rollout", "--model", "m", "--data", "d", "--episode", "0", "--context", "1", "--horizon", "2",
                 "--out", "o.mp4"]]
    for command in commands:
        assert parser.parse_args(command + ["--no-progress"]).no_progress is True
        assert parser.parse_args(command).no_progress is False
