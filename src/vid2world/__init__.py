"""vid2world: turn pretrained video diffusion models into interactive world models."""

from .causal import CausalizationReport, causalize, transfer_kernel
from .diffusion import GuidanceConfig, NoiseSchedule, ScheduleConfig
from .models import ActionSpace, CausalConfig, CheckpointError, LatentCodec, StateDictError, UNetConfig, VideoUNet
from .models import read_checkpoint
from .world import RolloutSession, SamplerConfig, WorldModel, convert_checkpoint, inspect_checkpoint
from .world.video import write_video

__version__ = "0.1.0"
__all__ = ["ActionSpace", "CausalConfig", "CausalizationReport", "CheckpointError", "GuidanceConfig", "LatentCodec",
           "NoiseSchedule", "RolloutSession", "SamplerConfig", "ScheduleConfig", "StateDictError", "UNetConfig",
           "VideoUNet", "WorldModel", "causalize", "convert_checkpoint", "inspect_checkpoint", "read_checkpoint",
           "transfer_kernel", "write_video"]
