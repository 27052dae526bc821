"""World models: the rollout runtime (sessions, caches, evaluators) on top of a causal video UNet."""

from .session import RolloutSession
from .world_model import SamplerConfig, WorldModel

__all__ = ["RolloutSession", "SamplerConfig", "WorldModel"]
