"""The conditioned denoiser: the one place a world model's UNet is called with its conditioning.

Training (`clip_loss`), the cached and recompute evaluators and sessions all go through `denoise`, so the
first-frame concat, the cross-attention context, the fps condition and the one-frame action shift
(`frame_actions`) are each written once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..models.embeddings import followed_actions
from ..models.stream import CacheView
from ..models.unet import VideoUNet

__all__ = ["Conditioning", "denoise", "followed_actions"]


@dataclass(frozen=True)
class Conditioning:
    """What every denoiser call of one session or batch shares, built once."""

    concat: Tensor | None = None  # [B, Cc, 1, h, w] first-frame latent, channel-concatenated to every frame
    context: Tensor | None = None  # [B, L, D] cross-attention tokens
    fps: int | None = None  # frame-rate condition (None: the UNet's default)

    @classmethod
    def of(cls, model, latents: Tensor, context: Tensor | None = None) -> "Conditioning":
        """A world model's conditioning for clips or context frames `latents` [B, C, T, h, w]."""
        return cls(latents[:, :, :1] if model.concat_first_frame else None, context, model.fps)

    def repeat(self, times: int) -> "Conditioning":
        """The same conditioning for a batch repeated `times` (conditional and unconditional rows in one call)."""
        return Conditioning(*(None if t is None else torch.cat([t] * times) for t in (self.concat, self.context)),
                            self.fps)

    def rows(self, rows: list[int]) -> "Conditioning":
        """The conditioning of chosen batch rows."""
        return Conditioning(*(None if t is None else t[rows] for t in (self.concat, self.context)), self.fps)

    def with_rows(self, rows: list[int], other: "Conditioning") -> "Conditioning":
        """This conditioning with `rows` replaced by `other`'s (a session row restarted from new frames)."""
        def put(mine: Tensor | None, theirs: Tensor | None) -> Tensor | None:
            if mine is None or theirs is None:
                return mine
            out = mine.clone()
            out[rows] = theirs.to(out)
            return out

        return Conditioning(put(self.concat, other.concat), put(self.context, other.context), self.fps)


def denoise(unet: VideoUNet, x: Tensor, levels: Tensor, conditioning: Conditioning, actions: Tensor | None = None,
            mask: Tensor | None = None, cache: CacheView | None = None, commit: bool = False) -> Tensor:
    """The UNet's output for frames x [B, C, T, h, w] at noise `levels` [B, T], each following `actions[:, t]`
    (already shifted: `followed_actions`), action embeddings gated by `mask` [B, T] (None: all kept); with a `cache`
    the frames follow the committed ones, and `commit` appends them."""
    if conditioning.concat is not None:
        x = torch.cat([x, conditioning.concat.expand(-1, -1, x.shape[2], -1, -1)], dim=1)
    return unet.denoise(x, levels, conditioning.context, conditioning.fps, actions,
                        None if actions is None else mask, cache=cache, commit=commit)
