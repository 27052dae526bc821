"""vid2world: turn pretrained video diffusion models into interactive world models."""

from .causal import CausalizationReport, causalize, transfer_kernel
from .models import ActionSpace, CausalConfig, StateDictError, UNetConfig, VideoUNet

__version__ = "0.1.0"
__all__ = ["ActionSpace", "CausalConfig", "CausalizationReport", "StateDictError", "UNetConfig", "VideoUNet",
           "causalize", "transfer_kernel"]
