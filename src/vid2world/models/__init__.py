"""Networks: the video UNet and its building blocks, the codecs (pixels, SD VAE), the conditioning encoders
(OpenCLIP towers, Resampler)."""

from .backbone import Backbone, Conditioning
from .clip import CLIPTextConfig, CLIPVisionConfig, OpenCLIPImageEncoder, OpenCLIPTextEncoder
from .codec import IdentityCodec, LatentCodec
from .conditioning import ImageConditioner
from .config import PRESETS, TEMPORAL_NORM_MODES, ActionSpace, CausalConfig, UNetConfig
from .resampler import Resampler, ResamplerConfig
from .unet import VideoUNet
from .vae import AutoencoderKL, VAEConfig
from .validation import StateDictError, check_state_dict

__all__ = ["Backbone", "Conditioning", "ActionSpace", "AutoencoderKL", "CLIPTextConfig", "CLIPVisionConfig", "CausalConfig",
           "IdentityCodec", "ImageConditioner", "LatentCodec", "OpenCLIPImageEncoder",
           "OpenCLIPTextEncoder", "PRESETS", "Resampler", "ResamplerConfig", "StateDictError", "TEMPORAL_NORM_MODES",
           "UNetConfig", "VAEConfig", "VideoUNet", "check_state_dict"]
