"""Wan 2.1 video DiT: vid2world's own modules in diffusers' parameter layout."""

from .config import WAN_PRESETS, WanCausalConfig, WanConfig
from .transformer import WanTransformer
