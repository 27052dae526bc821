"""Codecs between pixels and the space the UNet works in. One interface: `encode` / `decode` on
[B, C, T, H, W] tensors, pixels in [-1, 1]. The SD-VAE codec arrives with checkpoint loading."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn


class IdentityCodec(nn.Module):
    """Pixel space: the UNet sees the frames themselves (our small models)."""

    kind = "identity"
    downsample = 1

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.latent_channels = channels

    def encode(self, pixels: Tensor) -> Tensor:
        return pixels

    def decode(self, latents: Tensor) -> Tensor:
        return latents

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "channels": self.latent_channels}


CODECS: dict[str, type[nn.Module]] = {"identity": IdentityCodec}


def codec_from_config(config: dict[str, Any]) -> nn.Module:
    kind = config.get("kind")
    if kind not in CODECS:
        raise ValueError(f"unknown codec kind {kind!r}; available: {sorted(CODECS)}")
    return CODECS[kind](**{k: v for k, v in config.items() if k != "kind"})
