"""Wan's 3-D rotary position embedding as pure functions of explicit positions.

A head of width d is split into a frame part, a height part and a width part (h = w = 2 * (d // 6), t = d - h - w,
as Wan and diffusers do). Each part rotates consecutive channel pairs (2i, 2i+1) by position x frequency_i, with
frequencies theta^(-2i / part) per part. Positions are arguments, not a table: a stream rotates its cached keys at
window-relative frame positions on every call, and those positions differ per batch row.
"""

from __future__ import annotations

import torch
from torch import Tensor


def rope_split(head_dim: int) -> tuple[int, int, int]:
    """(frame, height, width) channel counts of one head."""
    spatial = 2 * (head_dim // 6)
    return head_dim - 2 * spatial, spatial, spatial


def axis_frequencies(dim: int, theta: float = 10000.0, device: torch.device | None = None) -> Tensor:
    """[dim / 2] float64 rotation frequencies of one axis part."""
    return 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float64, device=device) / dim)


def rope_angles(frame_positions: Tensor, height: int, width: int, head_dim: int,
                theta: float = 10000.0) -> Tensor:
    """Rotation angles [..., F, height * width, head_dim / 2] (float64) for tokens ordered (frame, row, column):
    `frame_positions` [..., F] gives each frame's position (any leading batch dimensions); rows and columns are at
    0..height-1 and 0..width-1."""
    t_dim, h_dim, w_dim = rope_split(head_dim)
    device = frame_positions.device
    frames = frame_positions.to(torch.float64)[..., None] * axis_frequencies(t_dim, theta, device)  # [..., F, t/2]
    rows = torch.arange(height, dtype=torch.float64, device=device)[:, None] * axis_frequencies(h_dim, theta, device)
    cols = torch.arange(width, dtype=torch.float64, device=device)[:, None] * axis_frequencies(w_dim, theta, device)
    spatial = torch.cat([rows[:, None].expand(height, width, -1), cols[None].expand(height, width, -1)], dim=-1)
    spatial = spatial.reshape(height * width, -1)  # [S, (h + w) / 2]
    lead = frames.shape[:-1]  # [..., F]
    frames = frames[..., None, :].expand(*lead, height * width, frames.shape[-1])
    return torch.cat([frames, spatial.expand(*lead, *spatial.shape)], dim=-1)


def rotate(x: Tensor, angles: Tensor) -> Tensor:
    """x [..., F, S, heads, d] with each channel pair (2i, 2i+1) rotated by `angles` [..., F, S, d/2] (broadcast over
    heads). Computed in at least float32 with cos/sin rounded to that width first (as diffusers), returned in x's
    dtype."""
    wide = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    cos, sin = (f(angles).to(wide)[..., None, :] for f in (torch.cos, torch.sin))
    pairs = x.to(wide).unflatten(-1, (-1, 2))
    even, odd = pairs[..., 0], pairs[..., 1]
    out = torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1)
    return out.flatten(-2).to(x.dtype)
