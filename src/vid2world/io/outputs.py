"""The one rule for every command that writes: it never replaces or deletes a file it did not create.

- An output *file* (`rollout --out`, `data preview --out`, every `--json FILE`) must be new; an existing one is
  replaced only when the user says so (`--overwrite`). `check_output_file` checks this before any work.
- An output *directory* (`train out=`, `demo --out`, `evaluate --out`) is claimed by one command: it must be new,
  empty, or written by an earlier run of the same command. `OutputDirectory` keeps a record of the files a command
  wrote there (`.vid2world.json`), and a later run replaces only those: a file the user put there, even under a name
  the command writes, is refused by name and left as it is.

Directories that hold one self-describing output (a world model, an IDM, a dataset, a checkpoint) keep their own
kind checks (`check_replaceable`); this module is for directories that gather a command's several outputs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Iterable

from .atomic import absolute, write_text
from .resources import existing_ancestor

RECORD = ".vid2world.json"


def check_output_file(path: str | os.PathLike, overwrite: bool = False, flag: str = "--out") -> Path:
    """Raise `FileExistsError` unless `path` may be written: new, or (with `overwrite`) an existing file; never a
    directory. Also checks that its folder can be written, so a read-only place fails before any work."""
    target = absolute(path)
    if target.is_dir():
        raise FileExistsError(f"{flag} {path}: is a directory; expected the path of a file to write")
    if target.exists() and not overwrite:
        raise FileExistsError(f"{flag} {path}: exists; give a new file name, or pass overwrite=True to replace it")
    check_writable(target.parent, flag)
    return target


def check_writable(directory: str | os.PathLike, flag: str = "--out") -> None:
    """Raise `PermissionError` naming `flag` when files cannot be created in `directory` (or the nearest existing
    folder above it, which would have to create it)."""
    place = existing_ancestor(directory)
    if not os.access(place, os.W_OK | os.X_OK):
        raise PermissionError(f"{flag} {directory}: {place} is not writable; give a folder you can write to")


class OutputDirectory:
    """A directory claimed by `command` (see the module doc). Making one checks, and writes nothing: the directory
    and its record appear with the first `file(name)`, the one way to a path to write (a file or a folder of the
    command's, by its top-level name), so a command that fails on its inputs leaves no directory behind.

    `outputs`: the names the command will write, checked now (before any work): an entry that exists and was not
    written by this command is refused by name. `legacy(path)`: whether a directory without a record is an
    earlier, unrecorded output of this command (written before records existed); its entries are then adopted."""

    def __init__(self, path: str | os.PathLike, command: str, flag: str = "--out", outputs: Iterable[str] = (),
                 legacy: Callable[[Path], bool] = lambda path: False) -> None:
        self.path, self.command, self.flag = absolute(path), command, flag
        if self.path.exists() and not self.path.is_dir():
            raise FileExistsError(f"{flag} {path}: exists and is not a directory; give a directory")
        check_writable(self.path, flag)
        self.written = self._earlier(legacy)
        for name in outputs:
            self._check(name)

    def _earlier(self, legacy: Callable[[Path], bool]) -> set[str]:
        """What earlier runs of this command wrote here; refuses a directory that is someone else's."""
        record = self.path / RECORD
        if record.is_file():
            try:
                data = json.loads(record.read_text())
                owner, files = data["command"], set(data["files"])
            except (ValueError, KeyError, TypeError):
                raise ValueError(f"{record}: unreadable record of {self.command}'s outputs; give another "
                                 f"{self.flag}") from None
            if owner != self.command:
                raise FileExistsError(f"{self.flag} {self.path}: holds the outputs of `vid2world {owner}`; give a "
                                      f"new directory for `vid2world {self.command}`")
            return files
        present = sorted(p.name for p in self.path.iterdir()) if self.path.is_dir() else []
        if present and not legacy(self.path):
            shown = ", ".join(present[:3]) + (", ..." if len(present) > 3 else "")
            raise FileExistsError(f"{self.flag} {self.path}: exists, is not empty ({shown}) and holds no earlier "
                                  f"output of `vid2world {self.command}`; give a new or an empty directory")
        return set(present)  # an adopted earlier output: what is there is the command's

    def _check(self, name: str | os.PathLike) -> str:
        relative = Path(name).as_posix()
        if relative not in self.written and os.path.lexists(self.path / relative):
            raise FileExistsError(f"{self.flag} {self.path}: {relative} was not written by `vid2world "
                                  f"{self.command}`; it is left as it is: move it, or give another directory")
        return relative

    def file(self, name: str | os.PathLike) -> Path:
        """The path of output `name` (relative to the directory), recorded as this command's."""
        return self.files([name])[0]

    def files(self, names: Iterable[str | os.PathLike]) -> list[Path]:
        """The paths of outputs `names`, all checked, then recorded in one write of the record."""
        relative = [self._check(name) for name in names]
        if not set(relative) <= self.written or not (self.path / RECORD).is_file():
            self.written.update(relative)
            self._save()
        return [self.path / r for r in relative]

    def owns(self, name: str | os.PathLike) -> bool:
        """Whether output `name` was written by this command (so it may be replaced or removed)."""
        return Path(name).as_posix() in self.written

    def _save(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"command": self.command, "files": sorted(self.written)}, indent=1) + "\n"
        write_text(self.path / RECORD, text)


__all__ = ["OutputDirectory", "RECORD", "check_output_file", "check_writable"]
