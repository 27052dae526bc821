"""The conditioned denoiser: the one place a world model's backbone is called with its conditioning.

Training (`clip_loss`), the cached and recompute evaluators and sessions all go through `denoise`, so the
first-frame concat, the cross-attention context, the fps condition and the one-frame action shift
(`frame_actions`) are each written once.
"""

from __future__ import annotations

from torch import Tensor

from ..models.backbone import Backbone, Conditioning
from ..models.conditioning import ConditionTokens
from ..models.stream import CacheView

__all__ = ["Conditioning", "conditioning_from", "conditioning_of", "denoise"]


def conditioning_from(concat: Tensor | None, tokens: Tensor | ConditionTokens | None,
                      fps: int | None) -> Conditioning:
    """A `Conditioning` from a first-frame concat and what a conditioner returned: context tokens, or
    `ConditionTokens` (text and image tokens, Wan I2V)."""
    if isinstance(tokens, ConditionTokens):
        return Conditioning(concat, tokens.context, fps, tokens.image_context)
    return Conditioning(concat, tokens, fps)


def conditioning_of(model, latents: Tensor, context: Tensor | ConditionTokens | None = None) -> Conditioning:
    """A world model's conditioning for clips or context frames `latents` [B, C, T, h, w]; `context` is what
    its conditioner returned."""
    return conditioning_from(latents[:, :, :1] if model.concat_first_frame else None, context, model.fps)


def denoise(backbone: Backbone, x: Tensor, levels: Tensor, conditioning: Conditioning, actions: Tensor | None = None,
            mask: Tensor | None = None, cache: CacheView | None = None, commit: bool = False) -> Tensor:
    """The backbone's output for frames x [B, C, T, h, w] at noise `levels` [B, T], each following `actions[:, t]`
    (already shifted or grouped: `WorldModel.latent_actions`), action embeddings gated by `mask` [B, T] (None: all kept); with a `cache`
    the frames follow the committed ones, and `commit` appends them."""
    return backbone.predict(x, levels, conditioning, actions, mask, cache, commit)
