"""The one check every network metric makes on its input: uint8 RGB frames, channels last."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor


def check_frames(x: Any, name: str, layout: str) -> None:
    """A ValueError naming `name`, the type, shape and dtype given and what was expected, unless `x` is a numpy array
    or tensor of uint8 RGB frames laid out as `layout` (e.g. "B,T,H,W,3") with no empty axis."""
    if not isinstance(x, (np.ndarray, Tensor)):
        raise ValueError(f"{name}: expected a uint8 array [{layout}] (numpy or torch), got {type(x).__name__}")
    uint8 = np.uint8 if isinstance(x, np.ndarray) else torch.uint8
    if x.dtype != uint8 or x.ndim != layout.count(",") + 1 or x.shape[-1] != 3 or 0 in x.shape:
        raise ValueError(f"{name}: expected uint8 [{layout}] RGB frames, got {x.dtype} {tuple(x.shape)}")


def uint8_rgb(x: Any, name: str, layout: str) -> Tensor:
    """`x` (a numpy array or tensor) as a CPU uint8 tensor laid out as `layout`, after `check_frames`."""
    check_frames(x, name, layout)
    return (torch.from_numpy(x) if isinstance(x, np.ndarray) else x).cpu()


def same_shape(a: Tensor, b: Tensor, names: tuple[str, str]) -> None:
    """Paired metrics compare frame by frame: both inputs must have one shape."""
    if a.shape != b.shape:
        raise ValueError(f"{names[0]} {tuple(a.shape)} and {names[1]} {tuple(b.shape)}: shapes differ, expected "
                         "the same videos frame by frame")
