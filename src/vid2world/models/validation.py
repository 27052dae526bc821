"""Input checks with messages that name the argument, the shape found and the shape expected."""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor

from .config import UNetConfig


class StateDictError(ValueError):
    """A state dict that does not fit the model: lists missing, unexpected and mis-shaped keys."""


def check_forward_inputs(cfg: UNetConfig, x: Tensor, timesteps: Tensor | int, context: Tensor | None,
                         actions: Tensor | None, action_mask: Tensor | None) -> Tensor:
    """Validate a `VideoUNet.forward` call; returns `timesteps` as a tensor of shape [B] or [B, T]."""
    if not isinstance(x, Tensor) or x.ndim != 5:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x: expected a tensor [B, C={cfg.in_channels}, T, H, W], got {shape}")
    b, c, t, h, w = x.shape
    if c != cfg.in_channels:
        raise ValueError(f"x: expected {cfg.in_channels} channels (dim 1) in [B, C, T, H, W], got shape {tuple(x.shape)}")
    if t < 1 or b < 1:
        raise ValueError(f"x: expected at least one clip and one frame, got shape {tuple(x.shape)}")
    f = cfg.downsample_factor
    if h % f or w % f:
        raise ValueError(f"x: height and width must be multiples of {f} (the UNet downsamples {f}x), "
                         f"got {h}x{w}")
    if not isinstance(timesteps, Tensor):
        timesteps = torch.full((b,), int(timesteps), device=x.device)
    if tuple(timesteps.shape) not in ((b,), (b, t)):
        raise ValueError(f"timesteps: expected shape [B]=({b},) or [B, T]=({b}, {t}), got {tuple(timesteps.shape)}")
    if cfg.context_dim is not None:
        if context is None:
            raise ValueError(f"context: this UNet cross-attends to tokens of width {cfg.context_dim}; "
                             f"expected a tensor [B={b}, L, {cfg.context_dim}], got None")
        if context.ndim != 3 or context.shape[0] != b or context.shape[2] != cfg.context_dim:
            raise ValueError(f"context: expected [B={b}, L, {cfg.context_dim}], got {tuple(context.shape)}")
    elif context is not None:
        raise ValueError("context: this UNet has no cross-attention (context_dim=None); pass context=None")
    space = cfg.action_space
    if actions is not None:
        if space is None:
            raise ValueError("actions: this UNet has no action input (action_space=None); pass actions=None "
                             "or causalize it with an action_space")
        if actions.ndim != 3 or tuple(actions.shape[:2]) != (b, t) or actions.shape[2] != space.dim:
            raise ValueError(f"actions: expected [B={b}, T={t}, A={space.dim}] ({space.kind}), "
                             f"got {tuple(actions.shape)}")
    if action_mask is not None:
        if space is None:
            raise ValueError("action_mask: this UNet has no action input (action_space=None)")
        if tuple(action_mask.shape) != (b, t):
            raise ValueError(f"action_mask: expected [B={b}, T={t}], got {tuple(action_mask.shape)}")
    return timesteps


def state_dict_differences(expected: Mapping[str, tuple[int, ...]], state_dict: Mapping[str, Tensor]
                           ) -> tuple[list[str], list[str], list[tuple[str, tuple[int, ...], tuple[int, ...]]]]:
    """(missing keys, unexpected keys, [(key, shape found, shape expected)]) of `state_dict` against `expected`."""
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    misshaped = [(k, tuple(state_dict[k].shape), tuple(expected[k]))
                 for k in state_dict if k in expected and tuple(state_dict[k].shape) != tuple(expected[k])]
    return missing, unexpected, misshaped


def check_state_dict(expected: Mapping[str, tuple[int, ...]], state_dict: Mapping[str, Tensor],
                     source: str = "state dict", allow_missing: tuple[str, ...] = ()) -> None:
    """Raise `StateDictError` unless `state_dict` has exactly the expected keys and shapes.

    Keys starting with one of `allow_missing` may be absent.
    """
    missing, unexpected, misshaped = state_dict_differences(expected, state_dict)
    missing = [k for k in missing if not k.startswith(allow_missing)]
    if not (missing or unexpected or misshaped):
        return
    lines = [f"{source} does not fit the model:"]
    if missing:
        lines.append(f"  {len(missing)} missing key(s): " + _sample(missing))
    if unexpected:
        lines.append(f"  {len(unexpected)} unexpected key(s): " + _sample(unexpected))
    for key, got, want in misshaped[:10]:
        lines.append(f"  key {key!r}: shape {list(got)} in the {source}, expected {list(want)}")
    if len(misshaped) > 10:
        lines.append(f"  ... and {len(misshaped) - 10} more mis-shaped keys")
    raise StateDictError("\n".join(lines))


def _sample(keys: list[str], n: int = 8) -> str:
    shown = ", ".join(repr(k) for k in keys[:n])
    return shown + (f", ... (+{len(keys) - n} more)" if len(keys) > n else "")
