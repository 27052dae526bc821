"""Wan 2.1 image-to-video's first-frame condition, per latent frame (what its 36 input channels hold).

An I2V transformer takes 16 noisy latent channels, then 4 mask channels, then 16 condition-latent
channels. diffusers' `WanImageToVideoPipeline.prepare_latents` builds the condition from the video
[image, black, ...]: the mask is one on the 4 video frames latent frame 0 stands for and zero elsewhere,
and the condition latent is the VAE encoding of that video. vid2world conditions a window on one anchor
frame: the frame at position 0 of the window gets [ones (4), the anchor's latent (16)], every later frame
[zeros (4), zeros (16)]. diffusers' later frames hold the encoding of black frames instead of zeros;
vid2world uses zeros (no VAE pass per step, the same for every codec), a deviation that fine-tuning into a
world model absorbs.

`frames_input` builds it from `Conditioning.concat` = the anchor latent [B, C, 1, h, w]; a concat that
already fills the input (the whole 4 + C condition, per frame or broadcast, as diffusers builds it) is
appended as is.

Positions: in a full-clip call frame j is at position j; on a stream (a `CacheView`), frame j of row r is
at position fill[r] + j, so only a row's first committed frame (the anchor, after every re-anchoring
restart) is at position 0.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..backbone import Conditioning
from ..stream import CacheView

MASK_CHANNELS = 4  # one per video frame a latent frame stands for (Wan's VAE compresses time by 4)


def first_frame_mask_channels(config: Any) -> int:
    """Input channels a backbone adds itself for its first-frame condition, beyond the frames and the concat
    latent: Wan I2V's mask (4) for an image-to-video `WanConfig`, 0 for every other config."""
    return MASK_CHANNELS if getattr(config, "image_to_video", False) else 0


def frame_positions(batch: int, frames: int, cache: CacheView | None, device: torch.device) -> Tensor:
    """[batch, frames] window positions of a call's frames: 0..frames-1, or after each row's committed frames
    on a stream (its rows repeated as the call's batch repeats them)."""
    new = torch.arange(frames, device=device)
    if cache is None:
        return new.expand(batch, frames)
    starts = torch.tensor(cache.fills() * cache.repeat, device=device)
    if starts.shape[0] != batch:
        raise ValueError(f"cache: a view of {starts.shape[0]} rows (repeated) for a batch of {batch}")
    return starts[:, None] + new


def first_frame_condition(anchor: Tensor | None, positions: Tensor, frame_shape: tuple[int, ...]) -> Tensor:
    """The 4 + C condition channels [B, 4 + C, T, h, w] of frames at `positions` [B, T]: [ones, anchor latent]
    at position 0, zeros elsewhere. `anchor` [B, C, 1, h, w] is the anchor frame's latent; `frame_shape` is
    the frames' (h, w)."""
    b, t = positions.shape
    if anchor is None or anchor.ndim != 5 or anchor.shape[0] != b or anchor.shape[2] != 1 \
            or tuple(anchor.shape[3:]) != tuple(frame_shape):
        got = None if anchor is None else tuple(anchor.shape)
        raise ValueError(f"conditioning.concat: an image-to-video WanTransformer needs the anchor latent "
                         f"[B={b}, C, 1, {frame_shape[0]}, {frame_shape[1]}], got {got}")
    is_first = (positions == 0).to(anchor.dtype)[:, None, :, None, None]  # [B, 1, T, 1, 1]
    mask = is_first.expand(b, MASK_CHANNELS, t, *frame_shape)
    return torch.cat([mask, anchor * is_first], dim=1)


def frames_input(x: Tensor, conditioning: Conditioning, in_channels: int, cache: CacheView | None) -> Tensor:
    """An image-to-video transformer's input [B, in_channels, T, h, w] for frames x [B, C, T, h, w]: x with
    the per-position condition of the anchor latent `conditioning.concat`, or with the concat as is when it
    holds the whole condition (x's channels + its channels = `in_channels`)."""
    concat = conditioning.concat
    if concat is not None and x.shape[1] + concat.shape[1] == in_channels:
        return conditioning.frames_input(x)
    positions = frame_positions(x.shape[0], x.shape[2], cache, x.device)
    return torch.cat([x, first_frame_condition(concat, positions, tuple(x.shape[3:])).to(x.dtype)], dim=1)
