"""`WorldModelEnv`: a world model as a gymnasium environment, one frame per `step`, through a cached session.

The observation is the frame (uint8 [H, W, 3]); the action space comes from the model's metadata (`spaces`).
An episode starts (`reset(seed, options)`) from:
- `options={"frames": uint8 [T0, H, W, 3], "actions": [T0-1, A]}`: given context frames;
- `options={"episode": i, "start": s}`: a window of the dataset the env was made with (`data=`);
- `options={"simulator_seed": n}`: the first frame of the real simulator the model was trained on
  (`metadata["env"]`, e.g. `vizdoom:deathmatch`);
- no options: a random episode of `data` if given, else a simulator start drawn from the seed.
Rewards are 0 and episodes never terminate (truncation only at `EnvConfig.max_steps`): a world model predicts frames,
not rewards. Attach an outcome model (`outcome=`, e.g. a reward head from `vid2world head train`) and each step's
reward and termination are its reading of the frame before and the frame after. `WorldModelVectorEnv` steps N rows as one batched session and resets
rows independently (`options={"reset_mask": [...]}`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from .spaces import action_space, model_spec, to_vector


@dataclass(frozen=True)
class EnvConfig:
    preset: str = "fast"  # the model's sampling preset (`WorldModel.sampling`): fast or quality
    steps: int | None = None  # DDIM steps instead of the preset's
    guidance: float | None = None  # guidance scale instead of the preset's
    context: int = 1  # context frames taken from a dataset episode
    max_steps: int | None = None  # truncate an episode after this many steps (None: never)

    def session(self, model: Any, frames: np.ndarray, actions: np.ndarray | None, seed: int) -> Any:
        """A session of `model` from context frames [B, T0, H, W, 3] under this config's sampling."""
        return model.session(frames, actions, seed=seed, sampling=self.sampling(model))

    def sampling(self, model: Any) -> Any:
        """The `Sampling` this config asks of `model`: its preset with the config's steps and guidance."""
        return model.sampling(self.preset, steps=self.steps, guidance=self.guidance)


class OutcomeModel(Protocol):
    """Rewards [N] and terminations [N] bool read from the frames before and after N steps (uint8 [N, H, W, 3])."""

    def outcomes(self, before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def read_outcomes(outcome: OutcomeModel | None, before: np.ndarray, after: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """`outcome`'s rewards (float) and terminations (bool) of N steps; zeros and False without one."""
    if outcome is None:
        return np.zeros(len(after)), np.zeros(len(after), bool)
    rewards, ended = outcome.outcomes(before, after)
    return np.asarray(rewards, np.float64), np.asarray(ended, bool)


def check_one_frame_per_step(model: Any) -> None:
    """An environment steps one frame per action; a codec that compresses time makes k per latent step."""
    k = getattr(model, "frames_per_step", 1)
    if k != 1:
        raise ValueError(f"this world model makes {k} frames per step (its codec compresses time {k}x); the "
                         "environment steps one frame per action: roll it out with WorldModel.session or rollout")


class Starts:
    """Where episodes start: given frames, a dataset's windows or the model's simulator (see module doc); and what
    the model's episodes look like (`spec`, `frame_size`)."""

    def __init__(self, model: Any, data: Any, context: int) -> None:
        from ..data.store import Dataset, open_dataset

        self.model, self.context = model, context
        self.data = open_dataset(data) if data is not None and not isinstance(data, Dataset) else data
        self.action_spec = model_spec(model, self.data)
        self._simulator = None

    @property
    def frame_size(self) -> tuple[int, int]:
        if "frame_size" in self.model.metadata:
            return tuple(self.model.metadata["frame_size"])
        if self.data is not None:
            return tuple(self.data.meta.frame_size)
        raise ValueError("WorldModelEnv: the model's metadata has no 'frame_size'; give a dataset (data=DIR)")

    def spaces(self) -> tuple[gym.Space, gym.Space]:
        """The observation space (uint8 frames) and the action space of one episode."""
        return gym.spaces.Box(0, 255, (*self.frame_size, 3), np.uint8), action_space(self.action_spec)

    def __call__(self, options: dict[str, Any] | None, rng: np.random.Generator) -> tuple[np.ndarray, Any]:
        """Context frames uint8 [T0, H, W, 3] and the actions between them ([T0-1, A] or None)."""
        options = dict(options or {})
        options.pop("reset_mask", None)
        if "frames" in options:
            actions = options.get("actions")
            return np.asarray(options["frames"]), None if actions is None else np.asarray(actions, np.float32)
        if "episode" in options or ("simulator_seed" not in options and self.data is not None):
            return self._from_data(options, rng)
        seed = options.get("simulator_seed", int(rng.integers(2 ** 31)))
        return self._from_simulator(int(seed))

    def _from_data(self, options: dict[str, Any], rng: np.random.Generator) -> tuple[np.ndarray, Any]:
        if self.data is None:
            raise ValueError("reset: options={'episode': ...} needs a dataset (WorldModelEnv(model, data=DIR))")
        episode = int(options.get("episode", rng.integers(len(self.data))))
        if not 0 <= episode < len(self.data):
            raise ValueError(f"reset: episode must be in 0..{len(self.data) - 1}, got {episode}")
        ep = self.data.episode(episode)
        last = len(ep.frames) - self.context
        start = int(options.get("start", rng.integers(last + 1) if "episode" not in options else 0))
        if not 0 <= start <= last:
            raise ValueError(f"reset: start must be in 0..{last} for episode {episode} ({len(ep.frames)} frames, "
                             f"{self.context} of context), got {start}")
        frames = np.asarray(ep.frames[start:start + self.context])
        actions = None if self.action_spec is None or ep.actions is None else \
            np.asarray(ep.actions[start:start + self.context - 1], np.float32)
        return frames, actions

    def _from_simulator(self, seed: int) -> tuple[np.ndarray, None]:
        env_id = self.model.metadata.get("env")
        if env_id is None:
            raise ValueError("reset: this model names no simulator (metadata 'env'); give options={'frames': ...} "
                             "or a dataset (data=DIR)")
        if self._simulator is None:
            from ..data.sim import make_simulator

            self._simulator = make_simulator(env_id, self.frame_size[0])
        return self._simulator.reset(seed)[None], None

    def close(self) -> None:
        if self._simulator is not None:
            self._simulator.close()
            self._simulator = None


class WorldModelEnv(gym.Env):
    """One world-model episode at a time (see module doc). `model`: a `WorldModel`; `data`: a dataset directory
    (or `Dataset`) to start from; `config`: sampling and episode settings; `outcome`: rewards and terminations."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, model: Any, config: EnvConfig = EnvConfig(), data: Any = None,
                 render_mode: str | None = "rgb_array", outcome: OutcomeModel | None = None) -> None:
        self.model, self.config, self.render_mode, self.outcome = model, config, render_mode, outcome
        config.sampling(model)  # validates the preset's name and the overrides before any work
        check_one_frame_per_step(model)
        self.starts = Starts(model, data, config.context)
        self.action_spec = self.starts.action_spec
        self.observation_space, self.action_space = self.starts.spaces()
        self.metadata = {**self.metadata, "render_fps": model.metadata.get("fps", 10)}
        self.session, self.frame, self.steps_taken = None, None, 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        frames, actions = self.starts(options, self.np_random)
        self.session = self.config.session(self.model, frames[None], None if actions is None else actions[None],
                                           int(self.np_random.integers(2 ** 31)))
        self.frame, self.steps_taken = np.array(frames[-1]), 0
        return self.frame.copy(), {"context_frames": len(frames)}

    def step(self, action: Any):
        if self.session is None:
            raise RuntimeError("step: call reset() first")
        vector = to_vector(self.action_spec, self.action_space, action)
        before, self.frame = self.frame, self.session.step(None if vector is None else vector[None])[0]
        self.steps_taken += 1
        truncated = self.config.max_steps is not None and self.steps_taken >= self.config.max_steps
        reward, terminated = read_outcomes(self.outcome, before[None], self.frame[None])
        return self.frame.copy(), float(reward[0]), bool(terminated[0]), truncated, {}

    def set_sampling(self, steps: int | None = None, guidance: float | None = None) -> None:
        """New DDIM steps or guidance from the next step on and for the episodes after it. The episode's history
        is kept (`RolloutSession.set_sampling`) unless the new steps move the model's history level: then the
        episode goes on from the current frame alone."""
        config = replace(self.config, steps=steps or self.config.steps,
                         guidance=self.config.guidance if guidance is None else guidance)
        if self.session is not None:
            try:
                self.session.set_sampling(steps, guidance)
            except ValueError:
                if steps is None:
                    raise
                self.session = config.session(self.model, self.frame[None, None], None,
                                              int(self.np_random.integers(2 ** 31)))
        self.config = config  # only once the session took it: a refused value leaves the env as it was

    def render(self) -> np.ndarray | None:
        return None if self.frame is None else self.frame.copy()

    def close(self) -> None:
        self.starts.close()
        self.session = None
