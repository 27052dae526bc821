"""Data: one dataset format (docs/data.md), clips for training and evaluation, simulator recorders, importers."""

from .clips import ClipConfig, ClipDataset, ClipSampler, Window, clip_loader, eval_windows, to_model_input
from .record import RecordConfig, record_dataset
from .spec import ActionGroup, ActionSpec, DatasetMeta
from .store import Dataset, Episode, open_dataset
from .synthetic import SquareWorld
from .transforms import AugmentConfig, FrameLayout
from .writer import DatasetWriter

__all__ = ["ActionGroup", "ActionSpec", "AugmentConfig", "ClipConfig", "ClipDataset", "ClipSampler", "Dataset",
           "DatasetMeta", "DatasetWriter", "Episode", "FrameLayout", "RecordConfig", "SquareWorld", "Window",
           "clip_loader", "eval_windows", "open_dataset", "record_dataset", "to_model_input"]
