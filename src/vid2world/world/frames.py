"""User-facing frames (uint8 [B, T, H, W, 3], numpy or torch) <-> model-facing tensors (float [B, 3, T, H, W] in
[-1, 1]), with errors that name the argument and the shape expected."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor


def frames_to_tensor(frames: Any, name: str, device: torch.device | str) -> tuple[Tensor, bool]:
    """uint8 frames [B, T, H, W, 3] -> float [B, 3, T, H, W] in [-1, 1]; also whether the input was numpy.

    Read-only numpy arrays (`np.load(..., mmap_mode="r")`) are welcome: they are never written to."""
    is_numpy = isinstance(frames, np.ndarray)
    if not (is_numpy or isinstance(frames, Tensor)):
        raise ValueError(f"{name}: expected uint8 frames [B, T, H, W, 3] as a numpy array or torch tensor, "
                         f"got {type(frames).__name__}")
    shape = tuple(frames.shape)
    if len(shape) != 5 or shape[-1] != 3:
        raise ValueError(f"{name}: expected frames [B, T, H, W, 3], got shape {shape}")
    if frames.dtype != (np.uint8 if is_numpy else torch.uint8):
        raise ValueError(f"{name}: expected dtype uint8 (0..255), got {frames.dtype}")
    if shape[0] < 1 or shape[1] < 1:
        raise ValueError(f"{name}: expected at least one clip of at least one frame, got shape {shape}")
    t = _numpy_to_tensor(frames) if is_numpy else frames
    return (t.to(device).permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0), is_numpy


def _numpy_to_tensor(array: np.ndarray) -> Tensor:
    """Shares memory where it can. torch warns about sharing a read-only array, so that one is copied, as the uint8
    it is (a quarter of the float tensor made from it next)."""
    array = np.ascontiguousarray(array)
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def tensor_to_frames(x: Tensor, as_numpy: bool) -> Any:
    """float [B, 3, T, H, W] in [-1, 1] -> uint8 [B, T, H, W, 3] (numpy when `as_numpy`)."""
    out = ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1).cpu()
    return out.numpy() if as_numpy else out


def actions_to_tensor(actions: Any, name: str, batch: int, width: int | None, device: torch.device | str,
                      one_step: bool = False) -> Tensor:
    """Actions [B, T, A] (or one step's [B, A] when `one_step`), numpy or torch -> float tensor, checked against the
    batch, the action width and for NaN/inf (which would roll out as black frames)."""
    if width is None:
        raise ValueError(f"{name}: this world model has no action input (its UNet has no action_space)")
    layout = f"[B={batch}, A={width}]" if one_step else f"[B={batch}, T, A={width}]"
    if isinstance(actions, Tensor):
        t = actions
    else:
        try:  # a copy: actions are small, and torch warns about sharing a read-only array
            with np.errstate(over="ignore"):  # a value beyond float32 becomes inf, named below
                t = torch.from_numpy(np.asarray(actions).astype(np.float32))
        except (TypeError, ValueError):
            raise ValueError(f"{name}: expected numbers {layout}, got {type(actions).__name__}") from None
    if t.ndim != (2 if one_step else 3) or t.shape[0] != batch or t.shape[-1] != width:
        raise ValueError(f"{name}: expected {layout}, got shape {tuple(t.shape)}")
    t = t.to(device=device, dtype=torch.float32)
    check_finite(t, name)
    return t


def check_finite(t: Tensor, name: str, row_note: Callable[[int], str] | None = None) -> None:
    """Raise ValueError naming `name`, the first NaN/inf and its index (`row_note(i)` may say where row i came
    from). Integer and bool tensors always pass."""
    if t.is_floating_point() or t.is_complex():
        bad = ~torch.isfinite(t)
        if bad.any():
            index = tuple(int(i) for i in bad.nonzero()[0])
            note = row_note(index[0]) if row_note and index else ""
            raise ValueError(f"{name}: non-finite value {t[index].item()} at {list(index)}{note}; expected finite "
                             "numbers")
