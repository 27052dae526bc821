"""`VideoUNet`: DynamiCrafter's 3D UNet with per-frame noise levels and per-frame actions.

The module tree reproduces lvdm's parameter names exactly, so the `model.diffusion_model.` part of a DynamiCrafter
`model.ckpt` loads with `strict=True` (and a released Vid2World UNet after `vid2world.causal.strip_official_keys`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .attention import Attention, SpatialTransformer, TemporalTransformer
from .backbone import Backbone, Conditioning
from .blocks import Downsample, GroupNorm32, InputConv, ResBlock, Stage, Upsample
from .config import UNetConfig
from .embeddings import build_action_layers, mlp, shift_actions, timestep_embedding
from .state import FrameContext
from .stream import CacheView
from .temporal import OutputConv, TemporalConv, TemporalGroupNorm
from .validation import check_forward_inputs, check_state_dict


def feature_layout(device: torch.device) -> torch.memory_format:
    """How the UNet lays out its [(B T), C, H, W] features. Channels-last on CPU: oneDNN's convolutions run 2-3x
    faster on it, spatial attention reads its tokens from it without a copy, and the temporal layers' video view of
    it is channels-last 3-D, which their convolutions take directly. Elsewhere as given (not measured on GPUs)."""
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


class VideoUNet(Backbone):
    """Denoiser over latent (or pixel) videos [B, C, T, H, W].

    `forward(x, timesteps, context=None, fs=None, actions=None, action_mask=None)`:
    - `timesteps`: [B] (one noise level per clip) or [B, T] (one per frame, Diffusion Forcing);
    - `context`: [B, L, context_dim] cross-attention tokens. If L == 77 + 16*T the image tokens are split per frame
      (frame j sees the 77 text tokens and its own 16 image tokens), otherwise every frame sees all L (lvdm's rule);
    - `fs`: frame-rate condition, int or [B]; `default_fs` when None;
    - `actions`: [B, T, A] raw actions, a_t taken after frame t; the model shifts them so frame t sees a_{t-1} and
      frame 0 a zero action; `action_mask`: [B, T] gates the embedding each frame receives (1 = keep).
    """

    kind = "dynamicrafter"

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = cfg = config
        c, e = cfg.model_channels, cfg.time_embed_dim
        causal = cfg.causal is not None
        norm = cfg.temporal_norm

        if cfg.action_space is not None:
            for name, module in build_action_layers(cfg.action_space, c).items():
                self.add_module(name, module)
        self.time_embed = mlp([c, e, e])
        if cfg.fs_condition:
            self.fps_embedding = mlp([c, e, e])

        def res(ch_in: int, ch_out: int) -> ResBlock:
            return ResBlock(ch_in, e, ch_out, cfg.dropout, cfg.temporal_conv, causal, norm, cfg.norm_groups,
                            cfg.temporal_conv_dropout)

        def attention(ch: int) -> list[nn.Module]:
            heads = ch // cfg.num_head_channels
            layers: list[nn.Module] = [SpatialTransformer(
                ch, heads, cfg.num_head_channels, cfg.transformer_depth, cfg.context_dim, cfg.use_linear,
                cfg.image_cross_attention, cfg.image_cross_attention_scale_learnable, cfg.text_context_len,
                cfg.norm_groups)]
            if cfg.temporal_attention:
                layers.append(TemporalTransformer(
                    ch, heads, cfg.num_head_channels, cfg.transformer_depth, cfg.use_linear, causal, norm,
                    cfg.norm_groups))
            return layers

        self.input_blocks = nn.ModuleList([Stage([InputConv(cfg.in_channels, c)])])
        if cfg.init_attn:
            # lvdm hard-codes 8 heads of `num_head_channels` and 1x1-conv projections here.
            self.init_attn = Stage([TemporalTransformer(
                c, 8, cfg.num_head_channels, cfg.transformer_depth, False, causal, norm, cfg.norm_groups)])
        skip_channels, ch, ds = [c], c, 1
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.num_res_blocks):
                layers: list[nn.Module] = [res(ch, mult * c)]
                ch = mult * c
                if ds in cfg.attention_resolutions:
                    layers += attention(ch)
                self.input_blocks.append(Stage(layers))
                skip_channels.append(ch)
            if level != len(cfg.channel_mult) - 1:
                self.input_blocks.append(Stage([Downsample(ch)]))
                skip_channels.append(ch)
                ds *= 2

        self.middle_block = Stage([res(ch, ch), *attention(ch), res(ch, ch)])

        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(cfg.channel_mult))):
            for i in range(cfg.num_res_blocks + 1):
                layers = [res(ch + skip_channels.pop(), mult * c)]
                ch = mult * c
                if ds in cfg.attention_resolutions:
                    layers += attention(ch)
                if level and i == cfg.num_res_blocks:
                    layers.append(Upsample(ch))
                    ds //= 2
                self.output_blocks.append(Stage(layers))

        height_causal = bool(cfg.causal and cfg.causal.out_conv_height_causal)
        self.out = nn.Sequential(GroupNorm32(c, cfg.norm_groups), nn.SiLU(), OutputConv(c, cfg.out_channels, height_causal))
        self.set_gradient_checkpointing(cfg.gradient_checkpointing)
        self._zero_init_residual_outputs()
        # Every layer that can hold state of earlier frames gets its slot in a `StreamCache` (no id() keys).
        stateful = [m for m in self.modules() if isinstance(m, (Attention, TemporalGroupNorm, TemporalConv))]
        for slot, layer in enumerate(stateful):
            layer.cache_slot = slot
        self.cache_slots = len(stateful)

    def _zero_init_residual_outputs(self) -> None:
        """lvdm zero-initialises the last layer of every residual branch (ResBlock output conv, transformer output
        projection, last temporal conv), the fps MLP's last layer and the output conv: a fresh UNet outputs zero
        and each block starts as the identity."""
        zeroed = [self.out[2]] + ([self.fps_embedding[-1]] if self.config.fs_condition else [])
        for module in self.modules():
            if isinstance(module, ResBlock):
                zeroed.append(module.out_layers[3])
                if hasattr(module, "temopral_conv"):
                    zeroed.append(module.temopral_conv.conv4[-1])
            elif isinstance(module, (SpatialTransformer, TemporalTransformer)):
                zeroed.append(module.proj_out)
        with torch.no_grad():
            for layer in zeroed:
                for p in layer.parameters():
                    p.zero_()

    # ---- switches ------------------------------------------------------------------------------------------
    def set_gradient_checkpointing(self, enabled: bool = True) -> "VideoUNet":
        """Recompute every block in the backward pass (saves activation memory in training)."""
        for module in self.modules():
            if isinstance(module, Stage):
                module.gradient_checkpointing = enabled
        self.gradient_checkpointing = enabled
        return self

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):  # type: ignore[override]
        """`nn.Module.load_state_dict`, but a strict load that does not fit raises `StateDictError` naming every
        missing, unexpected and mis-shaped key."""
        if strict:
            check_state_dict(self.state_shapes(), state_dict, source="state dict")
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    # ---- forward -------------------------------------------------------------------------------------------
    def forward(self, x: Tensor, timesteps: Tensor, context: Tensor | None = None, fs: Tensor | int | None = None,
                actions: Tensor | None = None, action_mask: Tensor | None = None) -> Tensor:
        timesteps = check_forward_inputs(self.config, x, timesteps, context, actions, action_mask)
        frame_actions = None if actions is None else shift_actions(actions.float())
        return self._run(x, timesteps, context, fs, frame_actions, action_mask, None)

    def predict(self, x: Tensor, levels: Tensor, conditioning: Conditioning, frame_actions: Tensor | None = None,
                action_mask: Tensor | None = None, cache: CacheView | None = None, commit: bool = False) -> Tensor:
        """The seam's call (`Backbone.predict`): the first-frame latent concatenated, lvdm's context and fps."""
        return self.denoise(conditioning.frames_input(x), levels, conditioning.context, conditioning.fps,
                            frame_actions, None if frame_actions is None else action_mask, cache=cache, commit=commit)

    def denoise(self, x: Tensor, timesteps: Tensor, context: Tensor | None = None, fs: Tensor | int | None = None,
                frame_actions: Tensor | None = None, action_mask: Tensor | None = None,
                cache: CacheView | None = None, commit: bool = False) -> Tensor:
        """The forward pass for frames given with the action each one is conditioned on (`frame_actions[:, j]` =
        a_{t-1} for the frame at absolute position t; no shift here). With a `cache` (a `StreamCache.view`), the
        frames given follow the frames its rows have committed, and with `commit=True` they are appended."""
        timesteps = check_forward_inputs(self.config, x, timesteps, context, frame_actions, action_mask)
        if cache is not None and not self.config.strictly_causal:
            raise ValueError(f"a stream (cache) needs a strictly causal UNet (temporal_norm 'frame' or 'causal'); "
                             f"this one is causal={self.config.causal}")
        stream = None if cache is None else cache.committing(commit)
        out = self._run(x, timesteps, context, fs, frame_actions, action_mask, stream)
        if stream is not None:
            stream.advance(x.shape[2])
        return out

    def _run(self, x: Tensor, timesteps: Tensor, context: Tensor | None, fs: Tensor | int | None,
             frame_actions: Tensor | None, action_mask: Tensor | None, stream: CacheView | None) -> Tensor:
        ctx = self.frame_context(x, timesteps, context, fs, frame_actions, action_mask, stream)
        h = ctx.to_frames(x).contiguous(memory_format=feature_layout(x.device))
        skips = []
        for i, stage in enumerate(self.input_blocks):
            h = stage(h, ctx)
            if i == 0 and hasattr(self, "init_attn"):
                h = self.init_attn(h, ctx)
            skips.append(h)
        h = self.middle_block(h, ctx)
        for stage in self.output_blocks:
            h = stage(torch.cat([h, skips.pop()], dim=1), ctx)
        return ctx.to_video(self.out(h))

    def frame_context(self, x: Tensor, timesteps: Tensor, context: Tensor | None, fs: Tensor | int | None,
                      frame_actions: Tensor | None, action_mask: Tensor | None,
                      stream: CacheView | None = None) -> FrameContext:
        """Everything the blocks need besides the features: per-frame embeddings and per-frame context tokens."""
        cfg = self.config
        b, t = x.shape[0], x.shape[2]
        levels = timesteps if timesteps.ndim == 2 else timesteps[:, None].expand(b, t)
        emb = self.time_embed(timestep_embedding(levels, cfg.model_channels).to(x.dtype))  # [B, T, E]
        if cfg.fs_condition:
            fs = cfg.default_fs if fs is None else fs
            fs = torch.full((b,), fs, device=x.device) if isinstance(fs, int) else fs.to(x.device).reshape(b)
            emb = emb + self.fps_embedding(timestep_embedding(fs, cfg.model_channels).to(x.dtype))[:, None]
        if cfg.action_space is not None and frame_actions is not None:
            emb = emb + self.action_embedding(frame_actions, action_mask).to(emb.dtype)
        in_view = t if stream is None else stream.frames_in_view(t)
        tokens = self._frame_tokens(context, in_view, in_view - t, t)
        return FrameContext(batch=b, frames=t, emb=emb.reshape(b * t, -1), context=tokens, stream=stream)

    def action_embedding(self, frame_actions: Tensor, action_mask: Tensor | None = None) -> Tensor:
        """Per-frame actions [B, T, A] (already shifted: the action each frame follows) -> embeddings [B, T, 4C],
        multiplied by the mask (0 = dropped)."""
        first = self.action_emb_preprocess if hasattr(self, "action_emb_preprocess") else self.action_emb_proj[0]
        a = self.config.action_space.scaled(frame_actions).to(first.weight.dtype)
        if hasattr(self, "action_emb_preprocess"):  # multi-hot: sum of the active rows of the table
            a = a @ self.action_emb_preprocess.weight
        emb = self.action_emb_proj(a)
        if action_mask is not None:
            emb = emb * action_mask.to(emb.dtype)[..., None]
        return emb

    def _frame_tokens(self, context: Tensor | None, in_view: int, first: int, count: int) -> Tensor | None:
        """Cross-attention tokens for `count` frames starting at position `first` of the `in_view` frames the model
        sees. lvdm's rule: if there are exactly 77 + 16 * in_view tokens, frame j gets the text tokens and its own 16
        image tokens; otherwise every frame gets all tokens."""
        if context is None:
            return None
        b, n, d = context.shape
        text_len, per_frame = self.config.text_context_len, self.config.image_tokens_per_frame
        if n == text_len + per_frame * in_view:
            text = context[:, :text_len].repeat_interleave(count, dim=0)
            image = context[:, text_len + per_frame * first: text_len + per_frame * (first + count)]
            return torch.cat([text, image.reshape(b * count, per_frame, d)], dim=1)
        return context.repeat_interleave(count, dim=0)
