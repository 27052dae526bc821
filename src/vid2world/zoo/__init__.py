"""The bundled world models: trained here, on 2 CPU cores, by `vid2world zoo build NAME` from committed recipes.

    v2w.zoo.names()                          # ["vizdoom-deathmatch"]
    wm = v2w.zoo.load("vizdoom-deathmatch")  # a WorldModel; wm.metadata names the env, frame size and actions

Each model directory (`models/NAME/`) holds fp16 weights, `config.json` and a model card (`card.md`): the data,
steps, wall time and machine, metrics, and how to rebuild it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..world.world_model import CONFIG_NAME, WorldModel

MODELS = Path(__file__).parent / "models"


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


__all__ = ["MODELS", "load", "names", "path"]
