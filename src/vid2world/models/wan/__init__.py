"""Wan 2.1 video DiT: vid2world's own modules in diffusers' parameter layout."""

from .codec import WanCodec, load_wan_vae
from .config import WAN_PRESETS, WanCausalConfig, WanConfig
from .image import WanImageEncoder, processor_pixels, release_pixels
from .layouts import detect_video_model, read_wan_transformer
from .text import PromptFeatures
from .transformer import WanTransformer
from .vae import WanDecodeStream, WanEncodeStream, WanVAE, WanVAEConfig

__all__ = ["PromptFeatures", "WAN_PRESETS", "WanCausalConfig", "WanCodec", "WanConfig", "WanDecodeStream",
           "WanEncodeStream", "WanImageEncoder", "WanTransformer", "WanVAE", "WanVAEConfig", "detect_video_model",
           "load_wan_vae", "processor_pixels", "read_wan_transformer", "release_pixels"]
