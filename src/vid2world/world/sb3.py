"""`SB3VecEnv`: a `WorldModelVectorEnv` as a stable-baselines3 `VecEnv`, so PPO and the others train on the
batched env directly (one UNet call per denoising step for all rows), not on N sessions in a `DummyVecEnv`.

    venv = SB3VecEnv(WorldModelVectorEnv(v2w.zoo.load("vizdoom-deathmatch"), 8))
    PPO("CnnPolicy", venv).learn(10_000)

Actions are the model's as one flat space (`spaces.flat_action_space`: ViZDoom's `Dict` as a `MultiDiscrete`).
A row that ends (truncation at `EnvConfig.max_steps`) restarts at once, SB3's convention: its last frame goes
to `info["terminal_observation"]`. Only this module imports stable-baselines3, so the library runs without it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector.utils import concatenate, create_empty_array

try:
    from stable_baselines3.common.vec_env import VecEnv
except ImportError as error:
    raise ImportError("vid2world.world.sb3 needs stable-baselines3: pip install stable-baselines3") from error

from .spaces import flat_action_space, from_flat
from .vector_env import WorldModelVectorEnv


class SB3VecEnv(VecEnv):
    """`env`'s rows as SB3's environments. The rows share one session, so attributes and methods reached
    through `get_attr`, `set_attr` and `env_method` are the vector env's, shared by every row."""

    def __init__(self, env: WorldModelVectorEnv) -> None:
        if not isinstance(env, WorldModelVectorEnv):
            raise ValueError(f"SB3VecEnv wraps a WorldModelVectorEnv, got {type(env).__name__}")
        self.env, self._actions = env, None
        super().__init__(env.num_envs, env.single_observation_space,
                         flat_action_space(env.action_spec, env.single_action_space))
        # the vector env renders its rows' frames (its own render_mode attribute is gymnasium's default, None)
        self.render_mode, self.metadata = "rgb_array", {"render_modes": ["rgb_array"]}

    def reset(self) -> np.ndarray:
        options = self._options[0]
        if any(o != options for o in self._options):
            raise ValueError("SB3VecEnv: the rows start by one rule; set_options must give every row "
                             "the same options")
        if "reset_mask" in options:
            raise ValueError("SB3VecEnv: reset() starts every row; options['reset_mask'] has no place here")
        seeds = None if all(s is None for s in self._seeds) else list(self._seeds)
        obs, info = self.env.reset(seed=seeds, options=options or None)
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [dict(info) for _ in range(self.num_envs)]
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        actions = np.asarray(actions)
        if actions.shape[:1] != (self.num_envs,):
            raise ValueError(f"step: expected one action per row ({self.num_envs}), got shape "
                             f"{actions.shape}")
        self._actions = actions

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        if self._actions is None:
            raise RuntimeError("step_wait: call step_async first")
        single = self.env.single_action_space
        members = [from_flat(self.env.action_spec, single, a) for a in self._actions]
        self._actions = None
        obs, rewards, terminated, truncated, _ = self.env.step(
            concatenate(single, members, create_empty_array(single, self.num_envs)))
        dones = np.asarray(terminated | truncated, bool)
        infos: list[dict[str, Any]] = [{"TimeLimit.truncated": bool(truncated[i] and not terminated[i])}
                                       for i in range(self.num_envs)]
        if dones.any():
            for i in np.flatnonzero(dones):
                infos[i]["terminal_observation"] = obs[i].copy()
            obs, _ = self.env.reset(options={"reset_mask": dones})
        return obs, np.asarray(rewards, np.float32), dones, infos

    def close(self) -> None:
        self.env.close()

    def get_images(self) -> list[np.ndarray]:
        frames = self.env.render()
        return [] if frames is None else list(frames)

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        value = getattr(self.env, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        self._all_rows(indices, f"set_attr({attr_name!r})")
        setattr(self.env, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: Any = None,
                   **method_kwargs: Any) -> list[Any]:
        rows = self._all_rows(indices, f"env_method({method_name!r})")
        result = getattr(self.env, method_name)(*method_args, **method_kwargs)
        return [result for _ in rows]

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def _all_rows(self, indices: Any, what: str) -> list[int]:
        rows = list(self._get_indices(indices))
        if sorted(rows) != list(range(self.num_envs)):
            raise ValueError(f"SB3VecEnv.{what}: the rows share one vector env, so it applies to all "
                             f"{self.num_envs} rows at once (indices=None), got indices {rows}")
        return rows
