"""The bundled world models' directories (`src/vid2world/zoo/models/NAME/`), found by name.

`vid2world zoo build` makes and installs them; everything that runs a model by name (`v2w.zoo.load`, `vid2world
play|rollout|evaluate --model NAME`, `bench play`) finds it here, below the layers that use it, without importing the
builder. `resolve` is the one rule every `--model` follows: a path when the value looks like one, else a name.
"""

from __future__ import annotations

import os
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


def resolve(ref: str | os.PathLike, what: str = "model") -> Path:
    """The model directory `ref` names. A value holding a path separator, or naming something that exists, is a
    path (it must be a directory); anything else is a bundled model's name. `what` names the argument in errors
    (`--model` on the command line)."""
    text = os.fspath(ref) if isinstance(ref, (str, os.PathLike)) else None
    if not isinstance(text, str) or not text:
        raise ValueError(f"{what}: expected a world-model directory or a bundled model's name, got {ref!r}")
    if any(s and s in text for s in (os.sep, os.altsep)) or Path(text).exists():
        if not Path(text).exists():
            raise ValueError(f"{what} {text}: no such directory")
        if not Path(text).is_dir():
            raise ValueError(f"{what} {text}: not a directory (a world model is a directory holding {CONFIG_NAME})")
        return Path(text)
    if text not in names():
        raise ValueError(f"{what} {text!r}: no such directory, nor a bundled model's name; bundled: {names()} "
                         "(`vid2world zoo list`)")
    return MODELS / text


def load_model(ref: str | os.PathLike, device: str | torch.device = "cpu", what: str = "model") -> WorldModel:
    """The world model in a directory, or a bundled one by name (`resolve`'s rule)."""
    return WorldModel.from_pretrained(resolve(ref, what), device=device)
