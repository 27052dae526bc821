"""The simulator interface and the registry of environment ids (`vizdoom:deathmatch`, `atari:Breakout`,
`crafter`, `pusht`)."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod

import numpy as np

from ..spec import ActionSpec
from ..transforms import resize_uint8

# id prefix -> (module, class); a module is imported only when its simulator is asked for
_REGISTRY = {"vizdoom": (".vizdoom", "VizDoom"), "atari": (".atari", "Atari"), "crafter": (".crafter", "Crafter"),
             "pusht": (".pusht", "PushT")}


class Simulator(ABC):
    """One environment producing RGB frames for per-frame actions in the space `spec`."""

    env_id: str
    spec: ActionSpec
    fps: float
    # the game's reward for the last `step` (its score change), 0 after `reset`: real outcomes, against which
    # outcome heads and imagined returns are checked (decide/)
    last_reward: float = 0.0
    # names of the simulator's state recorded beside each frame (`state()`); empty: none
    state_names: tuple[str, ...] = ()

    def __init__(self, size: int) -> None:
        self.size = size

    @abstractmethod
    def reset(self, seed: int) -> np.ndarray:
        """Start an episode determined by `seed`; returns the first frame, uint8 [size, size, 3]."""

    @abstractmethod
    def step(self, action: np.ndarray) -> tuple[np.ndarray | None, bool]:
        """Apply an action vector; returns (the next frame or None when the episode ended, ended)."""

    @abstractmethod
    def scripted_action(self, rng: np.random.Generator) -> np.ndarray:
        """An action a purposeful player might hold for a while (walk, turn, fire), for `HoldPolicy`."""

    def state(self) -> np.ndarray:
        """The state named by `state_names` now (float32)."""
        return np.zeros(0, np.float32)

    def snapshot(self) -> object:
        """The game's whole state, for `restore` (planning with the real game as its own model)."""
        raise NotImplementedError(f"{self.env_id}: this simulator cannot save and restore its state")

    def restore(self, state: object) -> None:
        raise NotImplementedError(f"{self.env_id}: this simulator cannot save and restore its state")

    def settings(self) -> dict[str, object]:
        """What a recording needs to say about the simulator (stored in the dataset metadata)."""
        return {}

    def close(self) -> None:
        pass

    def resize(self, frame: np.ndarray) -> np.ndarray:
        return resize_uint8(frame[None], (self.size, self.size))[0]


def simulator_ids() -> list[str]:
    return ["vizdoom:<scenario>", "atari:<Game>", "crafter", "pusht"]


def make_simulator(env_id: str, size: int = 64) -> Simulator:
    """`vizdoom:deathmatch` | `vizdoom:my_way_home` | ... | `atari:Breakout` (any ALE game) | `crafter` |
    `pusht`."""
    kind, _, name = env_id.partition(":")
    if kind not in _REGISTRY:
        raise ValueError(f"unknown environment {env_id!r}: expected one of {simulator_ids()}")
    module, cls = _REGISTRY[kind]
    try:
        sim_cls = getattr(importlib.import_module(module, __package__), cls)
    except ImportError as err:
        raise ValueError(f"environment {env_id!r} needs the simulator package ({err}); "
                         "install the extra: pip install 'vid2world[sim]'") from err
    return sim_cls(name, size)
