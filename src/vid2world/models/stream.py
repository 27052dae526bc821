"""`StreamCache`: what a causal UNet remembers of the frames it has already processed, in fixed-size slots.

A causal UNet mixes frames in three kinds of layer only, so frame t can be computed from frame t's input plus:
- each temporal attention's keys and values of the earlier frames (a KV cache),
- each causal temporal conv's last k-1 input frames,
- each `causal`-mode temporal GroupNorm's per-frame moments (mean, M2) of the earlier frames.
Everything else in the UNet works frame by frame. Each such layer owns one slot (its `cache_slot`, numbered when the
UNet is built), filled at its first committing call: ring buffers of `capacity` (= window - 1) frames and the
conv's last k-1 inputs. An integer fill count per batch row says how many frames a row has committed, so slot s of a
row is valid when s < min(fill, capacity); nothing grows with the rollout, and rows restart independently.

Exact only for strictly causal models (`temporal_norm` frame or causal): a `clip`-norm model has no causal state.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


class StreamCache:
    """Per-layer slots of a causal UNet for `batch` rows, keeping the last `capacity` committed frames."""

    def __init__(self, batch: int, capacity: int, slots: int) -> None:
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0 frames (window - 1), got {capacity}")
        self.capacity = capacity
        self.slots: list[tuple[Tensor, ...] | None] = [None] * slots
        self.fill = [0] * batch  # frames committed per row; host ints, so reading them never waits on a device

    def view(self, rows: list[int] | None = None, repeat: int = 1, commit: bool = False) -> "CacheView":
        """What one UNet call sees: the rows its batch holds (None: all, in order), repeated `repeat` times
        (conditional and unconditional passes in one call); `commit` appends the call's frames."""
        return CacheView(self, None if rows is None else tuple(rows), repeat, commit)

    def restart(self, rows: list[int]) -> None:
        """Forget everything `rows` committed (their conv tails go back to the zero padding before frame 0)."""
        for r in rows:
            self.fill[r] = 0
        index = torch.tensor(rows, dtype=torch.long)
        for slot in self.slots:
            for t in slot or ():
                t[index.to(t.device)] = 0

    def nbytes(self) -> int:
        """Bytes held by the slots (fixed once every layer has committed once)."""
        return sum(t.numel() * t.element_size() for slot in self.slots for t in slot or ())


@dataclass(frozen=True)
class CacheView:
    """One call's access to a `StreamCache` (see `StreamCache.view`); layers read and write through it."""

    cache: StreamCache
    rows: tuple[int, ...] | None
    repeat: int
    commit: bool

    @property
    def capacity(self) -> int:
        return self.cache.capacity

    def row_list(self) -> list[int]:
        return list(range(len(self.cache.fill))) if self.rows is None else list(self.rows)

    def fills(self) -> list[int]:
        return [self.cache.fill[r] for r in self.row_list()]

    def frames_in_view(self, new: int) -> int:
        """Frames a call of `new` frames sees (the most any of its rows sees)."""
        return min(max(self.fills()) + new, self.capacity + new)

    def valid(self, device: torch.device) -> Tensor | None:
        """[rows, capacity] bool: which slots hold a committed frame; None when all do (no mask needed)."""
        fills = self.fills()
        if min(fills) >= self.capacity:
            return None
        return (torch.arange(self.capacity)[None] < torch.tensor(fills)[:, None]).to(device)

    def has_past(self) -> bool:
        return self.capacity > 0 and max(self.fills()) > 0

    def stored(self, slot: int) -> tuple[Tensor, ...] | None:
        """The slot's tensors for this call's rows (not repeated)."""
        state = self.cache.slots[slot]
        if state is None or self.rows is None:
            return state
        index = torch.tensor(self.rows, device=state[0].device)
        return tuple(t[index] for t in state)

    def read(self, slot: int) -> tuple[Tensor, ...] | None:
        """The slot's tensors for this call's batch (rows repeated `repeat` times)."""
        state = self.stored(slot)
        if state is None or self.repeat == 1:
            return state
        return tuple(torch.cat([t] * self.repeat) for t in state)

    def write(self, slot: int, state: tuple[Tensor, ...]) -> None:
        """Store whole per-row tensors (conv tails, merged moments) for this call's rows."""
        self._check_writable()
        if self.cache.slots[slot] is None:
            self.cache.slots[slot] = tuple(t.new_zeros((len(self.cache.fill), *t.shape[1:])) for t in state)
        if self.rows is None:  # every row, in order: a plain copy (no index tensor, no scatter)
            for buffer, t in zip(self.cache.slots[slot], state):
                buffer.copy_(t)
            return
        index = torch.tensor(self.row_list(), device=state[0].device)
        for buffer, t in zip(self.cache.slots[slot], state):
            buffer[index] = t

    def ring_positions(self, j: int) -> Tensor:
        """Where each row's j-th new frame of this call goes in a ring of `capacity` frames."""
        return torch.tensor([(f + j) % self.capacity for f in self.fills()])

    def _check_writable(self) -> None:
        if not self.commit or self.repeat != 1:
            raise RuntimeError("a cache is written only by a committing call on its own rows (commit=True, repeat 1)")

    def committing(self, commit: bool) -> "CacheView":
        """This view for one call, appending its frames when `commit` (the call's own argument decides)."""
        return CacheView(self.cache, self.rows, self.repeat, commit)

    def advance(self, frames: int) -> None:
        """After a committing call: its rows now hold `frames` more committed frames."""
        if self.commit:
            for row in self.row_list():
                self.cache.fill[row] += frames

    def ensure(self, slot: int, shapes: list[tuple[int, ...]], like: Tensor) -> tuple[Tensor, ...]:
        """The slot's buffers, allocated (zeros, `like`'s dtype and device, batch = the cache's rows) if new."""
        self._check_writable()
        if self.cache.slots[slot] is None:
            b = len(self.cache.fill)
            self.cache.slots[slot] = tuple(like.new_zeros((b, *shape)) for shape in shapes)
        return self.cache.slots[slot]
