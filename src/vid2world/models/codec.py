"""Codecs between pixels and the space the UNet works in. One interface: `encode` / `decode` on
[B, C, T, H, W] tensors, pixels in [-1, 1]; `encode` takes an optional `generator` for codecs that sample."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from .vae import AutoencoderKL, VAEConfig

POSTERIORS = ("sample", "mode")


class IdentityCodec(nn.Module):
    """Pixel space: the UNet sees the frames themselves (our small models)."""

    kind = "identity"
    downsample = 1

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.latent_channels = channels

    def encode(self, pixels: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return pixels

    def decode(self, latents: Tensor) -> Tensor:
        return latents

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "channels": self.latent_channels}


class LatentCodec(nn.Module):
    """Stable Diffusion's KL-VAE applied frame by frame: pixels [B, 3, T, H, W] <-> latents [B, 4, T, H/8, W/8].

    Latents are multiplied by `scale_factor` (0.18215 for SD) so the UNet sees roughly unit variance.
    `per_frame=True` runs the VAE on one frame at a time to bound memory; False runs all B*T frames as one batch.
    `posterior`: "sample" draws from the encoder's Gaussian (what LDM training does), "mode" takes its mean.
    The VAE starts with random weights: load a checkpoint's `first_stage_model.` tensors into `codec.vae`.
    """

    kind = "sd-vae"

    def __init__(self, vae: VAEConfig | dict[str, Any] | None = None, scale_factor: float = 0.18215,
                 per_frame: bool = True, posterior: str = "sample") -> None:
        super().__init__()
        if vae is None:
            cfg = VAEConfig.preset("sd")
        elif isinstance(vae, VAEConfig):
            cfg = vae
        elif isinstance(vae, dict):
            cfg = VAEConfig.from_dict(vae)
        else:
            raise TypeError(f"LatentCodec: vae must be a VAEConfig, a dict or None, got {type(vae).__name__}")
        if posterior not in POSTERIORS:
            raise ValueError(f"LatentCodec: posterior must be one of {POSTERIORS}, got {posterior!r}")
        if isinstance(scale_factor, bool) or not isinstance(scale_factor, (int, float)) \
                or not math.isfinite(scale_factor) or scale_factor <= 0:
            raise ValueError(f"LatentCodec: scale_factor must be a positive finite number, got {scale_factor!r}")
        self.vae = AutoencoderKL(cfg)
        self.scale_factor = float(scale_factor)
        self.per_frame = bool(per_frame)
        self.posterior = posterior
        self.latent_channels = cfg.embed_dim
        self.downsample = cfg.downsample

    def encode(self, pixels: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Pixels [B, C, T, H, W] in [-1, 1] -> scaled latents [B, embed_dim, T, H/f, W/f].

        With posterior="sample" the noise for all B*T frames is drawn at once, frames in (b, t) order, from
        `generator` (on its device, then moved), so per-frame and batched runs, and CPU and GPU runs, agree."""
        cfg = self.vae.config
        b, c, t, h, w = self._check(pixels, cfg.in_channels, "pixels")
        f = self.downsample
        if h % f or w % f:
            raise ValueError(f"LatentCodec: frame height and width must be multiples of the VAE's downsample "
                             f"factor {f}, got H={h}, W={w} (pixels {tuple(pixels.shape)})")
        frames = pixels.transpose(1, 2).reshape(b * t, c, h, w)
        noise = None
        if self.posterior == "sample":
            device = generator.device if generator is not None else frames.device
            noise = torch.randn((b * t, cfg.embed_dim, h // f, w // f), generator=generator, device=device,
                                dtype=torch.float32)

        def run(lo: int, hi: int) -> Tensor:
            posterior = self.vae.encode(frames[lo:hi])
            return posterior.mode() if noise is None else posterior.sample(noise=noise[lo:hi])

        z = self._chunked(run, b * t) * self.scale_factor
        return z.reshape(b, t, *z.shape[1:]).transpose(1, 2)

    def decode(self, latents: Tensor) -> Tensor:
        """Scaled latents [B, embed_dim, T, h, w] -> pixels [B, out_ch, T, h*f, w*f] (roughly in [-1, 1])."""
        b, c, t, h, w = self._check(latents, self.latent_channels, "latents")
        z = latents.transpose(1, 2).reshape(b * t, c, h, w) / self.scale_factor
        x = self._chunked(lambda lo, hi: self.vae.decode(z[lo:hi]), b * t)
        return x.reshape(b, t, *x.shape[1:]).transpose(1, 2)

    def _chunked(self, run, n: int) -> Tensor:
        if not self.per_frame:
            return run(0, n)
        return torch.cat([run(i, i + 1) for i in range(n)])

    def _check(self, x: Tensor, channels: int, what: str) -> tuple[int, ...]:
        if x.ndim != 5 or x.shape[1] != channels:
            raise ValueError(f"LatentCodec expects {what} of shape [B, {channels}, T, H, W], got {tuple(x.shape)}")
        return tuple(x.shape)

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "vae": self.vae.config.to_dict(), "scale_factor": self.scale_factor,
                "per_frame": self.per_frame, "posterior": self.posterior}


def _codecs() -> dict[str, type[nn.Module]]:
    from .wan.codec import WanCodec  # Wan's causal 3-D VAE: 4x in time, 8x in space

    return {"identity": IdentityCodec, "sd-vae": LatentCodec, "wan-vae": WanCodec}


CODECS: dict[str, type[nn.Module]] = _codecs()


def codec_from_config(config: dict[str, Any]) -> nn.Module:
    kind = config.get("kind")
    if kind not in CODECS:
        raise ValueError(f"unknown codec kind {kind!r}; available: {sorted(CODECS)}")
    return CODECS[kind](**{k: v for k, v in config.items() if k != "kind"})
