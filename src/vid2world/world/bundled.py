"""The bundled world models' directories (`src/vid2world/zoo/models/NAME/`), found by name.

`vid2world zoo build` makes and installs them; everything that runs a model by name (`v2w.zoo.load`, `vid2world
play --model NAME`, `bench play`) finds it here, below the layers that use it, without importing the builder.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .world_model import CONFIG_NAME, WorldModel

MODELS = Path(__file__).resolve().parents[1] / "zoo" / "models"


def names() -> list[str]:
    """The bundled models' names."""
    return sorted(p.name for p in MODELS.iterdir() if (p / CONFIG_NAME).is_file()) if MODELS.is_dir() else []


def path(name: str) -> Path:
    """The directory of the bundled model `name` (ValueError naming the bundled ones otherwise)."""
    if name not in names():
        raise ValueError(f"unknown bundled model {name!r}; bundled: {names()} (`vid2world zoo list`)")
    return MODELS / name


def load(name: str, device: str | torch.device = "cpu") -> WorldModel:
    """The bundled world model `name`, in float32 on `device`, in eval mode."""
    return WorldModel.from_pretrained(path(name), device=device)


def load_model(ref: str, device: str | torch.device = "cpu") -> WorldModel:
    """A world-model directory, or a bundled model's name when no such directory exists."""
    if Path(ref).is_dir():
        return WorldModel.from_pretrained(ref, device=device)
    return load(ref, device)
