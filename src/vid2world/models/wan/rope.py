"""Wan's 3-D rotary position embedding as pure functions of explicit positions.

A head of width d is split into a frame part, a height part and a width part (h = w = 2 * (d // 6) channels,
t = the rest, as Wan and diffusers do). Each part rotates consecutive channel pairs (2i, 2i+1) by position x
frequency_i, with frequencies theta^(-2i / part) per part. Positions are arguments, not a table: a stream
rotates its cached keys at window-relative frame positions on every call, and those positions differ per batch
row.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    """Rotation angles [..., F, height * width, head_dim / 2] (float64) for tokens ordered (frame, row,
    column): `frame_positions` [..., F] gives each frame's position (any leading batch dimensions); rows and
    columns are at 0..height-1 and 0..width-1."""
    t_dim, h_dim, w_dim = rope_split(head_dim)
    device = frame_positions.device

    def along(positions: Tensor, dim: int) -> Tensor:
        return positions.to(torch.float64)[..., None] * axis_frequencies(dim, theta, device)

    frames = along(frame_positions, t_dim)  # [..., F, t/2]
    rows = along(torch.arange(height, device=device), h_dim)  # [height, h/2]
    cols = along(torch.arange(width, device=device), w_dim)
    spatial = torch.cat([rows[:, None].expand(height, width, -1), cols[None].expand(height, width, -1)], -1)
    spatial = spatial.reshape(height * width, -1)  # [S, (h + w) / 2]
    lead = frames.shape[:-1]  # [..., F]
    frames = frames[..., None, :].expand(*lead, height * width, frames.shape[-1])
    return torch.cat([frames, spatial.expand(*lead, *spatial.shape)], dim=-1)


@dataclass(frozen=True)
class Rotation:
    """cos and sin of rotation angles [..., F, S, 1, d/2] (a heads axis to broadcast over), in the width the
    rotation computes in: at least float32, cos/sin rounded to it first (as diffusers)."""

    cos: Tensor
    sin: Tensor

    @classmethod
    def of(cls, angles: Tensor, dtype: torch.dtype) -> "Rotation":
        wide = dtype if dtype in (torch.float32, torch.float64) else torch.float32
        return cls(angles.cos().to(wide)[..., None, :], angles.sin().to(wide)[..., None, :])

    def __call__(self, x: Tensor) -> Tensor:
        """x [..., F, S, heads, d] with each channel pair (2i, 2i+1) rotated, returned in x's dtype."""
        pairs = x.to(self.cos.dtype).unflatten(-1, (-1, 2))
        even, odd = pairs[..., 0], pairs[..., 1]
        out = torch.stack([even * self.cos - odd * self.sin, even * self.sin + odd * self.cos], dim=-1)
        return out.flatten(-2).to(x.dtype)
