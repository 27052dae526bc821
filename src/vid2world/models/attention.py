"""Attention layers of the DynamiCrafter UNet, on `F.scaled_dot_product_attention`, with lvdm parameter names.

- `SpatialTransformer`: per frame, over the H*W tokens; self-attention then cross-attention to text tokens plus
  (optionally) a separate image-token branch whose output is added (DynamiCrafter's dual cross-attention).
- `TemporalTransformer`: per spatial location, over the T frames; both of its attentions are self-attention.
  A causal one masks key frames after the query frame; its input GroupNorm spans time (`TemporalGroupNorm`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .state import FrameContext
from .stream import CacheView
from .temporal import TemporalGroupNorm, at_least_float32


class Attention(nn.Module):
    """Multi-head attention (lvdm `CrossAttention`): keys `to_q`, `to_k`, `to_v`, `to_out.0`, and for image
    cross-attention `to_k_ip`, `to_v_ip` (+ `alpha` when its scale is learnable)."""

    def __init__(self, query_dim: int, context_dim: int | None, heads: int, dim_head: int,
                 image_cross_attention: bool = False, scale_learnable: bool = False, text_len: int = 77) -> None:
        super().__init__()
        inner = heads * dim_head
        kv_dim = context_dim or query_dim
        self.heads = heads
        self.text_len = text_len
        self.cache_slot = -1  # numbered by VideoUNet: where this layer's keys/values live in a StreamCache
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(kv_dim, inner, bias=False)
        self.to_v = nn.Linear(kv_dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, query_dim), nn.Dropout(0.0))
        self.image_cross_attention = image_cross_attention
        if image_cross_attention:
            self.to_k_ip = nn.Linear(kv_dim, inner, bias=False)
            self.to_v_ip = nn.Linear(kv_dim, inner, bias=False)
            if scale_learnable:
                self.alpha = nn.Parameter(torch.tensor(0.0))
        self.scale_learnable = image_cross_attention and scale_learnable

    def _heads(self, t: Tensor) -> Tensor:
        b, n, _ = t.shape
        return t.reshape(b, n, self.heads, -1).transpose(1, 2)

    @staticmethod
    def _merge(out: Tensor) -> Tensor:
        return out.transpose(1, 2).flatten(2)

    def forward(self, x: Tensor, context: Tensor | None = None, causal: bool = False,
                stream: CacheView | None = None) -> Tensor:
        q = self._heads(self.to_q(x))
        if context is None:  # self-attention
            k, v = self._heads(self.to_k(x)), self._heads(self.to_v(x))
            if stream is not None:
                return self.to_out(self._merge(self._attend_stream(q, k, v, causal, stream)))
            return self.to_out(self._merge(self_attention(q, k, v, causal)))
        text, image = context[:, : self.text_len], context[:, self.text_len:]
        out = F.scaled_dot_product_attention(q, self._heads(self.to_k(text)), self._heads(self.to_v(text)))
        if self.image_cross_attention and image.shape[1] > 0:
            out_ip = F.scaled_dot_product_attention(q, self._heads(self.to_k_ip(image)), self._heads(self.to_v_ip(image)))
            if self.scale_learnable:
                out_ip = out_ip * (torch.tanh(self.alpha) + 1)
            out = out + out_ip
        return self.to_out(self._merge(out))

    def _attend_stream(self, q: Tensor, k: Tensor, v: Tensor, causal: bool, stream: CacheView) -> Tensor:
        """New frames attend to the cached keys/values of committed frames plus (causally) to each other."""
        if not causal:
            raise RuntimeError("a non-causal temporal attention cannot run on a stream")
        rows, new = len(stream.row_list()), q.shape[2]
        spatial = q.shape[0] // (rows * stream.repeat)  # attention runs per spatial location: batch = rows x H x W
        has_past = stream.has_past() and stream.cache.slots[self.cache_slot] is not None
        if has_past and new == 1:  # a denoising step, or one frame committed (its keys join the ring after)
            out = self._one_query_over_cache(q, k, v, stream)
            if stream.commit and stream.capacity:
                self._commit(stream, k, v, rows, spatial)
            return out
        mask = None
        keys, values = k, v
        if has_past:
            past_k, past_v = (t.flatten(0, 1) for t in stream.read(self.cache_slot))  # [(B H W), heads, cap, d]
            keys, values = torch.cat([past_k, k], dim=2), torch.cat([past_v, v], dim=2)
            mask = self._past_mask(stream, new, q.device).repeat_interleave(spatial, dim=0)
        elif new > 1:
            mask = torch.ones(new, new, dtype=torch.bool, device=q.device).tril()
        if stream.commit and stream.capacity:
            self._commit(stream, k, v, rows, spatial)
        return F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)

    @staticmethod
    def _past_mask(stream: CacheView, new: int, device: torch.device) -> Tensor:
        """[call batch, 1, new, capacity + new]: each new frame sees the valid slots and the new frames up to itself."""
        cap, rows = stream.capacity, len(stream.row_list())
        causal = torch.ones(new, cap + new, dtype=torch.bool, device=device).tril(cap)[None].repeat(rows, 1, 1)
        valid = stream.valid(device)
        if valid is not None:
            causal[:, :, :cap] &= valid[:, None, :]
        return causal.repeat(stream.repeat, 1, 1)[:, None]

    def _commit(self, stream: CacheView, k: Tensor, v: Tensor, rows: int, spatial: int) -> None:
        """Write the new frames' keys/values into each row's ring of `capacity` frames."""
        heads, new, d = k.shape[1:]
        shape = (spatial, heads, stream.capacity, d)
        ring_k, ring_v = stream.ensure(self.cache_slot, [shape, shape], k)
        index = torch.tensor(stream.row_list(), device=k.device)
        k6, v6 = (t.reshape(rows, spatial, heads, new, d) for t in (k, v))
        for j in range(max(0, new - stream.capacity), new):
            position = stream.ring_positions(j).to(k.device)
            ring_k[index, :, :, position] = k6[:, :, :, j]
            ring_v[index, :, :, position] = v6[:, :, :, j]

    def _one_query_over_cache(self, q: Tensor, k: Tensor, v: Tensor, stream: CacheView) -> Tensor:
        """Softmax attention of one new frame over the cached keys plus its own key, without copying the cache
        (the hot path of a cached rollout: every denoising step of every frame). A query batch that repeats the
        cache's rows `repeat` times (guidance) becomes `repeat` query rows per location and head, so the cache is
        read once and never broadcast; slots a row has not filled are masked."""
        past_k, past_v = stream.stored(self.cache_slot)  # [rows, H*W, heads, cap, d]
        fills, valid = stream.fills(), None
        if min(fills) == max(fills) < stream.capacity:  # no ring has wrapped, all hold frames 0..f-1: the prefix
            past_k, past_v = past_k[..., : fills[0], :], past_v[..., : fills[0], :]
        else:
            valid = stream.valid(q.device)
        rows, spatial, heads, n, d = past_k.shape
        past_k, past_v = past_k.flatten(0, 1), past_v.flatten(0, 1)  # [rows*H*W, heads, n, d]: views
        q4, k4, v4 = (t.reshape(stream.repeat, rows * spatial, heads, d).permute(1, 2, 0, 3) for t in (q, k, v))
        scores = torch.cat([q4 @ past_k.transpose(-1, -2), (q4 * k4).sum(-1, keepdim=True)], dim=-1) * d ** -0.5
        if valid is not None:
            seen = torch.cat([valid, valid.new_ones(valid.shape[0], 1)], dim=1).repeat_interleave(spatial, dim=0)
            scores = scores.masked_fill(~seen[:, None, None, :], float("-inf"))
        weights = _softmax_last(scores)
        out = weights[..., :n] @ past_v + weights[..., n:] * v4  # [rows*H*W, heads, repeat, d]
        return out.permute(2, 0, 1, 3).reshape(q.shape)


def self_attention(q: Tensor, k: Tensor, v: Tensor, causal: bool = False) -> Tensor:
    """Softmax attention of [B, heads, L, d] queries over keys/values of the same length (`causal`: each query sees
    itself and the ones before it). `F.scaled_dot_product_attention`, except where autograd records on CPU: there
    its fused kernel's backward is 2-4x slower than two batched matmuls and a softmax for the short sequences of
    these UNets (64 tokens per frame, 8 frames per location), which made it a fifth of a training step. In bfloat16
    the scores are rounded to bfloat16 as eager attention does: outputs err by about two bfloat16 roundings where
    the fused kernel errs by one (scores in float32 would halve that at 1.5x the time)."""
    if not (q.requires_grad and torch.is_grad_enabled() and q.device.type == "cpu"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    scores = q @ (k.transpose(-1, -2) * q.shape[-1] ** -0.5)
    if causal:
        n = q.shape[-2]
        scores = scores.masked_fill(~torch.ones(n, n, dtype=torch.bool, device=q.device).tril(), float("-inf"))
    return scores.softmax(-1) @ v  # the CPU kernel sums half precision in float32 and rounds once


def _softmax_last(scores: Tensor) -> Tensor:
    """Softmax over a short last dimension (a few cached frames), written out: `Tensor.softmax` over a last
    dimension of ~8 is several times slower on CPU than these four elementwise ops."""
    wide = at_least_float32(scores)
    e = (wide - wide.amax(dim=-1, keepdim=True)).exp()
    return (e / e.sum(dim=-1, keepdim=True)).to(scores.dtype)


class GEGLU(nn.Module):
    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: Tensor) -> Tensor:
        # two matmuls over the halves of `proj` rather than one and a chunk: the halves come out contiguous, and
        # the elementwise product and its backward run several times faster on them
        half = self.proj.out_features // 2
        weight, bias = self.proj.weight, self.proj.bias
        value = F.linear(x, weight[:half], None if bias is None else bias[:half])
        gate = F.linear(x, weight[half:], None if bias is None else bias[half:])
        return value * F.gelu(gate)


class FeedForward(nn.Module):
    """Gated feed-forward (keys `net.0.proj`, `net.2`), width multiplier 4."""

    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(GEGLU(dim, dim * mult), nn.Dropout(0.0), nn.Linear(dim * mult, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class TransformerBlock(nn.Module):
    """lvdm `BasicTransformerBlock`: attn1 (self), attn2 (cross, or self when no context), gated FF; pre-norm."""

    def __init__(self, dim: int, heads: int, dim_head: int, context_dim: int | None,
                 image_cross_attention: bool = False, scale_learnable: bool = False, text_len: int = 77) -> None:
        super().__init__()
        self.attn1 = Attention(dim, None, heads, dim_head)
        self.ff = FeedForward(dim)
        self.attn2 = Attention(dim, context_dim, heads, dim_head, image_cross_attention, scale_learnable, text_len)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, x: Tensor, context: Tensor | None = None, causal: bool = False,
                stream: CacheView | None = None) -> Tensor:
        x = self.attn1(self.norm1(x), causal=causal, stream=stream) + x
        x = self.attn2(self.norm2(x), context, causal=causal, stream=stream) + x
        return self.ff(self.norm3(x)) + x


def _projection(use_linear: bool, conv: type[nn.Module], c_in: int, c_out: int) -> nn.Module:
    return nn.Linear(c_in, c_out) if use_linear else conv(c_in, c_out, kernel_size=1)


def _tokenwise(projection: nn.Module, tokens: Tensor) -> Tensor:
    """A `_projection` applied to tokens [N, L, C]. A 1x1 conv is the linear map of its squeezed weight: applied as
    one, the tokens need no transposing into the conv's [N, C, L] and back (a copy each way, and oneDNN's 1-D conv
    backward is several times slower than a matmul)."""
    if isinstance(projection, nn.Linear):
        return projection(tokens)
    return F.linear(tokens, projection.weight.flatten(1), projection.bias)


class SpatialTransformer(nn.Module):
    """Attention over the pixels of each frame, with cross-attention to the conditioning tokens."""

    def __init__(self, channels: int, heads: int, dim_head: int, depth: int, context_dim: int | None,
                 use_linear: bool, image_cross_attention: bool, scale_learnable: bool, text_len: int,
                 groups: int = 32) -> None:
        super().__init__()
        inner = heads * dim_head
        self.use_linear = use_linear
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.proj_in = _projection(use_linear, nn.Conv2d, channels, inner)
        self.transformer_blocks = nn.ModuleList(
            TransformerBlock(inner, heads, dim_head, context_dim, image_cross_attention, scale_learnable, text_len)
            for _ in range(depth)
        )
        self.proj_out = _projection(use_linear, nn.Conv2d, inner, channels)

    def forward(self, h: Tensor, ctx: FrameContext) -> Tensor:
        bt, c, hh, ww = h.shape
        x = self.norm(h)
        if not self.use_linear:
            x = self.proj_in(x)
        x = x.flatten(2).transpose(1, 2)  # [(B T), H*W, C]
        if self.use_linear:
            x = self.proj_in(x)
        for block in self.transformer_blocks:
            x = block(x, ctx.context)
        if self.use_linear:
            x = self.proj_out(x)
        x = x.transpose(1, 2).reshape(bt, -1, hh, ww)
        if not self.use_linear:
            x = self.proj_out(x)
        return x + h


class TemporalTransformer(nn.Module):
    """Self-attention over the frames at each spatial location; `causal` masks future frames."""

    def __init__(self, channels: int, heads: int, dim_head: int, depth: int, use_linear: bool,
                 causal: bool, norm_mode: str, groups: int = 32) -> None:
        super().__init__()
        inner = heads * dim_head
        self.use_linear = use_linear
        self.causal = causal
        self.norm = TemporalGroupNorm(groups, channels, eps=1e-6, mode=norm_mode)
        self.proj_in = _projection(use_linear, nn.Conv1d, channels, inner)
        self.transformer_blocks = nn.ModuleList(
            TransformerBlock(inner, heads, dim_head, None) for _ in range(depth)
        )
        self.proj_out = _projection(use_linear, nn.Conv1d, inner, channels)

    def forward(self, h: Tensor, ctx: FrameContext) -> Tensor:
        video = ctx.to_video(h)  # [B, C, T, H, W]
        b, c, t, hh, ww = video.shape
        x = self.norm(video, ctx.stream).permute(0, 3, 4, 2, 1).reshape(b * hh * ww, t, c)  # [(B H W), T, C]
        x = _tokenwise(self.proj_in, x)
        for block in self.transformer_blocks:
            x = block(x, causal=self.causal, stream=ctx.stream)
        x = _tokenwise(self.proj_out, x).reshape(b, hh, ww, t, c).permute(0, 4, 3, 1, 2)  # [B, C, T, H, W]
        return h + ctx.to_frames(x)
