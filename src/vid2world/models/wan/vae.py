"""Wan 2.1's causal video VAE (diffusers' `AutoencoderKLWan`): config, model, encode and decode streams.

State-dict keys equal diffusers' for the same config. Time is compressed 4x causally: latent frame 0 is
video frame 0 alone, each later latent frame covers the next 4 video frames, so clips have 1 + 4k frames.
Latents are raw here; Wan's pipelines give the transformer `(z - latents_mean) / latents_std` (`normalize`).
Weight files (a diffusers folder, Wan's `Wan2.1_VAE.pth`) are read and written by `wan.codec`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from ..config import PresetConfig
from ..vae import DiagonalGaussian
from .vae_blocks import CausalConv3d, FeatureCache, WanDecoder, WanEncoder

WAN21_LATENTS_MEAN = (-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
                      0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921)
WAN21_LATENTS_STD = (2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
                     3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160)
_POSITIVE_INTS = ("base_dim", "z_dim", "num_res_blocks", "in_channels", "out_channels")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class WanVAEConfig(PresetConfig):
    """diffusers 0.42's `AutoencoderKLWan` config, field for field (its misspelt `temperal_downsample` too);
    the defaults are Wan 2.1's VAE. Wan 2.2's parts (`is_residual`, `patch_size`) and attention outside the
    middle blocks (`attn_scales`, unused by Wan 2.1) are refused rather than half supported."""

    _KIND = "Wan VAE"

    base_dim: int = 96
    decoder_base_dim: int | None = None
    z_dim: int = 16
    dim_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    attn_scales: tuple[float, ...] = ()
    temperal_downsample: tuple[bool, ...] = (False, True, True)
    dropout: float = 0.0
    latents_mean: tuple[float, ...] = WAN21_LATENTS_MEAN
    latents_std: tuple[float, ...] = WAN21_LATENTS_STD
    is_residual: bool = False
    in_channels: int = 3
    out_channels: int = 3
    patch_size: int | None = None
    scale_factor_temporal: int | None = 4
    scale_factor_spatial: int | None = 8

    def __post_init__(self) -> None:
        for name in ("dim_mult", "attn_scales", "temperal_downsample", "latents_mean", "latents_std"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)):
                raise ValueError(f"WanVAEConfig.{name} must be a list, got {value!r}")
            object.__setattr__(self, name, tuple(value))  # JSON gives lists; tuples keep configs hashable
        _check_architecture(self)
        _check_latent_statistics(self)
        for name, actual in (("scale_factor_temporal", self.temporal_compression),
                             ("scale_factor_spatial", self.spatial_compression)):
            if getattr(self, name) not in (None, actual):
                raise ValueError(f"WanVAEConfig.{name}={getattr(self, name)!r} disagrees with the "
                                 f"architecture, which compresses by {actual}; set it to {actual} or null")

    @property
    def temporal_compression(self) -> int:
        return 2 ** sum(self.temperal_downsample)

    @property
    def spatial_compression(self) -> int:
        return 2 ** (len(self.dim_mult) - 1)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_diffusers(cls, d: Mapping[str, Any], source: str = "config") -> "WanVAEConfig":
        """A diffusers `config.json`: `_class_name` must be AutoencoderKLWan; other `_` keys are metadata."""
        class_name = d.get("_class_name", "AutoencoderKLWan")
        if class_name != "AutoencoderKLWan":
            raise ValueError(f"{source}: _class_name is {class_name!r}, expected 'AutoencoderKLWan'")
        return cls.from_dict({k: v for k, v in d.items() if not k.startswith("_")})


def _check_architecture(cfg: WanVAEConfig) -> None:
    for name in _POSITIVE_INTS:
        if not _is_int(getattr(cfg, name)) or getattr(cfg, name) < 1:
            raise ValueError(f"WanVAEConfig.{name} must be a positive int, got {getattr(cfg, name)!r}")
    if cfg.decoder_base_dim is not None and not (_is_int(cfg.decoder_base_dim) and cfg.decoder_base_dim > 0):
        raise ValueError(f"WanVAEConfig.decoder_base_dim must be null or a positive int, "
                         f"got {cfg.decoder_base_dim!r}")
    if not cfg.dim_mult or not all(_is_int(m) and m >= 1 for m in cfg.dim_mult):
        raise ValueError(f"WanVAEConfig.dim_mult must be a non-empty list of positive ints, "
                         f"got {cfg.dim_mult}")
    levels = len(cfg.dim_mult) - 1
    flags = cfg.temperal_downsample
    if len(flags) != levels or not all(isinstance(f, bool) for f in flags):
        raise ValueError(f"WanVAEConfig.temperal_downsample must be {levels} booleans (one per downsampling "
                         f"level of dim_mult {list(cfg.dim_mult)}), got {cfg.temperal_downsample}")
    if not _is_number(cfg.dropout) or not 0.0 <= cfg.dropout < 1.0:
        raise ValueError(f"WanVAEConfig.dropout must be in [0, 1), got {cfg.dropout!r}")
    if cfg.attn_scales:
        raise ValueError(f"WanVAEConfig.attn_scales must be empty (Wan 2.1 has none, and diffusers' decoder "
                         f"ignores them while its encoder uses them), got {list(cfg.attn_scales)}")
    if cfg.is_residual or cfg.patch_size is not None:
        raise ValueError(f"WanVAEConfig: is_residual={cfg.is_residual!r}, patch_size={cfg.patch_size!r} "
                         f"describe Wan 2.2's VAE; only Wan 2.1's (false, null) is implemented")


def _check_latent_statistics(cfg: WanVAEConfig) -> None:
    for name in ("latents_mean", "latents_std"):
        values = getattr(cfg, name)
        if len(values) != cfg.z_dim or not all(_is_number(v) and math.isfinite(v) for v in values):
            raise ValueError(f"WanVAEConfig.{name} must be z_dim={cfg.z_dim} finite numbers, got {values}")
    if min(cfg.latents_std) <= 0:
        raise ValueError(f"WanVAEConfig.latents_std must be positive, got {cfg.latents_std}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


WAN_VAE_PRESETS: dict[str, WanVAEConfig] = {
    "wan2.1": WanVAEConfig(),
    # the same depth (8x space, 4x time, 16 latent channels) at a width that runs in milliseconds
    "tiny": WanVAEConfig(base_dim=4, dim_mult=(1, 2, 2, 2), num_res_blocks=1),
}
WanVAEConfig._PRESETS = WAN_VAE_PRESETS


class WanVAE(nn.Module):
    """`encode(pixels)` -> `DiagonalGaussian` over raw latents; `decode(latents)` -> pixels in [-1, 1]
    (clamped, as diffusers does). Pixels [B, 3, 1 + 4k, H, W] in [-1, 1], H and W multiples of 8; latents
    [B, 16, 1 + k, H/8, W/8].

    `chunked=False` runs the whole clip through each layer at once (fastest); `chunked=True` runs diffusers'
    chunks (1 frame, then 4 per step to encode; one latent frame per step to decode) to bound memory. Both
    give the same numbers up to float rounding."""

    def __init__(self, config: WanVAEConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or WanVAEConfig()
        shared = dict(z_dim=cfg.z_dim, dim_mult=cfg.dim_mult, num_res_blocks=cfg.num_res_blocks,
                      dropout=cfg.dropout)
        self.encoder = WanEncoder(cfg.in_channels, cfg.base_dim, temporal_downsample=cfg.temperal_downsample,
                                  **shared)
        self.quant_conv = CausalConv3d(2 * cfg.z_dim, 2 * cfg.z_dim, 1)
        self.post_quant_conv = CausalConv3d(cfg.z_dim, cfg.z_dim, 1)
        self.decoder = WanDecoder(cfg.out_channels, cfg.decoder_base_dim or cfg.base_dim,
                                  temporal_upsample=cfg.temperal_downsample[::-1], **shared)

    @property
    def temporal_compression(self) -> int:
        return self.config.temporal_compression

    @property
    def spatial_compression(self) -> int:
        return self.config.spatial_compression

    def encode(self, pixels: Tensor, chunked: bool = False) -> DiagonalGaussian:
        self.check_video(pixels, "pixels", first_chunk=True)
        if not chunked:
            return DiagonalGaussian(self.quant_conv(self.encoder(pixels)))
        stream, t = self.encode_stream(), pixels.shape[2]
        starts = [0, *range(1, t, self.temporal_compression)]
        moments = [stream.moments(pixels[:, :, lo:hi]) for lo, hi in zip(starts, starts[1:] + [t])]
        return DiagonalGaussian(torch.cat(moments, dim=2))

    def decode(self, latents: Tensor, chunked: bool = False) -> Tensor:
        self.check_video(latents, "latents")
        if not chunked:
            return self.decoder(self.post_quant_conv(latents)).clamp(-1.0, 1.0)
        stream = self.decode_stream()
        return torch.cat([stream.decode(latents[:, :, i:i + 1]) for i in range(latents.shape[2])], dim=2)

    def encode_stream(self) -> "WanEncodeStream":
        return WanEncodeStream(self)

    def decode_stream(self, normalized: bool = False) -> "WanDecodeStream":
        return WanDecodeStream(self, normalized)

    def normalize(self, latents: Tensor) -> Tensor:
        """Raw latents -> what Wan's transformer sees: (z - latents_mean) / latents_std per channel."""
        mean, std = self._statistics(latents)
        return (latents - mean) / std

    def denormalize(self, latents: Tensor) -> Tensor:
        mean, std = self._statistics(latents)
        return latents * std + mean

    def _statistics(self, like: Tensor) -> tuple[Tensor, Tensor]:
        shape, cfg = (1, self.config.z_dim, 1, 1, 1), self.config
        mean, std = (torch.tensor(v, dtype=like.dtype, device=like.device).view(shape)
                     for v in (cfg.latents_mean, cfg.latents_std))
        return mean, std

    def check_video(self, x: Tensor, what: str, first_chunk: bool | None = None) -> None:
        """[B, C, T, H, W] with the right C; pixels: H, W multiples of 8; with `first_chunk` given,
        T = 1 + 4k (a clip's first chunk) or 4k (a later one)."""
        channels = self.config.in_channels if what == "pixels" else self.config.z_dim
        if not isinstance(x, Tensor) or x.ndim != 5 or x.shape[1] != channels or min(x.shape) < 1:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"Wan VAE {what}: expected a tensor [B, {channels}, T, H, W], got {shape}")
        f, tc, t = self.spatial_compression, self.temporal_compression, x.shape[2]
        if what == "pixels" and (x.shape[3] % f or x.shape[4] % f):
            raise ValueError(f"Wan VAE pixels: H and W must be multiples of {f}, got {tuple(x.shape)}")
        if first_chunk is not None and (t - int(first_chunk)) % tc:
            expected, which = (f"1 + {tc}k", "a first") if first_chunk else (f"{tc}k", "a later")
            raise ValueError(f"Wan VAE {what}: T={t} frames, expected {expected} in {which} chunk "
                             f"(video frame 0 makes latent frame 0, each later {tc} frames one more)")


class _Stream:
    """One batch of clips in flight: its cache, the frames fed so far, and the (B, H, W) it must keep."""

    def __init__(self, vae: WanVAE) -> None:
        self.vae, self.cache, self.frames_in = vae, FeatureCache(), 0
        self._shape: tuple[int, int, int] | None = None

    def _admit(self, x: Tensor) -> None:
        shape = (x.shape[0], x.shape[3], x.shape[4])
        if self._shape is not None and shape != self._shape:
            raise ValueError(f"{type(self).__name__}: chunk {tuple(x.shape)} has (B, H, W) = {shape}, but "
                             f"this stream holds {self._shape}; start a new stream for another batch")
        self._shape = shape


class WanEncodeStream(_Stream):
    """Encodes clips chunk by chunk (first 1 + 4k frames, then 4k each); the chunks' posteriors, put
    together in time, equal `WanVAE.encode` of the whole clip."""

    def encode(self, pixels: Tensor) -> DiagonalGaussian:
        return DiagonalGaussian(self.moments(pixels))

    def moments(self, pixels: Tensor) -> Tensor:
        self.vae.check_video(pixels, "pixels", first_chunk=self.frames_in == 0)
        self._admit(pixels)
        out = self.vae.quant_conv(self.vae.encoder(pixels, self.cache))
        self.frames_in += pixels.shape[2]
        return out


class WanDecodeStream(_Stream):
    """Decodes a latent clip as it grows, each latent frame once: latent frame 0 gives one video frame,
    each later one 4. The pieces, put together in time, equal `WanVAE.decode` of the whole clip.
    `normalized=True` takes latents as Wan's transformer sees them (see `WanVAE.normalize`).
    A stream serves one batch from its first frame on: a row cannot restart alone (its frame 0 would decode
    to 1 frame while the other rows decode to 4), so a new episode needs a new stream."""

    def __init__(self, vae: WanVAE, normalized: bool = False) -> None:
        super().__init__(vae)
        self.normalized = bool(normalized)

    @property
    def frames_out(self) -> int:
        """Video frames decoded so far: 1 + 4 (latent frames - 1)."""
        return 0 if self.frames_in == 0 else 1 + self.vae.temporal_compression * (self.frames_in - 1)

    def decode(self, latents: Tensor) -> Tensor:
        self.vae.check_video(latents, "latents")
        self._admit(latents)
        z = self.vae.denormalize(latents) if self.normalized else latents
        out = self.vae.decoder(self.vae.post_quant_conv(z), self.cache).clamp(-1.0, 1.0)
        self.frames_in += latents.shape[2]
        return out
