"""Wan's attention layers (diffusers' `WanAttention` parameter names: to_q/to_k/to_v/to_out.0, norm_q/norm_k,
the image branch's add_k_proj/add_v_proj/norm_added_k) on `F.scaled_dot_product_attention`.

`SelfAttention` works on frames: tokens [B, F, S, dim] (S = tokens of one latent frame). Full-sequence
(passive) it attends over every token; frame-causal, frame j's queries attend to the keys of frames 0..j only,
computed one query frame at a time over a key prefix (no [L, L] mask: a 21-frame 480p clip has 33k tokens). On
a stream it keeps each committed frame's keys (after the q/k norm, before RoPE) and values in its
`StreamCache` slot and rotates them at window-relative positions on every call: cached frames at 0..n-1 in age
order, the new frames after them. The rotations depend on the call alone (frames, grid, fills), so
`frame_rotations` computes them once per call for every layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..stream import CacheView
from .rope import Rotation, rope_angles


@dataclass(frozen=True)
class FrameRotations:
    """One call's RoPE: of its new frames, and (on a stream with committed frames) of the cached ones."""

    new: Rotation  # [F, S, 1, d/2], or [B, F, S, 1, d/2] on a stream (positions differ per row)
    past: Rotation | None = None  # [B, capacity, S, 1, d/2]


def frame_rotations(frames: int, grid: tuple[int, int], head_dim: int, dtype: torch.dtype,
                    device: torch.device, stream: CacheView | None = None) -> FrameRotations:
    """Full sequence: frames at positions 0..F-1. On a stream, per row: the n = min(fill, capacity) cached
    frames at 0..n-1 oldest first, the new frames at n.. after them (rows repeated as the call's batch repeats
    them)."""
    if stream is None:
        return FrameRotations(Rotation.of(rope_angles(torch.arange(frames, device=device), *grid, head_dim),
                                          dtype))
    fills, capacity, repeat = stream.fills(), stream.capacity, stream.repeat
    in_cache = torch.tensor([min(fill, capacity) for fill in fills], device=device)  # [rows]
    positions = in_cache[:, None] + torch.arange(frames, device=device)  # [rows, new]
    new = Rotation.of(_repeat(rope_angles(positions, *grid, head_dim), repeat), dtype)
    if not (capacity and max(fills) > 0):
        return FrameRotations(new)
    past = _repeat(rope_angles(_age_positions(fills, capacity, device), *grid, head_dim), repeat)
    return FrameRotations(new, Rotation.of(past, dtype))


def add_projections(module: nn.Module, dim: int, heads: int, eps: float) -> None:
    """diffusers' attention layout, shared by self- and cross-attention: to_q/k/v, to_out (a list: Linear, the
    dropout diffusers keeps at index 1), and RMS norms of the queries and keys across heads."""
    module.heads = heads
    module.to_q, module.to_k, module.to_v = (nn.Linear(dim, dim) for _ in range(3))
    module.to_out = nn.ModuleList([nn.Linear(dim, dim), nn.Dropout(0.0)])
    module.norm_q = nn.RMSNorm(dim, eps=eps)
    module.norm_k = nn.RMSNorm(dim, eps=eps)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, eps: float) -> None:
        super().__init__()
        add_projections(self, dim, heads, eps)
        self.cache_slot = -1  # numbered by the transformer

    def forward(self, x: Tensor, rotations: FrameRotations, causal: bool,
                stream: CacheView | None = None) -> Tensor:
        """x [B, F, S, dim] -> [B, F, S, dim]; `rotations` from `frame_rotations` for this call."""
        q = self.norm_q(self.to_q(x)).unflatten(-1, (self.heads, -1))  # [B, F, S, heads, d]
        k = self.norm_k(self.to_k(x)).unflatten(-1, (self.heads, -1))
        v = self.to_v(x).unflatten(-1, (self.heads, -1))
        if stream is None:
            out = _attend(rotations.new(q), rotations.new(k), v, past=0, causal=causal, key_valid=None)
        else:
            out = self._streamed(q, k, v, rotations, stream)
        return self.to_out[0](out.flatten(-2))

    def _streamed(self, q: Tensor, k: Tensor, v: Tensor, rotations: FrameRotations,
                  stream: CacheView) -> Tensor:
        """New frames attend to the valid cached frames of their row and, causally, to each other."""
        past = None if rotations.past is None else stream.read(self.cache_slot)
        if past is None:
            out = _attend(rotations.new(q), rotations.new(k), v, past=0, causal=True, key_valid=None)
        else:
            past_k, past_v = past  # [B, capacity, S, heads, d]
            if past_k.shape[2:] != k.shape[2:]:
                raise ValueError(f"a stream's frames keep one size: the cache holds (tokens, heads) = "
                                 f"{tuple(past_k.shape[2:4])} per frame, this call has {tuple(k.shape[2:4])}")
            keys = torch.cat([rotations.past(past_k), rotations.new(k)], dim=1)
            values = torch.cat([past_v, v], dim=1)
            valid = stream.valid(q.device)
            out = _attend(rotations.new(q), keys, values, past=stream.capacity, causal=True,
                          key_valid=None if valid is None else _repeat(valid, stream.repeat))
        if stream.commit and stream.capacity:
            self._commit(stream, k, v)
        return out

    def _commit(self, stream: CacheView, k: Tensor, v: Tensor) -> None:
        """Write the new frames' un-rotated keys and values into each row's ring of `capacity` frames
        (inference state: detached from autograd)."""
        new = k.shape[1]
        shape = (stream.capacity, *k.shape[2:])
        ring_k, ring_v = stream.ensure(self.cache_slot, [shape, shape], k)
        index = torch.tensor(stream.row_list(), device=k.device)
        for j in range(max(0, new - stream.capacity), new):
            position = stream.ring_positions(j).to(k.device)
            ring_k[index, position] = k[:, j].detach()
            ring_v[index, position] = v[:, j].detach()


def _age_positions(fills: list[int], capacity: int, device: torch.device) -> Tensor:
    """[rows, capacity] window position of each ring slot: the oldest frame a row holds is at 0. A row that
    has not wrapped holds frame s in slot s; one that has (fill >= capacity) holds its oldest frame in slot
    fill % capacity."""
    slots = torch.arange(capacity)
    rows = [slots if fill < capacity else (slots - fill) % capacity for fill in fills]
    return torch.stack(rows).to(device)


def _repeat(t: Tensor, times: int) -> Tensor:
    """Per-row tensors for a call whose batch repeats the rows `times` (conditional and unconditional
    passes)."""
    return t if times == 1 else torch.cat([t] * times)


def _attend(q: Tensor, k: Tensor, v: Tensor, past: int, causal: bool, key_valid: Tensor | None) -> Tensor:
    """Softmax attention of q [B, F, S, heads, d] over k, v [B, past + F, S, heads, d] -> [B, F, S, heads, d].

    Not `causal`: every query sees every key. `causal`: query frame j sees the `past` frames (those
    `key_valid` [B, past] marks, all when None) and new frames 0..j, one SDPA call per query frame over a key
    prefix, so frame j's output never depends on a later frame, bit for bit."""
    b, f, s, heads, d = q.shape
    to_heads = lambda t: t.flatten(1, 2).transpose(1, 2)  # noqa: E731  [B, heads, tokens, d]
    q4, k4, v4 = to_heads(q), to_heads(k), to_heads(v)
    if not causal:
        out = F.scaled_dot_product_attention(q4, k4, v4)
        return out.transpose(1, 2).reshape(b, f, s, heads, d)
    mask = None
    if key_valid is not None:  # [B, 1, 1, past tokens]: broadcast over heads and queries
        mask = key_valid.repeat_interleave(s, dim=1)[:, None, None, :]
    outs = []
    for j in range(f):
        keys = (past + j + 1) * s
        frame_mask = None if mask is None else F.pad(mask, (0, (j + 1) * s), value=True)
        queries = q4[:, :, j * s:(j + 1) * s]
        outs.append(F.scaled_dot_product_attention(queries, k4[:, :, :keys], v4[:, :, :keys],
                                                   attn_mask=frame_mask))
    return torch.cat(outs, dim=2).transpose(1, 2).reshape(b, f, s, heads, d)


class CrossAttention(nn.Module):
    """Attention of every token to the text tokens, plus (image-to-video) a second set of keys and values over
    the CLIP image tokens whose output is added (Wan's I2V cross-attention)."""

    def __init__(self, dim: int, heads: int, eps: float, image: bool) -> None:
        super().__init__()
        add_projections(self, dim, heads, eps)
        if image:
            self.add_k_proj, self.add_v_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)
            self.norm_added_k = nn.RMSNorm(dim, eps=eps)

    def forward(self, x: Tensor, text: Tensor | None, image: Tensor | None) -> Tensor | None:
        """x [B, N, dim]; text [B, L, dim] and image [B, L', dim] already embedded. None when there is
        neither."""
        if text is None and image is None:
            return None
        split = lambda t: t.unflatten(-1, (self.heads, -1)).transpose(1, 2)  # noqa: E731  [B, heads, L, d]
        q = split(self.norm_q(self.to_q(x)))
        out = None
        if text is not None:
            keys, values = split(self.norm_k(self.to_k(text))), split(self.to_v(text))
            out = F.scaled_dot_product_attention(q, keys, values)
        if image is not None:
            seen = F.scaled_dot_product_attention(q, split(self.norm_added_k(self.add_k_proj(image))),
                                                  split(self.add_v_proj(image)))
            out = seen if out is None else out + seen
        return self.to_out[0](out.transpose(1, 2).flatten(-2))
