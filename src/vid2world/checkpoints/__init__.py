"""Checkpoints: reading DynamiCrafter / Vid2World files, the model registry (every part of each named model),
converting a file into a world model and inspecting what a file holds."""

from .convert import ConversionReport, ConvertOptions, convert, convert_checkpoint
from .inspect import format_inspection, inspect_checkpoint
from .reader import Checkpoint, CheckpointError, read_checkpoint
from .registry import MODELS, PRETRAINED, ModelSpec, model_spec
from .wan import WanConversion, convert_wan, convert_wan_directory, inspect_wan, load_video_model

__all__ = ["Checkpoint", "CheckpointError", "ConversionReport", "ConvertOptions", "MODELS", "ModelSpec", "PRETRAINED",
           "convert", "convert_checkpoint", "format_inspection", "inspect_checkpoint", "model_spec", "read_checkpoint",
           "WanConversion", "convert_wan", "convert_wan_directory", "inspect_wan", "load_video_model"]
