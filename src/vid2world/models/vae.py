"""Stable Diffusion's KL autoencoder: the `first_stage_model` of DynamiCrafter and Vid2World checkpoints.

Module and parameter names follow LDM's `AutoencoderKL` (lvdm `ae_modules.py`), so the `first_stage_model.` part of
a checkpoint loads with `load_state_dict(strict=True)` and no key conversion. Only what inference and fine-tuning
use is here: no losses, no timestep embedding (the LDM encoder/decoder never use one), no linear attention.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import PresetConfig

_POSITIVE_INTS = ("in_channels", "out_ch", "ch", "num_res_blocks", "z_channels", "embed_dim", "resolution",
                  "norm_groups")


@dataclass(frozen=True)
class VAEConfig(PresetConfig):
    """Architecture of `AutoencoderKL`; field names are LDM's `ddconfig` keys plus `embed_dim` and `norm_groups`.
    Presets: `sd` (the VAE of SD 1.x / DynamiCrafter) and `tiny` (the same layout, small enough for tests)."""

    _KIND = "VAE"

    in_channels: int = 3
    out_ch: int = 3
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    z_channels: int = 4
    embed_dim: int = 4
    double_z: bool = True
    attn_resolutions: tuple[int, ...] = ()
    resolution: int = 256
    dropout: float = 0.0
    norm_groups: int = 32

    def __post_init__(self) -> None:
        # JSON gives lists: store tuples so that configs stay hashable and compare equal after a round trip.
        object.__setattr__(self, "ch_mult", tuple(self.ch_mult))
        object.__setattr__(self, "attn_resolutions", tuple(self.attn_resolutions))
        for name in _POSITIVE_INTS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"VAEConfig.{name} must be a positive int, got {value!r}")
        if not self.ch_mult or any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in self.ch_mult):
            raise ValueError(f"VAEConfig.ch_mult must be a non-empty sequence of positive ints, got {self.ch_mult}")
        if not self.double_z:
            # The KL posterior needs a mean and a log-variance per latent channel; LDM asserts the same.
            raise ValueError("VAEConfig.double_z must be True: AutoencoderKL's encoder outputs mean and logvar")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"VAEConfig.dropout must be in [0, 1), got {self.dropout}")
        widths = sorted({self.ch * m for m in self.ch_mult})
        if any(w % self.norm_groups for w in widths):
            raise ValueError(f"VAEConfig: every channel width ch*ch_mult = {widths} must be divisible by "
                             f"norm_groups={self.norm_groups}")

    @property
    def downsample(self) -> int:
        """Spatial factor between pixels and latents (8 for SD)."""
        return 2 ** (len(self.ch_mult) - 1)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["ch_mult"], d["attn_resolutions"] = list(self.ch_mult), list(self.attn_resolutions)
        return d


VAE_PRESETS: dict[str, VAEConfig] = {
    "sd": VAEConfig(),
    # Four levels like SD so latents are 1/8 of the frame, matching the tiny UNet's expectations.
    "tiny": VAEConfig(ch=32, ch_mult=(1, 1, 2, 2), num_res_blocks=1),
}
VAEConfig._PRESETS = VAE_PRESETS


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups, channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, plus a 1x1 `nin_shortcut` when the width changes."""

    def __init__(self, in_ch: int, out_ch: int, dropout: float, groups: int) -> None:
        super().__init__()
        self.norm1 = _norm(in_ch, groups)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.norm2 = _norm(out_ch, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return (x if self.nin_shortcut is None else self.nin_shortcut(x)) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all pixels, with 1x1 convs as projections (LDM's "vanilla")."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.norm = _norm(channels, groups)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(channels, channels, 1) for _ in range(4))

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        y = self.norm(x)
        q, k, v = (proj(y).reshape(b, 1, c, h * w).transpose(-1, -2) for proj in (self.q, self.k, self.v))
        # SDPA's default scale is 1/sqrt(c), as in LDM; its fused kernels avoid the (hw)^2 matrix on GPU.
        out = F.scaled_dot_product_attention(q, k, v).transpose(-1, -2).reshape(b, c, h, w)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    """Stride-2 3x3 conv after padding right and bottom only (LDM's asymmetric padding)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest-neighbour x2, then a 3x3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _Mid(nn.Module):
    def __init__(self, channels: int, cfg: VAEConfig) -> None:
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, cfg.dropout, cfg.norm_groups)
        self.attn_1 = AttnBlock(channels, cfg.norm_groups)
        self.block_2 = ResnetBlock(channels, channels, cfg.dropout, cfg.norm_groups)

    def forward(self, x: Tensor) -> Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class _Level(nn.Module):
    """One resolution level, holding LDM's `block.{j}`, `attn.{j}` and an optional resampler."""

    def __init__(self, widths: list[tuple[int, int]], attn: bool, cfg: VAEConfig, resample: nn.Module | None,
                 resample_name: str) -> None:
        super().__init__()
        self.block = nn.ModuleList(ResnetBlock(i, o, cfg.dropout, cfg.norm_groups) for i, o in widths)
        self.attn = nn.ModuleList(AttnBlock(o, cfg.norm_groups) for _, o in widths) if attn else nn.ModuleList()
        self._resample_name = resample_name
        if resample is not None:
            self.add_module(resample_name, resample)

    def forward(self, x: Tensor) -> Tensor:
        for j, block in enumerate(self.block):
            x = block(x)
            if len(self.attn):
                x = self.attn[j](x)
        resample = getattr(self, self._resample_name, None)
        return x if resample is None else resample(x)


class Encoder(nn.Module):
    """Pixels [N, in_channels, H, W] -> moments [N, 2*z_channels, H/f, W/f]."""

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(cfg.in_channels, cfg.ch, 3, padding=1)
        levels, width, res, last = [], cfg.ch, cfg.resolution, len(cfg.ch_mult) - 1
        for i, mult in enumerate(cfg.ch_mult):
            out = cfg.ch * mult
            widths = [(width if j == 0 else out, out) for j in range(cfg.num_res_blocks)]
            levels.append(_Level(widths, res in cfg.attn_resolutions, cfg,
                                 Downsample(out) if i != last else None, "downsample"))
            width, res = out, (res // 2 if i != last else res)
        self.down = nn.ModuleList(levels)
        self.mid = _Mid(width, cfg)
        self.norm_out = _norm(width, cfg.norm_groups)
        self.conv_out = nn.Conv2d(width, 2 * cfg.z_channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv_in(x)
        for level in self.down:
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(self.mid(h))))


class Decoder(nn.Module):
    """Latents [N, z_channels, h, w] -> pixels [N, out_ch, h*f, w*f]. `up.0` is the full-resolution level."""

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        n = len(cfg.ch_mult)
        width, res = cfg.ch * cfg.ch_mult[-1], cfg.resolution // 2 ** (n - 1)
        self.conv_in = nn.Conv2d(cfg.z_channels, width, 3, padding=1)
        self.mid = _Mid(width, cfg)
        levels: list[nn.Module | None] = [None] * n
        for i in reversed(range(n)):  # built coarse to fine, stored fine to coarse, as LDM does
            out = cfg.ch * cfg.ch_mult[i]
            widths = [(width if j == 0 else out, out) for j in range(cfg.num_res_blocks + 1)]
            levels[i] = _Level(widths, res in cfg.attn_resolutions, cfg, Upsample(out) if i != 0 else None,
                               "upsample")
            width, res = out, (res * 2 if i != 0 else res)
        self.up = nn.ModuleList(levels)
        self.norm_out = _norm(width, cfg.norm_groups)
        self.conv_out = nn.Conv2d(width, cfg.out_ch, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(h)))  # no tanh: LDM's tanh_out is off for SD


class DiagonalGaussian:
    """The encoder's posterior: independent Gaussians per latent element, logvar clamped to [-30, 20]."""

    def __init__(self, moments: Tensor) -> None:
        self.mean, logvar = moments.chunk(2, dim=1)
        self.logvar = logvar.clamp(-30.0, 20.0)
        self.std = torch.exp(0.5 * self.logvar)

    def sample(self, generator: torch.Generator | None = None, noise: Tensor | None = None) -> Tensor:
        """mean + std * noise. Noise is drawn in float32 on the generator's device (CPU unless the caller made a
        GPU generator) and then moved, so a seeded CPU generator gives the same latents on CPU and GPU."""
        if noise is None:
            device = generator.device if generator is not None else self.mean.device
            noise = torch.randn(self.mean.shape, generator=generator, device=device, dtype=torch.float32)
        if noise.shape != self.mean.shape:
            raise ValueError(f"noise has shape {tuple(noise.shape)}, expected {tuple(self.mean.shape)}")
        return self.mean + self.std * noise.to(self.mean)

    def mode(self) -> Tensor:
        return self.mean


class AutoencoderKL(nn.Module):
    """LDM's KL autoencoder: `encode(x)` -> `DiagonalGaussian`, `decode(z)` -> pixels. Pixels are [N, C, H, W] in
    [-1, 1]; latents are unscaled (multiply by the scale factor, 0.18215 for SD, before the UNet sees them)."""

    def __init__(self, config: VAEConfig | None = None) -> None:
        super().__init__()
        self.config = config or VAEConfig()
        self.encoder = Encoder(self.config)
        self.decoder = Decoder(self.config)
        self.quant_conv = nn.Conv2d(2 * self.config.z_channels, 2 * self.config.embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(self.config.embed_dim, self.config.z_channels, 1)

    def encode(self, x: Tensor) -> DiagonalGaussian:
        _check_images(x, self.config.in_channels, "pixels")
        return DiagonalGaussian(self.quant_conv(self.encoder(x)))

    def decode(self, z: Tensor) -> Tensor:
        _check_images(z, self.config.embed_dim, "latents")
        return self.decoder(self.post_quant_conv(z))


def _check_images(x: Tensor, channels: int, what: str) -> None:
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"AutoencoderKL expects {what} of shape [N, {channels}, H, W], got {tuple(x.shape)}")
