"""The one object that travels through the UNet beside the features."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from .stream import CacheView


@dataclass
class FrameContext:
    """Per-call conditioning shared by every block, so no block needs keyword arguments threaded through it.

    Features travel as [(B T), C, H, W]; temporal layers fold them back to [B, C, T, H, W] with `batch`/`frames`.
    """

    batch: int
    frames: int
    emb: Tensor  # [(B T), 4C]: noise level + fps + action embedding of every frame
    context: Tensor | None  # [(B T), L, D] cross-attention tokens, or None for self-attention only
    stream: CacheView | None = None  # this call's access to the cache of earlier frames (streamed calls only)

    def to_video(self, h: Tensor) -> Tensor:
        """[(B T), C, H, W] -> [B, C, T, H, W]"""
        bt, c, hh, ww = h.shape
        return h.reshape(self.batch, self.frames, c, hh, ww).permute(0, 2, 1, 3, 4)

    def to_frames(self, v: Tensor) -> Tensor:
        """[B, C, T, H, W] -> [(B T), C, H, W]"""
        b, c, t, hh, ww = v.shape
        return v.permute(0, 2, 1, 3, 4).reshape(b * t, c, hh, ww)
