"""Progress output: a live bar on a terminal, plain periodic lines in logs, nothing when disabled.

A carriage-return bar written to a file or pipe turns every log into kilobytes of redraws; a log wants a line now
and then that says how far it got and how fast. `progress_bar` picks the one that fits where the output goes.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Iterable, Iterator, TextIO


class PlainProgress:
    """The bar's interface (iterate, `update`, `set_postfix`, `close`) as whole lines: one each time the count
    crosses another `every_fraction` of the total or `every_seconds` have passed, and one at the end.
    `stream=None` prints nothing."""

    def __init__(self, iterable: Iterable[Any] | None = None, total: int | None = None, desc: str = "",
                 unit: str = "it", initial: int = 0, stream: TextIO | None = None, every_fraction: float = 0.1,
                 every_seconds: float = 30.0) -> None:
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.count = self._start = self._reported = initial
        self.stream, self.every_fraction, self.every_seconds = stream, every_fraction, every_seconds
        self.postfix: dict[str, Any] = {}
        self._t0 = self._last_line = time.monotonic()
        self._next_count = self._threshold_after(initial)
        self.closed = False

    def _threshold_after(self, count: int) -> float:
        """The next count that earns a line: the next multiple of `every_fraction` of the total."""
        if not self.total:
            return float("inf")
        step = max(1.0, self.total * self.every_fraction)
        return (int(count / step) + 1) * step

    def __iter__(self) -> Iterator[Any]:
        try:
            for item in self.iterable or ():
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.count += n
        now = time.monotonic()
        if self.count >= self._next_count or now - self._last_line >= self.every_seconds:
            self._line(now)

    def set_postfix(self, **values: Any) -> None:
        """Values shown at the end of the following lines (e.g. the latest loss)."""
        self.postfix = values

    def close(self) -> None:
        if not self.closed and self.count != self._reported:
            self._line(time.monotonic())
        self.closed = True

    def _line(self, now: float) -> None:
        self._reported, self._last_line = self.count, now
        self._next_count = self._threshold_after(self.count)
        if self.stream is None:
            return
        elapsed = now - self._t0
        rate = (self.count - self._start) / elapsed if elapsed > 0 else 0.0
        done = f"{self.count}/{self.total} {self.unit} ({100 * self.count / self.total:.0f}%)" if self.total \
            else f"{self.count} {self.unit}"
        extra = "".join(f", {k}={v}" for k, v in self.postfix.items())
        print(f"{self.desc}: {done}, {rate:.3g} {self.unit}/s, {elapsed:.0f} s{extra}", file=self.stream, flush=True)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


def progress_bar(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str = "", unit: str = "it",
             initial: int = 0, enabled: bool = True, stream: TextIO | None = None) -> Any:
    """A progress reporter over `iterable` (or updated by hand with `update(n)`), on `stream` (default stderr):
    a tqdm bar when the stream is a terminal, a `PlainProgress` line every ~10% or 30 s when it is not (logs,
    pipes), silent when `enabled` is False. Either supports iteration, `update`, `set_postfix` and `close`."""
    stream = sys.stderr if stream is None else stream
    if enabled and _is_terminal(stream):
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, file=stream)
    return PlainProgress(iterable, total=total, desc=desc, unit=unit, initial=initial,
                         stream=stream if enabled else None)
