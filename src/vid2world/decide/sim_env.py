"""`SimulatorEnv`: a real simulator as a gymnasium environment with the same observations (uint8 [H, W, 3] frames
at the world model's size) and the same flat action space as the world model's `SB3VecEnv`, so a policy trained in
one acts in the other. Rewards are the game's (`Simulator.last_reward`); episodes are truncated at `max_steps`.
Each episode starts after 0..`random_start` uniformly random steps (Atari's games are deterministic without them).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from ..data.sim import make_simulator
from ..data.sim.policies import random_action
from ..world.spaces import action_space, flat_action_space, from_flat, to_vector


class SimulatorEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"]}
    render_mode = "rgb_array"

    def __init__(self, env_id: str, size: int = 64, max_steps: int = 200, random_start: int = 20) -> None:
        self.sim = make_simulator(env_id, size)
        self.action_spec, self.max_steps, self.random_start = self.sim.spec, max_steps, random_start
        self.model_space = action_space(self.action_spec)
        self.action_space = flat_action_space(self.action_spec, self.model_space)
        self.observation_space = gym.spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.frame: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.frame = start_frames(self.sim, int(self.np_random.integers(2 ** 31)), self.random_start)[0][-1]
        self.steps = 0
        return self.frame, {}

    def step(self, action: Any):
        vector = to_vector(self.action_spec, self.model_space, from_flat(self.action_spec, self.model_space, action))
        frame, ended = self.sim.step(vector)
        self.steps += 1
        if frame is not None:
            self.frame = frame
        return self.frame, self.sim.last_reward, ended, self.steps >= self.max_steps, {}

    def render(self) -> np.ndarray | None:
        return self.frame

    def close(self) -> None:
        self.sim.close()


def start_frames(sim: Any, seed: int, random_start: int, least: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded start: the simulator reset from `seed`, then `least` + 0..`random_start` uniformly random steps
    (drawn from `seed`); returns the frames [n + 1, H, W, 3] and the actions between them [n, A]."""
    rng = np.random.default_rng([seed, 7])
    frames, actions = [sim.reset(seed)], []
    for _ in range(least + int(rng.integers(0, random_start + 1))):
        actions.append(random_action(sim.spec, rng))
        frame, ended = sim.step(actions[-1])
        if ended:
            break
        frames.append(frame)
    actions = actions[:len(frames) - 1]
    return np.stack(frames), np.array(actions, np.float32).reshape(len(actions), sim.spec.dim)


def last_context(frames: np.ndarray, actions: np.ndarray, context: int) -> tuple[np.ndarray, np.ndarray]:
    """The last `context` frames and the `context - 1` actions between them."""
    return frames[len(frames) - context:], actions[len(actions) - (context - 1):] if context > 1 else actions[:0]

