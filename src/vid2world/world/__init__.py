"""World models: rollouts, sessions and caches on top of a causal video UNet; conversion from pretrained files."""

from .convert import ConversionReport, ConvertOptions, convert, convert_checkpoint
from .inspect import format_inspection, inspect_checkpoint
from .pretrained import PRETRAINED, PretrainedConfig, pretrained_config
from .session import RolloutSession
from .world_model import SamplerConfig, WorldModel

__all__ = ["ConversionReport", "ConvertOptions", "PRETRAINED", "PretrainedConfig", "RolloutSession", "SamplerConfig",
           "WorldModel", "convert", "convert_checkpoint", "format_inspection", "inspect_checkpoint",
           "pretrained_config"]
