"""`WanTransformer`: vid2world's Wan 2.1 video DiT behind the backbone seam.

Its state-dict keys and shapes equal diffusers' `WanTransformer3DModel`'s for the same config, so a diffusers
safetensors file loads strict; an `action_space` adds `condition_embedder.action_embedder.{0,2}.{weight,bias}`
only. Per-latent-frame noise levels (Diffusion Forcing) and per-latent-frame actions modulate each frame's
tokens; with `causal` set, self-attention is frame-causal and the model streams through a `StreamCache` (one
slot per block).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ..backbone import Backbone, Conditioning
from ..stream import CacheView
from ..temporal import at_least_float32
from ..validation import check_state_dict
from . import i2v
from .attention import frame_rotations
from .blocks import ConditionEmbedder, WanBlock, wide_layer_norm
from .config import WanConfig


class WanTransformer(Backbone):
    """Denoiser over latent videos [B, C, T, H, W] (T latent frames; H, W multiples of the patch).

    `forward(x, timesteps, context=None, image_context=None, actions=None, action_mask=None)`:
    - `timesteps`: [B] (one level per clip) or [B, T] (one per latent frame);
    - `context`: diffusers' `encoder_hidden_states`, text tokens [B, L, text_dim] (Wan's checkpoints were
      trained on T5 tokens zero-padded to 512); None: no text cross-attention at all;
    - `image_context`: diffusers' `encoder_hidden_states_image` [B, 257, image_dim], required by an
      image-to-video config and refused by a text-only one. It is a separate argument, so the text may have
      any length (diffusers instead concatenates and takes the last 512 tokens as text);
    - `actions`: [B, T, A] per latent frame, already grouped: row j is the group latent frame j follows
      (`models/action_groups.group_actions`); no shift happens here. `action_mask` [B, T]: 1 keeps, 0 drops.
    """

    kind = "wan2.1"

    def __init__(self, config: WanConfig) -> None:
        super().__init__()
        self.config = cfg = config
        dim = cfg.inner_dim
        self.patch_embedding = nn.Conv3d(cfg.in_channels, dim, cfg.patch_size, stride=cfg.patch_size)
        self.condition_embedder = ConditionEmbedder(dim, cfg.freq_dim, cfg.text_dim, cfg.image_dim,
                                                    cfg.pos_embed_seq_len, cfg.action_space)
        self.blocks = nn.ModuleList(
            WanBlock(dim, cfg.ffn_dim, cfg.num_attention_heads, cfg.cross_attn_norm, cfg.eps,
                     cfg.image_to_video) for _ in range(cfg.num_layers))
        self.norm_out = nn.LayerNorm(dim, cfg.eps, elementwise_affine=False)
        self.proj_out = nn.Linear(dim, cfg.out_channels * math.prod(cfg.patch_size))
        self.scale_shift_table = nn.Parameter(torch.randn(1, 2, dim) / dim ** 0.5)
        for slot, block in enumerate(self.blocks):  # each self-attention keeps its frames' keys and values
            block.attn1.cache_slot = slot
        self.cache_slots = len(self.blocks)
        self.set_gradient_checkpointing(cfg.gradient_checkpointing)

    def set_gradient_checkpointing(self, enabled: bool = True) -> "WanTransformer":
        """Recompute every block in the backward pass (not on a stream: a cache is written once per call)."""
        self.gradient_checkpointing = enabled
        return self

    def load_state_dict(self, state_dict, strict: bool = True,  # type: ignore[override]
                        assign: bool = False):
        """`nn.Module.load_state_dict`; a strict load that does not fit raises `StateDictError` naming every
        missing, unexpected and mis-shaped key."""
        if strict:
            check_state_dict(self.state_shapes(), state_dict, source="state dict")
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    @property
    def mask_channels(self) -> int:
        return i2v.first_frame_mask_channels(self.config)

    # ---- calls ---------------------------------------------------------------------------------------------
    def forward(self, x: Tensor, timesteps: Tensor | int, context: Tensor | None = None,
                image_context: Tensor | None = None, actions: Tensor | None = None,
                action_mask: Tensor | None = None) -> Tensor:
        return self.denoise(x, timesteps, context, image_context, actions, action_mask)

    def predict(self, x: Tensor, levels: Tensor, conditioning: Conditioning,
                frame_actions: Tensor | None = None, action_mask: Tensor | None = None,
                cache: CacheView | None = None, commit: bool = False) -> Tensor:
        """The seam's call (`Backbone.predict`): `conditioning.context` the text tokens,
        `conditioning.image_context` the CLIP image tokens. An image-to-video config reads
        `conditioning.concat` as the anchor latent [B, C, 1, h, w] and appends the per-frame condition of
        `i2v.frames_input` (mask and latent at window position 0, zeros after it; a concat holding the whole
        condition goes in as is); a text-to-video one appends the concat as is."""
        mask = None if frame_actions is None else action_mask
        if self.config.image_to_video:
            x_in = i2v.frames_input(x, conditioning, self.config.in_channels, cache)
        else:
            x_in = conditioning.frames_input(x)
        return self.denoise(x_in, levels, conditioning.context, conditioning.image_context, frame_actions,
                            mask, cache, commit)

    def denoise(self, x: Tensor, timesteps: Tensor | int, context: Tensor | None = None,
                image_context: Tensor | None = None, frame_actions: Tensor | None = None,
                action_mask: Tensor | None = None, cache: CacheView | None = None,
                commit: bool = False) -> Tensor:
        """`forward`, on a stream when given a `cache` (a `StreamCache.view`): the frames follow those its
        rows have committed (cached frames in view at positions 0..n-1, these after them), and `commit=True`
        appends them."""
        levels = check_wan_inputs(self.config, x, timesteps, context, image_context, frame_actions,
                                  action_mask)
        if cache is not None and not self.config.strictly_causal:
            raise ValueError("a stream (cache) needs a frame-causal WanTransformer; this one has causal=None")
        stream = None if cache is None else cache.committing(commit)
        out = self._run(x, levels, context, image_context, frame_actions, action_mask, stream)
        if stream is not None:
            stream.advance(x.shape[2])
        return out

    def _run(self, x: Tensor, levels: Tensor, context: Tensor | None, image_context: Tensor | None,
             frame_actions: Tensor | None, action_mask: Tensor | None, stream: CacheView | None) -> Tensor:
        cfg = self.config
        b, _, t, h, w = x.shape
        _, ph, pw = cfg.patch_size
        grid = (h // ph, w // pw)
        # [B, T, S, dim], S in (row, column) order
        tokens = self.patch_embedding(x).flatten(3).permute(0, 2, 3, 1)
        embedder = self.condition_embedder
        temb, modulation = embedder.frame_embeddings(levels, tokens.dtype, frame_actions, action_mask)
        text = None if context is None else embedder.text_embedder(context.to(tokens.dtype))
        image = None if image_context is None else embedder.image_embedder(image_context.to(tokens.dtype))
        causal = cfg.causal is not None
        rotations = frame_rotations(t, grid, cfg.attention_head_dim, tokens.dtype, x.device, stream)
        recompute = self.gradient_checkpointing and torch.is_grad_enabled() and stream is None
        for block in self.blocks:
            if recompute:
                tokens = checkpoint(block, tokens, modulation, text, image, rotations, causal,
                                    use_reentrant=False)
            else:
                tokens = block(tokens, modulation, text, image, rotations, causal, stream)
        head = self.scale_shift_table + at_least_float32(temb)[:, :, None]  # [B, T, 2, dim]
        shift, scale = head.unbind(2)
        out = (wide_layer_norm(tokens, self.norm_out) * (1 + scale[:, :, None]) + shift[:, :, None])
        out = self.proj_out(out.to(tokens.dtype))  # [B, T, S, C * pt * ph * pw]
        out = out.reshape(b, t, *grid, 1, ph, pw, -1).permute(0, 7, 1, 4, 2, 5, 3, 6)
        return out.reshape(b, -1, t, h, w)


def check_wan_inputs(cfg: WanConfig, x: Tensor, timesteps: Tensor | int, context: Tensor | None,
                     image_context: Tensor | None, actions: Tensor | None,
                     action_mask: Tensor | None) -> Tensor:
    """Validate a `WanTransformer` call; returns the noise levels as [B, T]."""
    if not isinstance(x, Tensor) or x.ndim != 5 or x.shape[1] != cfg.in_channels:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x: expected a tensor [B, C={cfg.in_channels}, T, H, W], got {shape}")
    b, _, t, h, w = x.shape
    _, ph, pw = cfg.patch_size
    if h % ph or w % pw or min(b, t, h, w) < 1:
        raise ValueError(f"x: expected height and width multiples of the patch {ph}x{pw}, "
                         f"got {tuple(x.shape)}")
    if not isinstance(timesteps, Tensor):
        timesteps = torch.full((b,), timesteps, device=x.device)
    if tuple(timesteps.shape) not in ((b,), (b, t)):
        raise ValueError(f"timesteps: expected shape [B]=({b},) or [B, T]=({b}, {t}), "
                         f"got {tuple(timesteps.shape)}")
    if context is not None and (context.ndim, context.shape[0], context.shape[-1]) != (3, b, cfg.text_dim):
        raise ValueError(f"context: expected text tokens [B={b}, L, {cfg.text_dim}], "
                         f"got {tuple(context.shape)}")
    if cfg.image_dim is None and image_context is not None:
        raise ValueError("image_context: this WanTransformer takes no image tokens (image_dim=None); "
                         "pass None")
    if cfg.image_dim is not None:
        rows = b * (2 if cfg.pos_embed_seq_len is not None else 1)  # first-last-frame: two images per clip
        if image_context is None or image_context.ndim != 3 or image_context.shape[0] != rows \
                or image_context.shape[2] != cfg.image_dim:
            got = None if image_context is None else tuple(image_context.shape)
            raise ValueError(f"image_context: this image-to-video WanTransformer needs CLIP tokens "
                             f"[{rows}, L, {cfg.image_dim}], got {got}")
    space = cfg.action_space
    if actions is not None and (space is None or tuple(actions.shape) != (b, t, space.dim)):
        want = ("none (action_space=None)" if space is None
                else f"[B={b}, T={t}, A={space.dim}] ({space.kind})")
        raise ValueError(f"actions: expected {want}, got {tuple(actions.shape)}")
    if action_mask is not None and (space is None or tuple(action_mask.shape) != (b, t)):
        raise ValueError(f"action_mask: expected [B={b}, T={t}] with an action_space, "
                         f"got {tuple(action_mask.shape)}")
    return timesteps if timesteps.ndim == 2 else timesteps[:, None].expand(b, t)
