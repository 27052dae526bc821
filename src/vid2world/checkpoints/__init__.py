"""Checkpoints: reading DynamiCrafter / Vid2World files, the model registry (every part of each named model),
converting a file into a world model and inspecting what a file holds."""

from .convert import ConversionReport, ConvertOptions, convert, convert_checkpoint
from .inspect import format_inspection, inspect_checkpoint
from .reader import Checkpoint, CheckpointError, read_checkpoint
from .registry import PRETRAINED, PretrainedConfig, pretrained_config

__all__ = ["Checkpoint", "CheckpointError", "ConversionReport", "ConvertOptions", "PRETRAINED", "PretrainedConfig",
           "convert", "convert_checkpoint", "format_inspection", "inspect_checkpoint", "pretrained_config",
           "read_checkpoint"]
