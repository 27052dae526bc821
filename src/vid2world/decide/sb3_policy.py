"""Policies trained with stable-baselines3 (PPO over the real simulator, `vid2world policy-train`) as `Policy`
objects: SB3's `predict` on the frames, its flat action turned into the env's raw action vectors. Only this module
and `ppo.py` import stable-baselines3."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.spec import ActionSpec
from ..world.spaces import action_space, flat_action_space, from_flat, to_vector


def ppo_class():
    """stable-baselines3's PPO, or a ValueError that says how to install it."""
    try:
        from stable_baselines3 import PPO
    except ImportError:
        raise ValueError("PPO policies need stable-baselines3: pip install 'vid2world[decide]'") from None
    return PPO


def learn_with_progress(model, steps: int, desc: str, progress: bool, reset: bool = True) -> None:
    """`model.learn(steps)` reporting through the house's progress bar (SB3's own bar writes nothing to a log):
    steps done, their rate, and the mean return of the latest episodes."""
    from stable_baselines3.common.callbacks import BaseCallback

    from ..io.progress import progress_bar

    class Report(BaseCallback):
        def _on_training_start(self) -> None:
            self.bar = progress_bar(total=steps, desc=desc, unit="step", enabled=progress)
            self.first, self.shown = self.model.num_timesteps, 0

        def _on_step(self) -> bool:
            done = min(steps, self.model.num_timesteps - self.first)
            returns = [e["r"] for e in self.model.ep_info_buffer]
            if returns:
                self.bar.set_postfix(mean_return=round(float(np.mean(returns)), 2))
            self.bar.update(done - self.shown)
            self.shown = done
            return True

        def _on_training_end(self) -> None:
            self.bar.close()

    model.learn(steps, reset_num_timesteps=reset, callback=Report())


class SB3Policy:
    """A saved SB3 model (`.zip`) acting on frames; `deterministic`: its most likely action, else a sample."""

    def __init__(self, path: str | Path, spec: ActionSpec, deterministic: bool = False, name: str | None = None):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"policy sb3:{path}: no such file (a stable-baselines3 .zip)")
        self.model = ppo_class().load(path, device="cpu")
        self.spec, self.deterministic = spec, deterministic
        self.model_space = action_space(spec)
        expected = flat_action_space(spec, self.model_space)
        if self.model.action_space != expected:
            raise ValueError(f"policy sb3:{path}: its action space {self.model.action_space} is not this env's "
                             f"{expected}")
        self.name = name or path.stem

    def reset(self, rows: int, seed: int) -> None:
        self.model.set_random_seed(seed)

    def act(self, frames: np.ndarray) -> np.ndarray:
        actions, _ = self.model.predict(np.asarray(frames), deterministic=self.deterministic)
        return np.stack([to_vector(self.spec, self.model_space, from_flat(self.spec, self.model_space, a))
                         for a in actions])
