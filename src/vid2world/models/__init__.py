"""Networks: the video UNet and its building blocks (codecs and encoders arrive with the checkpoint issue)."""

from .config import PRESETS, TEMPORAL_NORM_MODES, ActionSpace, CausalConfig, UNetConfig
from .unet import VideoUNet
from .validation import StateDictError, check_state_dict

__all__ = ["ActionSpace", "CausalConfig", "UNetConfig", "PRESETS", "TEMPORAL_NORM_MODES", "VideoUNet",
           "StateDictError", "check_state_dict"]
