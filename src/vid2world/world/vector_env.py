"""`WorldModelVectorEnv`: N world-model episodes stepped together as one batched session (one UNet call per
denoising step for all rows), each row reset on its own (`options={"reset_mask": bool [N]}`) without touching the
others (`RolloutSession.reset`). Same starts, spaces and rewards (an `outcome` model's) as `WorldModelEnv`; autoreset
is disabled: a row that terminates or is truncated at `EnvConfig.max_steps` is reported, and the caller resets it."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import batch_space, iterate

from .env import EnvConfig, OutcomeModel, Starts, check_one_frame_per_step, read_outcomes
from .spaces import to_vector


class WorldModelVectorEnv(gym.vector.VectorEnv):
    metadata = {"render_modes": ["rgb_array"], "autoreset_mode": gym.vector.AutoresetMode.DISABLED}

    def __init__(self, model: Any, num_envs: int, config: EnvConfig = EnvConfig(), data: Any = None,
                 outcome: OutcomeModel | None = None) -> None:
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.model, self.config, self.num_envs, self.outcome = model, config, int(num_envs), outcome
        config.sampling(model)  # validates the preset's name and the overrides before any work
        check_one_frame_per_step(model)
        self.starts = Starts(model, data, config.context)
        self.action_spec = self.starts.action_spec
        self.single_observation_space, self.single_action_space = self.starts.spaces()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.session, self.frames = None, None
        self.steps_taken = np.zeros(self.num_envs, np.int64)
        self.row_rngs = [np.random.default_rng(i) for i in range(self.num_envs)]

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None):
        """All rows, or those of `options["reset_mask"]`; row i's start and noise follow seed + i, or `seed[i]`
        for a list (one entry per row, None keeps that row's generator; a masked reset reads its rows' entries)."""
        mask = np.ones(self.num_envs, bool) if options is None or "reset_mask" not in options else \
            np.asarray(options["reset_mask"], bool)
        if mask.shape != (self.num_envs,):
            raise ValueError(f"reset: options['reset_mask'] must be {self.num_envs} booleans, got shape {mask.shape}")
        rows = [int(i) for i in np.flatnonzero(mask)]
        for row, s in zip(rows, self._row_seeds(seed, rows)):
            if s is not None:
                self.row_rngs[row] = np.random.default_rng(s)
        starts = [self.starts(options, self.row_rngs[r]) for r in rows]
        frames = np.stack([f for f, _ in starts])
        actions = None if starts[0][1] is None else np.stack([a for _, a in starts])
        session_seeds = [int(self.row_rngs[r].integers(2 ** 31)) for r in rows]
        if self.session is None or len(rows) == self.num_envs:
            if len(rows) != self.num_envs:
                raise ValueError("reset: the first reset starts every row (no reset_mask)")
            self.session = self.config.session(self.model, frames, actions, session_seeds[0])
            self.frames = frames[:, -1].copy()
        else:
            for i, row in enumerate(rows):
                self.session.reset([row], frames[i:i + 1], None if actions is None else actions[i:i + 1],
                                   seed=session_seeds[i])
                self.frames[row] = frames[i, -1]
        self.steps_taken[rows] = 0
        return self.frames.copy(), {}

    def _row_seeds(self, seed: Any, rows: list[int]) -> list[int | None]:
        """The seed of each row in `rows`: `seed + row` for one int, `seed[row]` for a list of one per row."""
        if seed is None:
            return [None] * len(rows)
        if not isinstance(seed, (list, tuple, np.ndarray)):
            first = _checked_seed(seed, "seed")
            return [first + row for row in rows]
        if len(seed) != self.num_envs:
            raise ValueError(f"reset: seed must be one int or a list of {self.num_envs} (one per row, None keeps "
                             f"a row's generator), got {len(seed)} entries")
        return [None if seed[row] is None else _checked_seed(seed[row], f"seed for row {row}") for row in rows]

    def step(self, actions: Any):
        if self.session is None:
            raise RuntimeError("step: call reset() first")
        vectors = [to_vector(self.action_spec, self.single_action_space, a) for a in iterate(self.action_space, actions)]
        batch = None if self.action_spec is None else np.stack(vectors)
        before, self.frames = self.frames, np.asarray(self.session.step(batch))
        self.steps_taken += 1
        truncated = np.zeros(self.num_envs, bool) if self.config.max_steps is None else \
            self.steps_taken >= self.config.max_steps
        rewards, terminated = read_outcomes(self.outcome, before, self.frames)
        return self.frames.copy(), rewards, terminated, truncated, {}

    def render(self) -> np.ndarray | None:
        return None if self.frames is None else self.frames.copy()

    def close_extras(self, **kwargs: Any) -> None:
        self.starts.close()
        self.session = None


def _checked_seed(value: Any, what: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"reset: {what} must be a non-negative integer, got {value!r}")
    return int(value)
