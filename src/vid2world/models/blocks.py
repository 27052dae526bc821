"""Convolutional blocks of the DynamiCrafter UNet, with lvdm parameter names (`temopral_conv` misspelt as in the
checkpoints). Every block takes `(h, ctx)`: features [(B T), C, H, W] and the shared `FrameContext`."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .state import FrameContext
from .stream import CacheView
from .temporal import TemporalConv, TemporalGroupNorm, group_norm


class GroupNorm32(nn.GroupNorm):
    """lvdm `normalization()`: GroupNorm(32, C), computed in at least float32 (`temporal.group_norm`)."""

    def __init__(self, channels: int, groups: int = 32) -> None:
        super().__init__(groups, channels)

    def forward(self, x: Tensor) -> Tensor:
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps)


class TemporalConvBlock(nn.Module):
    """identity + conv4(conv3(conv2(conv1(x)))), each convN = TemporalGroupNorm, SiLU, [Dropout], (3,1,1) conv."""

    def __init__(self, channels: int, causal: bool, norm_mode: str, dropout: float = 0.1, groups: int = 32) -> None:
        super().__init__()

        def layer(with_dropout: bool) -> nn.Sequential:
            parts: list[nn.Module] = [TemporalGroupNorm(groups, channels, mode=norm_mode), nn.SiLU()]
            if with_dropout:
                parts.append(nn.Dropout(dropout))
            parts.append(TemporalConv(channels, channels, 3, causal=causal))
            return nn.Sequential(*parts)

        self.conv1 = layer(False)
        self.conv2 = layer(True)
        self.conv3 = layer(True)
        self.conv4 = layer(True)

    def forward(self, video: Tensor, stream: CacheView | None = None) -> Tensor:
        x = video
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            for layer in conv:
                x = layer(x, stream) if isinstance(layer, (TemporalGroupNorm, TemporalConv)) else layer(x)
        return video + x


class ResBlock(nn.Module):
    """lvdm `ResBlock` (no scale-shift norm, no up/down): per-frame convs, the frame's embedding added as a
    per-channel bias, then the temporal conv block over the clip."""

    def __init__(self, channels: int, emb_dim: int, out_channels: int, dropout: float,
                 temporal_conv: bool, causal: bool, norm_mode: str, groups: int = 32,
                 temporal_dropout: float = 0.1) -> None:
        super().__init__()
        self.in_layers = nn.Sequential(GroupNorm32(channels, groups), nn.SiLU(),
                                       nn.Conv2d(channels, out_channels, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, out_channels))
        self.out_layers = nn.Sequential(GroupNorm32(out_channels, groups), nn.SiLU(), nn.Dropout(dropout),
                                        nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip_connection = nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)
        if temporal_conv:
            self.temopral_conv = TemporalConvBlock(out_channels, causal, norm_mode, temporal_dropout, groups)

    def forward(self, h: Tensor, ctx: FrameContext) -> Tensor:
        out = self.in_layers(h)
        out = out + self.emb_layers(ctx.emb).to(out.dtype)[:, :, None, None]
        out = self.skip_connection(h) + self.out_layers(out)
        if hasattr(self, "temopral_conv"):
            out = ctx.to_frames(self.temopral_conv(ctx.to_video(out), ctx.stream))
        return out


class InputConv(nn.Conv2d):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, 3, padding=1)

    def forward(self, h: Tensor, ctx: FrameContext | None = None) -> Tensor:
        return super().forward(h)


class Downsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, h: Tensor, ctx: FrameContext | None = None) -> Tensor:
        return self.op(h)


class Upsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, h: Tensor, ctx: FrameContext | None = None) -> Tensor:
        return self.conv(F.interpolate(h, scale_factor=2, mode="nearest"))


class Stage(nn.ModuleList):
    """A run of blocks (lvdm `TimestepEmbedSequential`); optionally recomputes each block in backward."""

    gradient_checkpointing = False

    def forward(self, h: Tensor, ctx: FrameContext) -> Tensor:
        for block in self:
            if self.gradient_checkpointing and self.training and h.requires_grad:
                h = checkpoint(block, h, ctx, use_reentrant=False)
            else:
                h = block(h, ctx)
        return h
