"""vid2world: turn pretrained video diffusion models into interactive world models."""

from .causal import CausalizationReport, causalize, transfer_kernel
from .checkpoints import CheckpointError, convert_checkpoint, inspect_checkpoint, read_checkpoint
from .diffusion import GuidanceConfig, NoiseSchedule, ScheduleConfig
from .io.video import write_video
from .models import ActionSpace, CausalConfig, LatentCodec, StateDictError, UNetConfig, VideoUNet
from .world import RolloutSession, SamplerConfig, WorldModel
from . import zoo

__version__ = "0.1.0"
__all__ = ["ActionSpace", "CausalConfig", "CausalizationReport", "CheckpointError", "GuidanceConfig", "LatentCodec",
           "NoiseSchedule", "RolloutSession", "SamplerConfig", "ScheduleConfig", "StateDictError", "UNetConfig",
           "VideoUNet", "WorldModel", "causalize", "convert_checkpoint", "inspect_checkpoint", "read_checkpoint",
           "transfer_kernel", "write_video", "WorldModelEnv", "WorldModelVectorEnv"]


def __getattr__(name: str):
    """The gymnasium environments, imported on first use (gymnasium comes with the `sim` extra)."""
    if name == "WorldModelEnv":
        from .world.env import WorldModelEnv

        return WorldModelEnv
    if name == "WorldModelVectorEnv":
        from .world.vector_env import WorldModelVectorEnv

        return WorldModelVectorEnv
    raise AttributeError(f"module 'vid2world' has no attribute {name!r}")
