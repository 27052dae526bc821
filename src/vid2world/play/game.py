"""One player's game, without the web: the world model as a `WorldModelEnv`, the real simulator beside it under the
same actions (bundled models name theirs), the action held now, and a recording. `server` drives one per
connection; everything here is plain synchronous Python, called from one worker thread."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..world.env import EnvConfig, WorldModelEnv
from ..world.spaces import to_vector


@dataclass(frozen=True)
class PlayConfig:
    max_sessions: int = 4  # players at once; one more is told the server is busy
    preset: str = "fast"  # the model's sampling preset at the start (the page's sliders change it)
    side_by_side: bool = True  # step the real simulator beside the model when the model names one
    max_record_frames: int = 3000  # a recording stops growing here (about 10 minutes at 5 frames/s)
    queue_frames: int = 2  # frames waiting for a slow client before the oldest is dropped
    allowed_origins: tuple[str, ...] = ()  # page origins besides the server's own (e.g. behind a proxy)
    # CPU threads for the model (`serve` sets them): the browser and the real game share the machine's cores, and
    # two model threads spinning against them played slower on 2 cores (2.4 frames/s against 3.8 with one)
    threads: int = 1


def noop_action(space: Any) -> Any:
    """The action of a player who presses nothing, in the page's JSON form: no buttons, no turn, zeros."""
    import gymnasium as gym

    if isinstance(space, gym.spaces.Dict):
        return {k: noop_action(s) for k, s in space.spaces.items()}
    if isinstance(space, gym.spaces.Discrete):
        return 0
    return [0.0] * int(np.prod(space.shape))


class Game:
    def __init__(self, model: Any, config: PlayConfig, data: Any = None) -> None:
        self.env = WorldModelEnv(model, EnvConfig(preset=config.preset), data=data)
        self.config = config
        env_id = model.metadata.get("env")
        self.real = None
        if config.side_by_side and env_id and data is None:
            from ..data.sim import make_simulator

            self.real = make_simulator(env_id, self.env.observation_space.shape[0])
        self.action = self.default_action()
        self.recording: list[np.ndarray] | None = None
        self.real_frame: np.ndarray | None = None
        self.real_ended = False

    def default_action(self) -> Any:
        """The no-op as a space member (a one-hot group's 'no turn' where it has one)."""
        spec = self.env.action_spec
        noop = noop_action(self.env.action_space)
        if spec is not None and isinstance(noop, dict):
            for g in spec.groups:
                if g.kind == "one_hot" and 0.0 in g.values:
                    noop[g.name] = list(g.values).index(0.0)
        return noop

    @property
    def episodes(self) -> int:
        """Episodes of the dataset games start from (0 without one)."""
        return 0 if self.env.starts.data is None else len(self.env.starts.data)

    def layout(self) -> dict[str, Any]:
        """What the page needs to map keys and sliders to actions, and to draw."""
        spec = self.env.action_spec
        sampling = self.env.config.sampling(self.env.model)
        return {"groups": [] if spec is None else [g.to_dict() for g in spec.groups],
                "dict": spec is not None and len(spec.groups) > 1, "noop": self.default_action(),
                "frame_size": list(self.env.observation_space.shape[:2]), "side_by_side": self.real is not None,
                "steps": sampling.steps, "guidance": sampling.guidance, "precision": sampling.precision,
                "episodes": self.episodes,
                "name": self.env.model.metadata.get("name", "")}

    def reset(self, seed: int | None = None, episode: int | None = None) -> dict[str, Any]:
        seed = int(np.random.default_rng().integers(2 ** 31)) if seed is None else seed
        options = None if episode is None else {"episode": episode}
        if self.real is not None:
            self.real_frame, self.real_ended = self.real.reset(seed), False
            options = {"frames": self.real_frame[None]}
        frame, _ = self.env.reset(seed=seed, options=options)
        self._record(frame)
        return {"model": frame, "real": self.real_frame, "seed": seed, "latency_ms": 0.0}

    def step(self) -> dict[str, Any]:
        started = time.perf_counter()
        action = self.action
        frame = self.env.step(action)[0]
        latency = 1000 * (time.perf_counter() - started)
        if self.real is not None and not self.real_ended:
            real, self.real_ended = self.real.step(to_vector(self.env.action_spec, self.env.action_space, action))
            self.real_frame = self.real_frame if real is None else real
        self._record(frame)
        return {"model": frame, "real": self.real_frame, "latency_ms": latency}

    def _record(self, frame: np.ndarray) -> None:
        if self.recording is not None and len(self.recording) < self.config.max_record_frames:
            both = frame if self.real_frame is None or self.real is None else np.concatenate([frame, self.real_frame], 1)
            self.recording.append(both)

    def close(self) -> None:
        self.env.close()
        if self.real is not None:
            self.real.close()
