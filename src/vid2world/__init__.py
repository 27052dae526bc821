"""vid2world: turn pretrained video diffusion models into interactive world models."""

from .causal import CausalizationReport, causalize, transfer_kernel
from .diffusion import GuidanceConfig, NoiseSchedule, ScheduleConfig
from .models import ActionSpace, CausalConfig, StateDictError, UNetConfig, VideoUNet
from .world import RolloutSession, SamplerConfig, WorldModel

__version__ = "0.1.0"
__all__ = ["ActionSpace", "CausalConfig", "CausalizationReport", "GuidanceConfig", "NoiseSchedule", "RolloutSession",
           "SamplerConfig", "ScheduleConfig", "StateDictError", "UNetConfig", "VideoUNet", "WorldModel", "causalize",
           "transfer_kernel"]
