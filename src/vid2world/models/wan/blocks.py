"""The Wan DiT's block and its condition embedders, with diffusers' parameter names.

Modulation is per latent frame: the embedders produce one time embedding per frame ([B, F, dim]) and one set
of six shift/scale/gate vectors per frame ([B, F, 6, dim]), broadcast to that frame's S tokens (tokens are
kept as [B, F, S, dim]), never expanded to one per token. Norms and the gated residuals run in at least
float32, as diffusers' FP32LayerNorm and `.float()` residuals do.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ActionSpace
from ..embeddings import timestep_embedding
from ..stream import CacheView
from ..temporal import at_least_float32
from .attention import CrossAttention, FrameRotations, SelfAttention


def wide_layer_norm(x: Tensor, norm: nn.LayerNorm) -> Tensor:
    """LayerNorm computed in at least float32 (parameters too), returned in that width."""
    wide = at_least_float32(x)
    weight = None if norm.weight is None else norm.weight.to(wide.dtype)
    bias = None if norm.bias is None else norm.bias.to(wide.dtype)
    return F.layer_norm(wide, norm.normalized_shape, weight, bias, norm.eps)


class _Projection(nn.Module):
    """A linear layer under the name `proj` (diffusers' GELU activation module holds its input projection)."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


class FeedForward(nn.Module):
    """Linear, GELU, Linear under diffusers' keys net.0.proj and net.2."""

    def __init__(self, dim_in: int, hidden: int, dim_out: int, approximate: str) -> None:
        super().__init__()
        self.net = nn.Sequential(_Projection(dim_in, hidden), nn.Dropout(0.0), nn.Linear(hidden, dim_out))
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return self.net[2](F.gelu(self.net[0](x), approximate=self.approximate))


class TimeEmbedder(nn.Module):
    def __init__(self, freq_dim: int, dim: int) -> None:
        super().__init__()
        self.linear_1, self.linear_2 = nn.Linear(freq_dim, dim), nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear_2(F.silu(self.linear_1(x)))


class TextEmbedder(nn.Module):
    def __init__(self, text_dim: int, dim: int) -> None:
        super().__init__()
        self.linear_1, self.linear_2 = nn.Linear(text_dim, dim), nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear_2(F.gelu(self.linear_1(x), approximate="tanh"))


class ImageEmbedder(nn.Module):
    """CLIP image tokens -> the model width: LayerNorm, MLP (exact GELU), LayerNorm; first-last-frame models
    add a position embedding over the two images' tokens, given as one batch row per image (diffusers'
    reshape)."""

    def __init__(self, image_dim: int, dim: int, pos_embed_seq_len: int | None) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(image_dim)
        self.ff = FeedForward(image_dim, image_dim, dim, "none")
        self.norm2 = nn.LayerNorm(dim)
        if pos_embed_seq_len is not None:
            self.pos_embed = nn.Parameter(torch.zeros(1, pos_embed_seq_len, image_dim))

    def forward(self, image: Tensor) -> Tensor:
        if hasattr(self, "pos_embed"):
            image = image.reshape(-1, 2 * image.shape[1], image.shape[2]) + self.pos_embed
        h = wide_layer_norm(image, self.norm1).to(image.dtype)
        h = self.ff(h)
        return wide_layer_norm(h, self.norm2).to(h.dtype)


def action_embedder(space: ActionSpace, dim: int) -> nn.Sequential:
    """One latent frame's action group [.., A] -> a vector of the time embedding's width: Linear, SiLU, Linear
    with the last layer zeroed, so a model given this embedder computes what it computed without it. A
    multi-hot group's first Linear is a table whose active columns are summed (plus a bias)."""
    mlp = nn.Sequential(nn.Linear(space.dim, dim), nn.SiLU(), nn.Linear(dim, dim))
    nn.init.zeros_(mlp[2].weight)
    nn.init.zeros_(mlp[2].bias)
    return mlp


class ConditionEmbedder(nn.Module):
    """diffusers' `WanTimeTextImageEmbedding` per latent frame, plus the action path: the action embedding
    (times the action mask) is added to the frame's time embedding before `time_proj`, so every block's
    modulation and the output head see it."""

    def __init__(self, dim: int, freq_dim: int, text_dim: int, image_dim: int | None,
                 pos_embed_seq_len: int | None, action_space: ActionSpace | None) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.time_embedder = TimeEmbedder(freq_dim, dim)
        self.time_proj = nn.Linear(dim, 6 * dim)
        self.text_embedder = TextEmbedder(text_dim, dim)
        if image_dim is not None:
            self.image_embedder = ImageEmbedder(image_dim, dim, pos_embed_seq_len)
        self.action_space = action_space
        if action_space is not None:
            self.action_embedder = action_embedder(action_space, dim)

    def frame_embeddings(self, levels: Tensor, dtype: torch.dtype, actions: Tensor | None,
                         action_mask: Tensor | None) -> tuple[Tensor, Tensor]:
        """levels [B, F] -> (time embedding [B, F, dim], modulation [B, F, 6, dim]), both in `dtype`."""
        weight = self.time_embedder.linear_1.weight
        temb = self.time_embedder(timestep_embedding(levels, self.freq_dim).to(weight.dtype))
        if actions is not None:
            scaled = self.action_space.scaled(actions)
            embedded = self.action_embedder(scaled.to(self.action_embedder[0].weight.dtype))
            if action_mask is not None:
                embedded = embedded * action_mask.to(embedded.dtype)[..., None]
            temb = temb + embedded.to(temb.dtype)
        temb = temb.to(dtype)
        return temb, self.time_proj(F.silu(temb)).unflatten(-1, (6, -1))


class WanBlock(nn.Module):
    """Self-attention (RoPE; frame-causal when asked), cross-attention to text (and image), feed-forward; the
    first and last modulated by the frame's shift/scale/gate from `scale_shift_table` + the modulation
    embedding."""

    def __init__(self, dim: int, ffn_dim: int, heads: int, cross_attn_norm: bool, eps: float,
                 image: bool) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps, elementwise_affine=False)
        self.attn1 = SelfAttention(dim, heads, eps)
        self.attn2 = CrossAttention(dim, heads, eps, image)
        self.norm2 = nn.LayerNorm(dim, eps) if cross_attn_norm else nn.Identity()
        self.ffn = FeedForward(dim, ffn_dim, dim, "tanh")
        self.norm3 = nn.LayerNorm(dim, eps, elementwise_affine=False)
        self.scale_shift_table = nn.Parameter(torch.randn(1, 6, dim) / dim ** 0.5)

    def forward(self, x: Tensor, modulation: Tensor, text: Tensor | None, image: Tensor | None,
                rotations: FrameRotations, causal: bool, stream: CacheView | None = None) -> Tensor:
        """x [B, F, S, dim]; modulation [B, F, 6, dim]."""
        mod = (self.scale_shift_table + at_least_float32(modulation))[:, :, :, None]  # [B, F, 6, 1, dim]
        shift, scale, gate, c_shift, c_scale, c_gate = mod.unbind(2)
        normed = (wide_layer_norm(x, self.norm1) * (1 + scale) + shift).to(x.dtype)
        x = (at_least_float32(x) + self.attn1(normed, rotations, causal, stream) * gate).to(x.dtype)
        b, f, s, dim = x.shape
        normed = x if isinstance(self.norm2, nn.Identity) else wide_layer_norm(x, self.norm2).to(x.dtype)
        crossed = self.attn2(normed.reshape(b, f * s, dim), text, image)
        if crossed is not None:
            x = x + crossed.reshape(b, f, s, dim)
        normed = (wide_layer_norm(x, self.norm3) * (1 + c_scale) + c_shift).to(x.dtype)
        ff = self.ffn(normed)
        return (at_least_float32(x) + at_least_float32(ff) * c_gate).to(x.dtype)
