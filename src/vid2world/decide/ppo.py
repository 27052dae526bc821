"""`vid2world policy-train`: PPO (stable-baselines3) over the real simulator, saved at several stages of training
(policies of graded skill for `policy-eval`). OUT/ppo-<steps>.zip per stage, OUT/train.json: the settings and each
stage's mean episode return over the last episodes SB3 logged."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..io.atomic import atomic_file
from .sb3_policy import learn_with_progress, ppo_class
from .sim_env import SimulatorEnv


@dataclass(frozen=True)
class PPOConfig:
    env: str
    stages: tuple[int, ...]  # total environment steps at which a policy is saved, increasing
    envs: int = 8
    max_steps: int = 200
    size: int = 64
    seed: int = 0
    n_steps: int = 128  # rollout length per env between updates
    lr: float = 2.5e-4

    def __post_init__(self) -> None:
        if not self.stages or list(self.stages) != sorted(set(self.stages)) or self.stages[0] < 1:
            raise ValueError(f"--stages: increasing positive step counts, got {list(self.stages)}")


def train_ppo(cfg: PPOConfig, out: Path, progress: bool = True) -> list[dict]:
    """Train and save each stage (a stage already saved is kept and training goes on from the latest one)."""
    from stable_baselines3.common.env_util import make_vec_env

    PPO = ppo_class()

    out.mkdir(parents=True, exist_ok=True)
    venv = make_vec_env(lambda: SimulatorEnv(cfg.env, cfg.size, cfg.max_steps), n_envs=cfg.envs, seed=cfg.seed)
    done = [s for s in cfg.stages if (out / f"ppo-{s}.zip").is_file()]
    if done:
        model = PPO.load(out / f"ppo-{done[-1]}.zip", env=venv, device="cpu")
    else:
        model = PPO("CnnPolicy", venv, n_steps=cfg.n_steps, batch_size=256, n_epochs=4, learning_rate=cfg.lr,
                    ent_coef=0.01, clip_range=0.1, seed=cfg.seed, device="cpu", verbose=0)
    record_path = out / "train.json"
    records = json.loads(record_path.read_text())["stages"] if record_path.is_file() else []
    for stage in cfg.stages:
        if stage in done:
            continue
        started = time.time()
        learn_with_progress(model, stage - model.num_timesteps, f"PPO {cfg.env} to {stage}", progress, reset=False)
        with atomic_file(out / f"ppo-{stage}.zip") as tmp:
            model.save(tmp)
        returns = [e["r"] for e in model.ep_info_buffer]
        records.append({"steps": stage, "wall_s": round(time.time() - started, 1),
                        "mean_return_last_episodes": round(sum(returns) / max(len(returns), 1), 3)})
        with atomic_file(record_path) as tmp:
            Path(tmp).write_text(json.dumps({"config": asdict(cfg), "stages": records}, indent=1))
        print(f"PPO {cfg.env}: {stage} steps saved to {out / f'ppo-{stage}.zip'} ({records[-1]})")
    venv.close()
    return records
