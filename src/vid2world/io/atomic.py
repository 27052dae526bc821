"""Atomic writes: the one place where vid2world writes a file or a directory under a temporary sibling name and
renames it into place, so that neither a reader nor a crash ever sees half an output.

Temporaries are named `.<target name>.tmp-<pid>-<random>` beside their target: hidden, tied to the target's name
and to the process that writes them. `remove_stale_temporaries` uses both to remove what a killed process left
behind, and nothing else (no other names, no temporary of a process still running).

Outputs get the permissions of any other new file, 0o666 / 0o777 less the umask: `mkstemp` / `mkdtemp` alone would
leave them 0600 / 0700, unreadable to teammates on shared storage.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

TEMPORARY_MARK = ".tmp-"
REPLACED_MARK = ".old-"  # a replaced directory, between the swap and its removal
_LIVE: set[str] = set()  # this process's temporaries being written (a restarted container may reuse our pid)


def absolute(path: str | os.PathLike) -> Path:
    """`path` made absolute without following links (so `.` and `..` get a real name)."""
    return Path(os.path.abspath(path))


def current_umask() -> int:
    """The process's umask (read from /proc where possible: setting it to read it back is not thread-safe)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Permissions of a new file under the current umask (0o644 under the usual 0o022)."""
    return 0o666 & ~current_umask()


def directory_mode() -> int:
    """Permissions of a new directory under the current umask (0o755 under the usual 0o022)."""
    return 0o777 & ~current_umask()


def temporary_prefix(name: str) -> str:
    """The start of every temporary this process makes for a target called `name`."""
    return f".{name}{TEMPORARY_MARK}{os.getpid()}-"


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """`with atomic_file(path) as tmp: write tmp` -> `path` replaced by the complete file, or left as it was.

    `tmp` is a sibling with `path`'s suffix (writers that choose the format by suffix still work)."""
    path = absolute(path)
    if path.is_dir():
        raise FileExistsError(f"{path}: is a directory; expected the path of a file to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=temporary_prefix(path.name), suffix=path.suffix)
    os.close(fd)
    tmp = Path(name)
    _LIVE.add(name)
    try:
        yield tmp
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        _LIVE.discard(name)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` to `path` atomically; returns the absolute path."""
    with atomic_file(path) as tmp:
        tmp.write_text(text)
    return absolute(path)


def check_replaceable(target: str | os.PathLike, overwrite: bool = False, keep: Iterable[str | os.PathLike] = ()
                      ) -> Path:
    """Raise `FileExistsError` unless a directory may be written at `target`: it is absent or an empty directory,
    or (with `overwrite`) a directory of the caller's kind. Never a file, a link, the current directory or one
    that holds it, or one that holds a path in `keep` (e.g. the input being converted)."""
    target = absolute(target)
    if not os.path.lexists(target):
        return target
    if target.is_symlink() or not target.is_dir():
        raise FileExistsError(f"{target}: exists and is not a directory; give the path of a new directory")
    resolved = target.resolve()
    for path in keep:
        if resolved == Path(path).resolve() or resolved in Path(path).resolve().parents:
            raise FileExistsError(f"{target}: holds {path}, which must not be replaced; give a new directory")
    if not overwrite and any(target.iterdir()):
        raise FileExistsError(f"{target}: exists and is not empty; give a new or an empty directory")
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise FileExistsError(f"{target}: is the current directory or holds it; give a new directory")
    return target


class AtomicDirectory:
    """A directory written under a temporary sibling name (`.path`) and renamed into place by `commit()`.

    `with AtomicDirectory(target) as d: write into d.path` commits on success and removes the temporary on an
    error. `target` must be absent or empty; with `overwrite=True` an existing directory (which the caller has
    checked is of its own kind) is replaced: moved to a hidden sibling, the new one renamed in, the old removed."""

    def __init__(self, target: str | os.PathLike, overwrite: bool = False,
                 keep: Iterable[str | os.PathLike] = ()) -> None:
        self.target, self.overwrite = check_replaceable(target, overwrite, keep), overwrite
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(dir=self.target.parent, prefix=temporary_prefix(self.target.name)))
        _LIVE.add(str(self.path))
        self.committed = False

    def commit(self) -> Path:
        """Rename the finished directory into place (permissions from the umask); returns the target."""
        try:
            _apply_umask(self.path)
            try:
                os.rename(self.path, self.target)  # creates the target, or replaces an empty directory
            except OSError as err:
                if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                if not self.overwrite:
                    raise FileExistsError(f"{self.target}: filled by something else while it was being written; "
                                          "nothing was replaced") from None
                self._swap()
        except BaseException:
            self.abort()
            raise
        _LIVE.discard(str(self.path))
        self.committed = True
        return self.target

    def _swap(self) -> None:
        old = self.target.with_name(f".{self.target.name}{REPLACED_MARK}{os.getpid()}-{secrets.token_hex(4)}")
        os.rename(self.target, old)
        try:
            os.rename(self.path, self.target)
        except BaseException:
            os.rename(old, self.target)
            raise
        shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        """Remove the temporary directory (the target is untouched)."""
        shutil.rmtree(self.path, ignore_errors=True)
        _LIVE.discard(str(self.path))

    def __enter__(self) -> "AtomicDirectory":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        elif not self.committed:
            self.commit()


def _apply_umask(root: Path) -> None:
    """Give a finished temporary tree the umask's permissions: `mkdtemp` makes it 0700, and some writers
    (safetensors) make their files 0600."""
    files, dirs = file_mode(), directory_mode()
    os.chmod(root, dirs)
    for parent, subdirs, names in os.walk(root):
        for name in subdirs:
            os.chmod(os.path.join(parent, name), dirs)
        for name in names:
            os.chmod(os.path.join(parent, name), files)


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # no such process; a number no pid can be
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temporaries(directory: str | os.PathLike, target_name: str | re.Pattern[str]) -> list[Path]:
    """Remove the temporaries this module made, in `directory`, for targets named `target_name` (a name, or a
    pattern the whole name must match), whose writing process is gone; returns what was removed.

    Also removes a replaced directory left by an interrupted swap once its replacement is in place."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    name = target_name if isinstance(target_name, re.Pattern) else re.compile(re.escape(target_name))
    marks = "|".join(re.escape(m) for m in (TEMPORARY_MARK, REPLACED_MARK))
    pattern = re.compile(rf"^\.(?P<target>.+?)(?P<mark>{marks})(?P<pid>\d+)-[A-Za-z0-9_]+(\.[A-Za-z0-9]+)?$")
    removed = []
    for entry in sorted(directory.iterdir()):
        found = pattern.match(entry.name)
        if not found or not name.fullmatch(found["target"]) or str(entry) in _LIVE:
            continue
        pid = int(found["pid"])
        if pid != os.getpid() and _pid_running(pid):
            continue  # another writer at work
        if found["mark"] == REPLACED_MARK and not (directory / found["target"]).is_dir():
            continue  # the swap stopped before its replacement arrived: this is the only copy
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


__all__ = ["AtomicDirectory", "absolute", "atomic_file", "check_replaceable", "current_umask", "directory_mode",
           "file_mode", "remove_stale_temporaries", "temporary_prefix", "write_text"]
