"""vid2world: turn pretrained video diffusion models into interactive world models."""

import importlib.util

from .causal import CausalizationReport, causalize, transfer_kernel
from .checkpoints import CheckpointError, convert_checkpoint, inspect_checkpoint, load_video_model, read_checkpoint
from .diffusion import GuidanceConfig, NoiseSchedule, ScheduleConfig
from .io.video import write_video
from .models import ActionSpace, Backbone, CausalConfig, LatentCodec, StateDictError, UNetConfig, VideoUNet
from .world import RolloutSession, SamplerConfig, WorldModel
from . import zoo

__version__ = "0.1.0"
__all__ = ["ActionSpace", "Backbone", "CausalConfig", "CausalizationReport", "CheckpointError", "GuidanceConfig", "LatentCodec",
           "NoiseSchedule", "RolloutSession", "SamplerConfig", "ScheduleConfig", "StateDictError", "UNetConfig",
           "VideoUNet", "WorldModel", "causalize", "convert_checkpoint", "inspect_checkpoint", "load_video_model", "read_checkpoint",
           "transfer_kernel", "write_video", "WorldModelEnv", "WorldModelVectorEnv", "FlatActions",
           "SB3VecEnv"]

# gymnasium.make("vid2world/NAME-v0") for each bundled model (gymnasium 1.x reads no plugin entry points)
if importlib.util.find_spec("gymnasium") is not None:
    from .world.registration import register_bundled

    register_bundled()


def __getattr__(name: str):
    """The gymnasium environments and their RL-client adapters, imported on first use (gymnasium comes
    with the `sim` extra, stable-baselines3 with `dev`)."""
    if name == "WorldModelEnv":
        from .world.env import WorldModelEnv

        return WorldModelEnv
    if name == "WorldModelVectorEnv":
        from .world.vector_env import WorldModelVectorEnv

        return WorldModelVectorEnv
    if name == "FlatActions":
        from .world.wrappers import FlatActions

        return FlatActions
    if name == "SB3VecEnv":  # stable-baselines3 is imported here, on first use, never by the library itself
        from .world.sb3 import SB3VecEnv

        return SB3VecEnv
    raise AttributeError(f"module 'vid2world' has no attribute {name!r}")
