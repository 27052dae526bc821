"""Checkpoint key conventions around the UNet.

vid2world keeps DynamiCrafter's key names (and the causal kernel in the original parameter). The official Vid2World
code wraps each causal conv in an inner module, so its checkpoints say `...temopral_conv.conv1.2.conv3d.weight` and
`out.2.conv2d.weight`; some DynamiCrafter checkpoints say `framestride_embed` for `fps_embedding`.
"""

from __future__ import annotations

import re
from typing import Mapping

from torch import Tensor

UNET_PREFIX = "model.diffusion_model."  # the UNet's prefix inside a DynamiCrafter checkpoint
LEGACY_UNET_NAMES = {"framestride_embed.": "fps_embedding."}  # older DynamiCrafter checkpoints
TEMPORAL_CONV_KEY = re.compile(r"temopral_conv\.conv[1-4]\.[23]\.(weight|bias)$")
OFFICIAL_CONV_KEY = re.compile(r"(temopral_conv\.conv[1-4]\.[23])\.conv3d\.(weight|bias)$|^(out\.2)\.conv2d\.(weight|bias)$")


def legacy_renamed(key: str) -> str:
    """A UNet key in today's name (`framestride_embed.*` -> `fps_embedding.*`), with or without the UNet prefix."""
    prefix = UNET_PREFIX if key.startswith(UNET_PREFIX) else ""
    rest = key[len(prefix):]
    for old, new in LEGACY_UNET_NAMES.items():
        if rest.startswith(old):
            return prefix + new + rest[len(old):]
    return key


def strip_prefix(state_dict: Mapping[str, Tensor], prefix: str = UNET_PREFIX) -> dict[str, Tensor]:
    """Keep the keys under `prefix` (without it) when any key has it; otherwise return the keys unchanged."""
    if any(k.startswith(prefix) for k in state_dict):
        return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    return dict(state_dict)


def is_official_layout(state_dict: Mapping[str, Tensor]) -> bool:
    """True for a released Vid2World UNet (causal convs stored under `.conv3d.` / `.conv2d.`)."""
    return any(OFFICIAL_CONV_KEY.search(k) for k in state_dict)


def normalize_keys(state_dict: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Map official Vid2World and old DynamiCrafter names onto vid2world's; returns (state dict, renames old->new).

    Values are not touched: an official causal kernel is already transferred.
    """
    out: dict[str, Tensor] = {}
    renamed: dict[str, str] = {}
    for key, value in state_dict.items():
        new = key
        m = OFFICIAL_CONV_KEY.search(key)
        if m:
            stem = m.group(1) or m.group(3)
            new = key[: m.start()] + f"{stem}.{m.group(2) or m.group(4)}"
        new = legacy_renamed(new)
        if new != key:
            renamed[key] = new
        out[new] = value
    return out, renamed


def to_official_keys(state_dict: Mapping[str, Tensor], out_conv_height_causal: bool = True) -> dict[str, Tensor]:
    """vid2world names -> the official Vid2World names (for comparison with, or export to, the official code)."""
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        m = TEMPORAL_CONV_KEY.search(key)
        if m:
            key = key[: m.start(1) - 1] + f".conv3d.{m.group(1)}"
        elif out_conv_height_causal and key in ("out.2.weight", "out.2.bias"):
            key = key.replace("out.2.", "out.2.conv2d.")
        out[key] = value
    return out
