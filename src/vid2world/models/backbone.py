"""The backbone seam: what the rollout runtime, training, evaluation and play need of a video denoiser.

A backbone denoises latent frames [B, C, T, h, w], each frame at its own noise level, each following its own action,
under one `Conditioning` shared by a batch, and streams frames through one explicit `StreamCache`. DynamiCrafter's
`VideoUNet` and Wan's `WanTransformer` implement it; a third backbone subclasses `Backbone`, gives its config the
fields of `BackboneConfig`, and adds one line to `models/backbones.py` (docs/backbones.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import torch
from torch import Tensor, nn

from .config import ActionSpace
from .stream import CacheView, StreamCache


class BackboneConfig(Protocol):
    """What the runtime reads of a backbone's (frozen dataclass) config."""

    in_channels: int  # latent channels in, the first-frame condition's included
    out_channels: int
    temporal_length: int  # latent frames of a training clip: the default window
    action_space: ActionSpace | None  # per latent frame (a group of video-frame actions: models/action_groups.py)
    context_dim: int | None  # width of the cross-attention context the backbone takes (None: none)

    @property
    def strictly_causal(self) -> bool: ...  # no frame sees a later one: the cache is exact

    @property
    def causal(self) -> Any: ...  # None: a full-sequence (passive) model

    def to_dict(self) -> dict[str, Any]: ...

    def replace(self, **changes: Any) -> Any: ...


@dataclass(frozen=True)
class Conditioning:
    """What every denoiser call of one session or batch shares, built once."""

    concat: Tensor | None = None  # [B, Cc, 1 or T, h, w] channel-concatenated to the frames (first-frame condition)
    context: Tensor | None = None  # [B, L, D] cross-attention tokens (CLIP tokens for the UNet, text for Wan)
    fps: int | None = None  # frame-rate condition (backbones without one ignore it)
    image_context: Tensor | None = None  # [B, L', D'] a second token set (Wan I2V's CLIP image tokens)

    def _tensors(self) -> tuple[Tensor | None, ...]:
        return self.concat, self.context, self.image_context

    def _with(self, tensors: tuple[Tensor | None, ...]) -> "Conditioning":
        concat, context, image_context = tensors
        return Conditioning(concat, context, self.fps, image_context)

    def repeat(self, times: int) -> "Conditioning":
        """The same conditioning for a batch repeated `times` (conditional and unconditional rows in one call)."""
        return self._with(tuple(None if t is None else torch.cat([t] * times) for t in self._tensors()))

    def rows(self, rows: list[int]) -> "Conditioning":
        """The conditioning of chosen batch rows."""
        return self._with(tuple(None if t is None else t[rows] for t in self._tensors()))

    def with_rows(self, rows: list[int], other: "Conditioning") -> "Conditioning":
        """This conditioning with `rows` replaced by `other`'s (a session row restarted from new frames)."""
        def put(mine: Tensor | None, theirs: Tensor | None) -> Tensor | None:
            if mine is None or theirs is None:
                return mine
            out = mine.clone()
            out[rows] = theirs.to(out)
            return out

        return self._with(tuple(put(a, b) for a, b in zip(self._tensors(), other._tensors())))

    def frames_input(self, x: Tensor) -> Tensor:
        """Frames [B, C, T, h, w] with the concat condition appended as channels (broadcast over T when it has one
        frame; a per-frame condition must have T frames)."""
        if self.concat is None:
            return x
        concat = self.concat if self.concat.shape[2] == x.shape[2] else self.concat[:, :, :1]
        return torch.cat([x, concat.expand(-1, -1, x.shape[2], -1, -1).to(x.dtype)], dim=1)


class Backbone(nn.Module):
    """A video denoiser behind the seam. Subclasses set `kind` (its name in `models/backbones.py`) and `config`,
    and implement `predict` and `set_gradient_checkpointing`."""

    kind: ClassVar[str] = ""
    config: Any  # a BackboneConfig
    cache_slots: int  # how many layers keep stream state (one `StreamCache` slot each), numbered when built

    def predict(self, x: Tensor, levels: Tensor, conditioning: Conditioning, frame_actions: Tensor | None = None,
                action_mask: Tensor | None = None, cache: CacheView | None = None,
                commit: bool = False) -> Tensor:
        """The model output (v) for frames x [B, C, T, h, w] at noise `levels` [B, T] under `conditioning`; frame j
        follows `frame_actions[:, j]` (already shifted or grouped), its action embedding gated by `action_mask`
        [B, T] (1 = keep). With a `cache` the frames follow the ones its rows committed; `commit` appends them."""
        raise NotImplementedError

    def set_gradient_checkpointing(self, enabled: bool = True) -> "Backbone":
        raise NotImplementedError

    def new_cache(self, batch: int, window: int) -> StreamCache:
        """An empty cache for streaming `batch` rows with a window of `window` frames (keeps window - 1)."""
        if not self.config.strictly_causal:
            raise ValueError(f"a cache needs a strictly causal {type(self).__name__} (a UNet's temporal_norm "
                             f"'frame' or 'causal'); this one is causal={self.config.causal}")
        return StreamCache(batch, window - 1, self.cache_slots)

    @property
    def mask_channels(self) -> int:
        """Input channels the backbone adds itself to mark its first-frame condition (Wan I2V's mask: 4), beyond
        the frames and the concat latent; 0 for most. A backbone with a mask marks only the window's first frame."""
        return 0

    @property
    def is_causal(self) -> bool:
        return self.config.causal is not None

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every state-dict key with its shape (works on the meta device: no weights needed)."""
        return {k: tuple(v.shape) for k, v in self.state_dict().items()}
