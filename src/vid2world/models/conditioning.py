"""DynamiCrafter's cross-attention context, built from the conditioning frame (method.md 2.2, streams 2 and 3).

The context is the empty prompt's 77 text tokens followed by the Resampler's image tokens for the CLIP image
embedding of the frame. The prompt is always empty, so its text-tower output is a constant: it is computed once
(at conversion, with the real text tower) and kept here as the buffer `empty_text`, and the 350M-parameter text
tower itself is not needed afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from .clip import CLIPVisionConfig, OpenCLIPImageEncoder
from .resampler import Resampler, ResamplerConfig
from .wan.image import PREPROCESS, WanImageEncoder


class ImageConditioner(nn.Module):
    """`conditioner(frame)`: frame [B, 3, H, W] in [-1, 1] -> context [B, text_tokens + image_tokens, width]."""

    kind = "clip-resampler"
    frame_dependent = True  # its context is the anchor frame's: re-derived when the anchor moves

    def __init__(self, image_encoder: CLIPVisionConfig, image_proj: ResamplerConfig, text_tokens: int = 77) -> None:
        super().__init__()
        if image_proj.embedding_dim != image_encoder.width:
            raise ValueError(f"Resampler embedding_dim {image_proj.embedding_dim} != CLIP image width "
                             f"{image_encoder.width}: the Resampler reads the image tower's tokens")
        self.image_encoder = OpenCLIPImageEncoder(image_encoder)
        self.image_proj = Resampler(image_proj)
        self.register_buffer("empty_text", torch.zeros(1, text_tokens, image_proj.output_dim))

    @property
    def width(self) -> int:
        return self.empty_text.shape[-1]

    def set_text(self, text_tokens: Tensor) -> None:
        """Store the text tower's output for the empty prompt, [1, 77, width]."""
        if text_tokens.shape != self.empty_text.shape:
            raise ValueError(f"empty-prompt embedding: expected shape {tuple(self.empty_text.shape)}, got "
                             f"{tuple(text_tokens.shape)} (the text tower's width must equal the Resampler's output)")
        self.empty_text.copy_(text_tokens.detach())

    def forward(self, frame: Tensor) -> Tensor:
        if frame.ndim != 4 or frame.shape[1] != 3:
            raise ValueError(f"conditioning frame: expected [B, 3, H, W] in [-1, 1], got {tuple(frame.shape)}")
        dtype = self.empty_text.dtype
        image_tokens = self.image_proj(self.image_encoder(frame.to(dtype)))
        text = self.empty_text.expand(frame.shape[0], -1, -1)
        return torch.cat([text, image_tokens], dim=1)

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "image_encoder": self.image_encoder.config.to_dict(),
                "image_proj": self.image_proj.config.to_dict(), "text_tokens": self.empty_text.shape[1]}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "ImageConditioner":
        if config.get("kind") != cls.kind:
            raise ValueError(f"conditioner kind {config.get('kind')!r} is not {cls.kind!r}")
        return cls(CLIPVisionConfig.from_dict(config["image_encoder"]), ResamplerConfig.from_dict(config["image_proj"]),
                   int(config.get("text_tokens", 77)))


class PromptConditioner(nn.Module):
    """`conditioner(frame)` -> a fixed prompt's text features [B, L, D] whatever the frame (Wan's UMT5 features of
    the world model's prompt, computed once at conversion: `models/wan/text.py`). No weights: one buffer."""

    kind = "fixed-prompt"
    frame_dependent = False  # a session never re-derives it when its anchor frame moves

    def __init__(self, tokens: int, width: int) -> None:
        super().__init__()
        self.register_buffer("prompt_embeds", torch.zeros(1, tokens, width))

    @property
    def width(self) -> int:
        return self.prompt_embeds.shape[-1]

    def set_prompt(self, embeds: Tensor) -> None:
        """Store a prompt's features [L, D] or [1, L, D] (NaN and inf refused)."""
        embeds = embeds.reshape(1, *embeds.shape[-2:]) if embeds.ndim in (2, 3) else embeds
        if embeds.shape != self.prompt_embeds.shape or not torch.isfinite(embeds).all():
            raise ValueError(f"prompt features: expected finite values of shape {tuple(self.prompt_embeds.shape)}, "
                             f"got {tuple(embeds.shape)}")
        self.prompt_embeds.copy_(embeds.detach())

    def forward(self, frame: Tensor) -> Tensor:
        return self.prompt_embeds.expand(frame.shape[0], -1, -1)

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "tokens": self.prompt_embeds.shape[1], "width": self.width}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "PromptConditioner":
        if config.get("kind") != cls.kind:
            raise ValueError(f"conditioner kind {config.get('kind')!r} is not {cls.kind!r}")
        unknown = sorted(set(config) - {"kind", "tokens", "width"})
        if unknown:
            raise ValueError(f"unexpected settings {unknown} for conditioner kind {cls.kind!r}")
        return cls(int(config["tokens"]), int(config["width"]))


@dataclass(frozen=True)
class ConditionTokens:
    """A conditioner's two token sets: `context` (the cross-attention text) and `image_context` (image tokens,
    Wan I2V's CLIP tokens); `world.denoise.conditioning_of` puts them into a `Conditioning`."""

    context: Tensor  # [B, L, D]
    image_context: Tensor  # [B, L', D']

    def to(self, *args: Any, **kwargs: Any) -> "ConditionTokens":
        """Both token sets through `Tensor.to` (a dtype, a device)."""
        return ConditionTokens(self.context.to(*args, **kwargs), self.image_context.to(*args, **kwargs))


class WanImageConditioner(PromptConditioner):
    """`conditioner(frame)` -> `ConditionTokens`: the fixed prompt's text features [B, L, D] (a buffer, as in
    `PromptConditioner`) and the anchor frame's CLIP tokens [B, 257, image width] from `WanImageEncoder` (the
    tower to its penultimate block, frozen: it never trains). For Wan 2.1 image-to-video backbones."""

    kind = "wan-image-prompt"
    frame_dependent = True  # the image tokens are the anchor frame's: re-derived when the anchor moves

    def __init__(self, tokens: int, width: int, image_encoder: WanImageEncoder | CLIPVisionConfig,
                 preprocess: str = "diffusers") -> None:
        super().__init__(tokens, width)
        if preprocess not in PREPROCESS:
            raise ValueError(f"preprocess must be one of {sorted(PREPROCESS)}, got {preprocess!r}")
        self.preprocess = preprocess
        self.image_encoder = (image_encoder if isinstance(image_encoder, WanImageEncoder)
                              else WanImageEncoder(image_encoder))
        self.image_encoder.requires_grad_(False)

    @property
    def image_width(self) -> int:
        return self.image_encoder.config.width

    def forward(self, frame: Tensor) -> ConditionTokens:  # type: ignore[override]
        if frame.ndim != 4 or frame.shape[1] != 3:
            raise ValueError(f"conditioning frame: expected [B, 3, H, W] in [-1, 1], "
                             f"got {tuple(frame.shape)}")
        with torch.no_grad():  # frozen: no gradients into CLIP (its pixels are rounded to uint8 anyway)
            image = self.image_encoder.encode(frame, self.preprocess)
        return ConditionTokens(super().forward(frame), image.to(self.prompt_embeds.dtype))

    def config(self) -> dict[str, Any]:
        return {**super().config(), "kind": self.kind, "image_encoder": self.image_encoder.config.to_dict(),
                "preprocess": self.preprocess}

    @classmethod
    def check_config(cls, config: Mapping[str, Any]) -> None:
        """The settings `from_config` reads, checked without building the CLIP tower."""
        if config.get("kind") != cls.kind:
            raise ValueError(f"conditioner kind {config.get('kind')!r} is not {cls.kind!r}")
        unknown = sorted(set(config) - {"kind", "tokens", "width", "image_encoder", "preprocess"})
        if unknown:
            raise ValueError(f"unexpected settings {unknown} for conditioner kind {cls.kind!r}")
        if config.get("preprocess", "diffusers") not in PREPROCESS:
            raise ValueError(f"preprocess must be one of {sorted(PREPROCESS)}, got {config['preprocess']!r}")
        if int(config["tokens"]) < 1 or int(config["width"]) < 1:
            raise ValueError(f"tokens and width must be >= 1, got {config['tokens']} and {config['width']}")
        CLIPVisionConfig.from_dict(config["image_encoder"])

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "WanImageConditioner":
        cls.check_config(config)
        return cls(int(config["tokens"]), int(config["width"]),
                   CLIPVisionConfig.from_dict(config["image_encoder"]), config.get("preprocess", "diffusers"))


CONDITIONERS: dict[str, type[nn.Module]] = {ImageConditioner.kind: ImageConditioner,
                                            PromptConditioner.kind: PromptConditioner,
                                            WanImageConditioner.kind: WanImageConditioner}


def conditioner_from_config(config: Mapping[str, Any]) -> nn.Module:
    """The conditioner a world model's config describes (fresh weights), any kind."""
    kind = config.get("kind")
    if kind not in CONDITIONERS:
        raise ValueError(f"unknown conditioner kind {kind!r}; available: {sorted(CONDITIONERS)}")
    return CONDITIONERS[kind].from_config(config)
