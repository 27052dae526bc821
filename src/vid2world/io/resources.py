"""Memory and disk a command will need, checked before it starts: a run that cannot fit fails in one line naming
the flags that set its size, instead of being killed by the kernel minutes later with its temporaries left behind."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def existing_ancestor(path: str | os.PathLike) -> Path:
    """`path` or its nearest parent that exists (where the disk is measured before anything is created)."""
    place = Path(os.path.abspath(path))
    while not place.exists() and place != place.parent:
        place = place.parent
    return place


def available_memory() -> int | None:
    """Bytes of memory this machine can give without swapping (MemAvailable); None where it cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def check_memory(need: int, what: str, fix: str) -> None:
    """ValueError naming `what` (the flags and their values), both numbers and `fix`, when `need` bytes of memory
    are more than the machine has available now."""
    have = available_memory()
    if have is not None and need > have:
        raise ValueError(f"{what}: needs about {gb(need)} of memory, {gb(have)} is available; {fix}")


def check_disk(directory: str | os.PathLike, need: int, what: str, fix: str) -> int:
    """Free bytes on `directory`'s disk; a ValueError naming `what`, both numbers and `fix` when `need` does not
    fit."""
    free = shutil.disk_usage(existing_ancestor(directory)).free
    if need > free:
        raise ValueError(f"{what}: needs about {gb(need)} on the disk of {directory}, {gb(free)} is free; {fix}")
    return free


__all__ = ["available_memory", "check_disk", "check_memory", "existing_ancestor"]
