"""Child processes that must end with their parent. ViZDoom starts its game as a separate process that ignores
SIGTERM and outlives a parent killed by the kernel (out of memory) or by SIGKILL; `end_with_this_process` gives
such children a watchdog that kills them once this process is gone."""

from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager
from typing import Iterator

# A shell loop, not Python: a few hundred kilobytes per guarded simulator. It stops by itself once the children
# have ended; once the parent has, it kills them (SIGKILL: they may ignore SIGTERM).
_WATCHDOG = ('parent=$1; shift; while kill -0 "$parent" 2>/dev/null; do alive=0; for c in "$@"; do '
             'kill -0 "$c" 2>/dev/null && alive=1; done; [ $alive = 1 ] || exit 0; sleep 0.5; done; '
             'kill -9 "$@" 2>/dev/null; exit 0')


def children() -> set[int]:
    """The pids of this process's children, started from any of its threads (Linux; empty elsewhere)."""
    found: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{os.getpid()}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{os.getpid()}/task/{task}/children") as f:
                found.update(int(pid) for pid in f.read().split())
        except (OSError, ValueError):
            continue
    return found


@contextmanager
def end_with_this_process() -> Iterator[list[int]]:
    """`with end_with_this_process() as started: start a simulator` -> the child processes started inside the
    block (listed in `started`) are killed when this process ends, however it ends."""
    before, started = children(), []
    yield started
    started += sorted(children() - before)
    if started:
        subprocess.Popen(["sh", "-c", _WATCHDOG, "watchdog", str(os.getpid()), *map(str, started)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)  # a Ctrl-C to the terminal's group must not end the guard first


__all__ = ["children", "end_with_this_process"]
