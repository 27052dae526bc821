"""The one check every network metric makes on its input: uint8 RGB frames, channels last."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor


def uint8_rgb(x: Any, name: str, layout: str) -> Tensor:
    """`x` (a numpy array or tensor) as a CPU uint8 tensor laid out as `layout` (e.g. "B,T,H,W,3"), or a ValueError
    naming `name`, the shape and dtype given and what was expected."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, Tensor):
        raise ValueError(f"{name}: expected a uint8 array [{layout}], got {type(x).__name__}")
    ndim = layout.count(",") + 1
    if x.dtype != torch.uint8 or x.ndim != ndim or x.shape[-1] != 3 or 0 in x.shape:
        raise ValueError(f"{name}: expected uint8 [{layout}] RGB frames, got {x.dtype} {tuple(x.shape)}")
    return x.cpu()


def same_shape(a: Tensor, b: Tensor, names: tuple[str, str]) -> None:
    """Paired metrics compare frame by frame: both inputs must have one shape."""
    if a.shape != b.shape:
        raise ValueError(f"{names[0]} {tuple(a.shape)} and {names[1]} {tuple(b.shape)}: shapes differ, expected "
                         "the same videos frame by frame")
