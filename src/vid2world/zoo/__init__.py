"""The bundled world models: trained here, on 2 CPU cores, by `vid2world zoo build NAME` from committed recipes.

    v2w.zoo.names()                          # ["vizdoom-deathmatch"]
    wm = v2w.zoo.load("vizdoom-deathmatch")  # a WorldModel; wm.metadata names the env, frame size and actions

Each model directory (`models/NAME/`) holds float16 or int8 weights, `config.json` and a model card (`card.md`): the data,
steps, wall time and machine, metrics, and how to rebuild it.
"""

from __future__ import annotations

from ..world.bundled import MODELS, load, load_model, names, path

__all__ = ["MODELS", "load", "load_model", "names", "path"]
