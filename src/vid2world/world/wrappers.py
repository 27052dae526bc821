"""Wrappers that make a `WorldModelEnv` fit RL libraries that take no `Dict` action space (stable-baselines3):
`FlatActions` offers the model's actions as one `MultiDiscrete` (or `Box`) space (`spaces.flat_action_space`).

    env = FlatActions(WorldModelEnv(v2w.zoo.load("vizdoom-deathmatch")))
    PPO("CnnPolicy", env).learn(10_000)

The same env comes from `gymnasium.make("vid2world/vizdoom-deathmatch-v0", flat_actions=True)`; the batched
`WorldModelVectorEnv` reaches stable-baselines3 through `vid2world.world.sb3.SB3VecEnv`, which flattens too.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from .spaces import flat_action_space, from_flat


class FlatActions(gym.ActionWrapper):
    """A `WorldModelEnv` (or a wrapper of one) whose action space is `flat_action_space` of the model's."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        try:
            self.action_spec = env.get_wrapper_attr("action_spec")
        except AttributeError:
            raise ValueError(f"FlatActions wraps a WorldModelEnv (an env with an `action_spec`), "
                             f"got {env}") from None
        self.model_action_space = env.action_space
        self.action_space = flat_action_space(self.action_spec, env.action_space)

    def action(self, action: Any) -> Any:
        return from_flat(self.action_spec, self.model_action_space, action)
