"""gymnasium ids for the bundled world models: `gymnasium.make("vid2world/vizdoom-deathmatch-v0")` is a
`WorldModelEnv` of the bundled model, `gymnasium.make_vec(id, num_envs=N)` a `WorldModelVectorEnv` of N rows.

`import vid2world` registers them (when gymnasium is installed). gymnasium 1.x reads no plugin entry points
(the `gymnasium.envs` entry-point group went with 1.0), so registration at import is what works, offline
too: it lists the directories under `zoo/models/` and loads nothing until `make`.

Keyword arguments of `make`: `model` (another bundled name, a model directory or a `WorldModel`), `data`
(a dataset to start episodes from), `device`, `flat_actions=True` (the actions as one `MultiDiscrete` or
`Box` space, for stable-baselines3: `wrappers.FlatActions`), `render_mode`, and any `EnvConfig` field
(`preset`, `steps`, `guidance`, `context`, `max_steps`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym

from . import bundled
from .world_model import WorldModel

NAMESPACE = "vid2world"


def env_id(name: str) -> str:
    """The gymnasium id of the bundled model `name`."""
    return f"{NAMESPACE}/{name}-v0"


def register_bundled() -> list[str]:
    """Register every bundled model with gymnasium (again: nothing happens); returns their ids."""
    ids = []
    for name in bundled.names():
        ids.append(env_id(name))
        if ids[-1] not in gym.registry:
            gym.register(ids[-1], entry_point=f"{__name__}:make_env",
                         vector_entry_point=f"{__name__}:make_vector_env", kwargs={"model": name})
    return ids


def make_env(model: str | WorldModel, data: Any = None, device: str = "cpu", flat_actions: bool = False,
             render_mode: str | None = "rgb_array", **config: Any) -> gym.Env:
    """The entry point of the ids: a `WorldModelEnv` of `model` (see module doc)."""
    from .env import WorldModelEnv  # the envs load at make, not at `import vid2world`

    env = WorldModelEnv(_model(model, device), _config(config), data=data, render_mode=render_mode)
    if flat_actions:
        from .wrappers import FlatActions

        return FlatActions(env)
    return env


def make_vector_env(num_envs: int, model: str | WorldModel, data: Any = None, device: str = "cpu",
                    **config: Any) -> gym.vector.VectorEnv:
    """The vector entry point of the ids: a `WorldModelVectorEnv` of `num_envs` rows (see module doc)."""
    from .vector_env import WorldModelVectorEnv

    limit = config.pop("max_episode_steps", None)  # gymnasium's name for it: the rows truncate there
    if limit is not None:
        config.setdefault("max_steps", limit)
    return WorldModelVectorEnv(_model(model, device), num_envs, _config(config), data=data)


def _model(model: str | WorldModel, device: str) -> WorldModel:
    return model if isinstance(model, WorldModel) else bundled.load_model(str(model), device)


def _config(config: dict[str, Any]) -> Any:
    from .env import EnvConfig

    fields = [f.name for f in dataclasses.fields(EnvConfig)]
    unknown = sorted(set(config) - set(fields))
    if unknown:
        raise ValueError(f"make: unknown keyword argument(s) {unknown}; besides model, data, device, "
                         f"flat_actions and render_mode it takes the EnvConfig fields {fields}")
    return EnvConfig(**config)
