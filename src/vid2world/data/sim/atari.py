"""Atari 2600 through the Arcade Learning Environment (ale-py ships the ROMs): one-hot over the game's minimal
action set, 4 frames per step, no sticky actions (the recorded action is the one applied)."""

from __future__ import annotations

import difflib
import re

import ale_py
import numpy as np
from ale_py import roms

from ..spec import ActionSpec
from .base import Simulator

FRAMESKIP = 4


def rom_id(game: str) -> str:
    """`Breakout` / `MontezumaRevenge` / `breakout` / gymnasium's `ALE/Pong-v5` -> ALE's rom id
    (`montezuma_revenge`, `pong`)."""
    game = re.sub(r"^ALE/|NoFrameskip|Deterministic|-v\d+$", "", game)
    return re.sub(r"(?<!^)(?=[A-Z])", "_", game).lower() if not game.islower() else game


class Atari(Simulator):
    fps = 60.0 / FRAMESKIP

    def __init__(self, game: str, size: int) -> None:
        super().__init__(size)
        known = sorted(roms.get_all_rom_ids())
        self.rom = rom_id(game)
        if self.rom not in known:
            near = difflib.get_close_matches(self.rom, known, n=3)
            raise ValueError(f"atari:{game}: ALE has no ROM {self.rom!r}" + (f"; did you mean {near}?" if near else ""))
        self.env_id = f"atari:{game}"
        self.ale = ale_py.ALEInterface()
        self.ale.setLoggerMode(ale_py.LoggerMode.Error)
        self.ale.setFloat("repeat_action_probability", 0.0)
        self.ale.loadROM(roms.get_rom_path(self.rom))
        self.actions = list(self.ale.getMinimalActionSet())
        self.spec = ActionSpec.one_hot([a.name for a in self.actions])

    def reset(self, seed: int) -> np.ndarray:
        self.ale.setInt("random_seed", int(seed) % (2 ** 31))
        self.ale.loadROM(roms.get_rom_path(self.rom))  # the seed takes effect when the ROM loads
        self.ale.reset_game()
        self.last_reward = 0.0
        return self.resize(self.ale.getScreenRGB())

    def step(self, action: np.ndarray) -> tuple[np.ndarray | None, bool]:
        chosen = self.actions[int(np.argmax(action))]
        self.last_reward = 0.0
        for _ in range(FRAMESKIP):
            self.last_reward += float(self.ale.act(chosen))
            if self.ale.game_over():
                return None, True
        return self.resize(self.ale.getScreenRGB()), False

    def snapshot(self) -> object:
        return self.ale.cloneState(), self.last_reward

    def restore(self, state: object) -> None:
        ale_state, self.last_reward = state
        self.ale.restoreState(ale_state)

    def scripted_action(self, rng: np.random.Generator) -> np.ndarray:
        """Hold one action (moves more often than no-op); games that need FIRE to serve get it regularly."""
        names = [a.name for a in self.actions]
        weights = np.array([0.3 if n == "NOOP" else (1.5 if "FIRE" == n else 1.0) for n in names])
        out = np.zeros(len(names), np.float32)
        out[rng.choice(len(names), p=weights / weights.sum())] = 1.0
        return out

    def settings(self) -> dict[str, object]:
        return {"rom": self.rom, "frameskip": FRAMESKIP, "repeat_action_probability": 0.0,
                "native_resolution": [210, 160]}
