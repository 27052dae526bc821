"""The one registry of backbones: a kind's name -> its network and its config class. A new backbone adds a line."""

from __future__ import annotations

from typing import Any, Mapping

from .backbone import Backbone


def _entries() -> dict[str, tuple[type[Backbone], Any]]:
    from .config import UNetConfig
    from .unet import VideoUNet
    from .wan.config import WanConfig
    from .wan.transformer import WanTransformer

    return {VideoUNet.kind: (VideoUNet, UNetConfig), WanTransformer.kind: (WanTransformer, WanConfig)}


def backbone_kinds() -> list[str]:
    return sorted(_entries())


def _entry(kind: str) -> tuple[type[Backbone], Any]:
    entries = _entries()
    if kind not in entries:
        raise ValueError(f"unknown backbone {kind!r}; available: {sorted(entries)}")
    return entries[kind]


def backbone_config(kind: str, architecture: Mapping[str, Any]) -> Any:
    """The config of a `kind` backbone from its saved dict (checked; no network built)."""
    return _entry(kind)[1].from_dict(architecture)


def build_backbone(kind: str, architecture: Mapping[str, Any] | Any) -> Backbone:
    """A `kind` backbone with fresh weights, from its config or its saved dict."""
    network, config_class = _entry(kind)
    config = architecture if isinstance(architecture, config_class) else config_class.from_dict(architecture)
    return network(config)
