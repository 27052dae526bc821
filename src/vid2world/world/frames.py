"""User-facing frames (uint8 [B, T, H, W, 3], numpy or torch) <-> model-facing tensors (float [B, 3, T, H, W] in
[-1, 1]), with errors that name the argument and the shape expected."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor


def frames_to_tensor(frames: Any, name: str, device: torch.device | str) -> tuple[Tensor, bool]:
    """uint8 frames [B, T, H, W, 3] -> float [B, 3, T, H, W] in [-1, 1]; also whether the input was numpy."""
    is_numpy = isinstance(frames, np.ndarray)
    if not (is_numpy or isinstance(frames, Tensor)):
        raise ValueError(f"{name}: expected uint8 frames [B, T, H, W, 3] as a numpy array or torch tensor, "
                         f"got {type(frames).__name__}")
    t = torch.from_numpy(np.ascontiguousarray(frames)) if is_numpy else frames
    if t.ndim != 5 or t.shape[-1] != 3:
        raise ValueError(f"{name}: expected frames [B, T, H, W, 3], got shape {tuple(t.shape)}")
    if t.dtype != torch.uint8:
        raise ValueError(f"{name}: expected dtype uint8 (0..255), got {t.dtype}")
    if t.shape[0] < 1 or t.shape[1] < 1:
        raise ValueError(f"{name}: expected at least one clip of at least one frame, got shape {tuple(t.shape)}")
    return (t.to(device).permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0), is_numpy


def tensor_to_frames(x: Tensor, as_numpy: bool) -> Any:
    """float [B, 3, T, H, W] in [-1, 1] -> uint8 [B, T, H, W, 3] (numpy when `as_numpy`)."""
    out = ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1).cpu()
    return out.numpy() if as_numpy else out


def actions_to_tensor(actions: Any, name: str, batch: int, width: int | None, device: torch.device | str) -> Tensor:
    """Actions [B, T, A] (numpy or torch) -> float tensor, checked against the batch and the action width."""
    if width is None:
        raise ValueError(f"{name}: this world model has no action input (its UNet has no action_space)")
    t = torch.as_tensor(np.asarray(actions) if not isinstance(actions, Tensor) else actions)
    if t.ndim != 3 or t.shape[0] != batch or t.shape[2] != width:
        raise ValueError(f"{name}: expected [B={batch}, T, A={width}], got shape {tuple(t.shape)}")
    return t.to(device=device, dtype=torch.float32)
