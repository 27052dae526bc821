"""DynamiCrafter's image-token Resampler (checkpoint prefix `image_proj_model.`), with its parameter names.

A Perceiver: `num_queries * video_length` learned latents attend to the CLIP image tokens (and to themselves), giving
`num_queries` image-context tokens per frame for the UNet's image cross-attention.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .config import PresetConfig


@dataclass(frozen=True)
class ResamplerConfig(PresetConfig):
    """Constructor arguments of lvdm's `Resampler`; defaults are DynamiCrafter's `image_proj_stage_config`.
    Presets: `dynamicrafter` (every DynamiCrafter / Vid2World config) and `tiny` (for tests).

    `video_length=None` is upstream's per-image variant (`num_queries` latents in all).
    """

    _KIND = "Resampler"

    dim: int = 1024
    depth: int = 4
    dim_head: int = 64
    heads: int = 12
    num_queries: int = 16
    embedding_dim: int = 1280
    output_dim: int = 1024
    ff_mult: int = 4
    video_length: int | None = 16

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not (value is None and field.name == "video_length") and int(value) < 1:
                raise ValueError(f"ResamplerConfig.{field.name} must be >= 1, got {value}")

    @property
    def num_latents(self) -> int:
        return self.num_queries * (self.video_length or 1)


RESAMPLER_PRESETS = {
    "dynamicrafter": ResamplerConfig(),
    "tiny": ResamplerConfig(dim=32, depth=1, dim_head=8, heads=2, num_queries=16, embedding_dim=64, output_dim=32,
                            ff_mult=2, video_length=6),
}
ResamplerConfig._PRESETS = RESAMPLER_PRESETS


class PerceiverAttention(nn.Module):
    """Latents attend to concat(image features, latents); keys `norm1`, `norm2`, `to_q`, `to_kv`, `to_out`."""

    def __init__(self, dim: int, dim_head: int, heads: int) -> None:
        super().__init__()
        inner = dim_head * heads
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)  # image features
        self.norm2 = nn.LayerNorm(dim)  # latents
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, x: Tensor, latents: Tensor) -> Tensor:
        x, latents = self.norm1(x), self.norm2(latents)
        b, n, _ = latents.shape
        k, v = self.to_kv(torch.cat([x, latents], dim=1)).chunk(2, dim=-1)
        q, k, v = (t.reshape(b, t.shape[1], self.heads, -1).transpose(1, 2) for t in (self.to_q(latents), k, v))
        # scale q and k by dim_head^-1/4 each (upstream does, for fp16 range); softmax in float32 as upstream
        scale = q.shape[-1] ** -0.25
        weight = torch.softmax(((q * scale) @ (k * scale).transpose(-2, -1)).float(), dim=-1).to(q.dtype)
        return self.to_out((weight @ v).transpose(1, 2).reshape(b, n, -1))


def _feed_forward(dim: int, mult: int) -> nn.Sequential:
    # a plain Sequential so the keys are `.0` (LayerNorm), `.1` and `.3` (the Linears), as upstream
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim * mult, bias=False), nn.GELU(),
                         nn.Linear(dim * mult, dim, bias=False))


class Resampler(nn.Module):
    """CLIP image tokens [B, N, embedding_dim] -> context tokens [B, num_queries * video_length, output_dim]."""

    def __init__(self, config: ResamplerConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or ResamplerConfig()
        self.latents = nn.Parameter(torch.randn(1, c.num_latents, c.dim) / c.dim ** 0.5)
        self.proj_in = nn.Linear(c.embedding_dim, c.dim)
        self.proj_out = nn.Linear(c.dim, c.output_dim)
        self.norm_out = nn.LayerNorm(c.output_dim)
        self.layers = nn.ModuleList(
            nn.ModuleList([PerceiverAttention(c.dim, c.dim_head, c.heads), _feed_forward(c.dim, c.ff_mult)])
            for _ in range(c.depth))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 3 or x.shape[-1] != self.config.embedding_dim:
            raise ValueError(f"expected [B, N, {self.config.embedding_dim}] image tokens, got {list(x.shape)}")
        latents = self.latents.expand(x.shape[0], -1, -1)
        x = self.proj_in(x)
        for attn, ff in self.layers:
            latents = latents + attn(x, latents)
            latents = latents + ff(latents)
        return self.norm_out(self.proj_out(latents))


__all__ = ["ResamplerConfig", "Resampler", "PerceiverAttention", "RESAMPLER_PRESETS"]
