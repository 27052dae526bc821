"""Training (docs/training.md): objectives live in `vid2world.diffusion`; configs, the loop and checkpoints here."""

from .config import ConfigError, TrainConfig, load_config
from .in_memory import FitConfig, fit_world_model
from .trainer import TrainingError, TrainResult, train

__all__ = ["ConfigError", "FitConfig", "TrainConfig", "TrainResult", "TrainingError", "fit_world_model",
           "load_config", "train"]
