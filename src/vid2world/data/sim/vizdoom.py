"""ViZDoom (Freedoom maps and the scenarios shipped in the wheel), with one action space for every scenario:
multi-hot buttons plus a one-hot turn over binned angles."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import vizdoom as vzd

from ...io.processes import end_with_this_process
from ..spec import ActionGroup, ActionSpec
from .base import Simulator

BUTTONS = (("forward", vzd.Button.MOVE_FORWARD), ("backward", vzd.Button.MOVE_BACKWARD),
           ("strafe_left", vzd.Button.MOVE_LEFT), ("strafe_right", vzd.Button.MOVE_RIGHT),
           ("attack", vzd.Button.ATTACK))
TURN_DEGREES = (-24.0, -12.0, -4.0, 0.0, 4.0, 12.0, 24.0)  # per step; positive turns right
TICS_PER_STEP = 4  # 35 tics/s -> 8.75 steps/s


class VizDoom(Simulator):
    fps = 35.0 / TICS_PER_STEP

    def __init__(self, scenario: str, size: int) -> None:
        super().__init__(size)
        scenarios = sorted(f[:-4] for f in os.listdir(vzd.scenarios_path) if f.endswith(".cfg"))
        if scenario not in scenarios:
            raise ValueError(f"vizdoom:{scenario}: unknown scenario; the wheel ships {scenarios}")
        self.env_id = f"vizdoom:{scenario}"
        self.spec = ActionSpec((
            ActionGroup("buttons", "multi_hot", tuple(name for name, _ in BUTTONS)),
            ActionGroup("turn", "one_hot", tuple(f"{d:+g}" for d in TURN_DEGREES), values=TURN_DEGREES)))
        game = vzd.DoomGame()
        game.load_config(os.path.join(vzd.scenarios_path, f"{scenario}.cfg"))
        # ViZDoom writes its settings file into the working directory unless told otherwise
        game.set_doom_config_path(os.path.join(tempfile.gettempdir(), "vid2world_vizdoom.ini"))
        game.set_window_visible(False)
        game.set_sound_enabled(False)
        game.set_screen_resolution(vzd.ScreenResolution.RES_160X120)
        game.set_screen_format(vzd.ScreenFormat.RGB24)
        game.set_available_buttons([b for _, b in BUTTONS] + [vzd.Button.TURN_LEFT_RIGHT_DELTA])
        game.set_mode(vzd.Mode.PLAYER)
        with end_with_this_process() as self.processes:  # the game runs as a child that ignores SIGTERM
            game.init()
        self.game = game

    def reset(self, seed: int) -> np.ndarray:
        self.game.set_seed(int(seed) % (2 ** 31))
        self.game.new_episode()
        self.last_reward = 0.0
        return self.resize(self.game.get_state().screen_buffer)

    def step(self, action: np.ndarray) -> tuple[np.ndarray | None, bool]:
        buttons = [float(v > 0.5) for v in action[: len(BUTTONS)]]
        turn = TURN_DEGREES[int(np.argmax(action[len(BUTTONS):]))] / TICS_PER_STEP  # the delta applies every tic
        self.last_reward = float(self.game.make_action(buttons + [turn], TICS_PER_STEP))
        if self.game.is_episode_finished():
            return None, True
        return self.resize(self.game.get_state().screen_buffer), False

    def scripted_action(self, rng: np.random.Generator) -> np.ndarray:
        """Mostly walk forward, sometimes strafe or back off; turn in one direction for a while; fire in bursts."""
        buttons = np.zeros(len(BUTTONS), np.float32)
        move = rng.choice(["forward", "forward", "forward", "backward", "strafe_left", "strafe_right", "none"])
        if move != "none":
            buttons[[n for n, _ in BUTTONS].index(move)] = 1.0
        buttons[-1] = float(rng.random() < 0.25)
        turn = np.zeros(len(TURN_DEGREES), np.float32)
        turn[rng.choice(len(TURN_DEGREES), p=[0.1, 0.15, 0.1, 0.3, 0.1, 0.15, 0.1])] = 1.0
        return np.concatenate([buttons, turn])

    def settings(self) -> dict[str, object]:
        return {"tics_per_step": TICS_PER_STEP, "native_resolution": [120, 160], "turn_degrees_per_step":
                list(TURN_DEGREES), "episode_timeout_tics": int(self.game.get_episode_timeout())}

    def close(self) -> None:
        self.game.close()
