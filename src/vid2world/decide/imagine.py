"""`vid2world imagine`: an actor-critic agent (stable-baselines3's PPO) trained only inside a world model, its
rewards the outcome head's reading of the imagined frames (DIAMOND's recipe with a library agent), then played
in the real game against baselines from the same starts.

    OUT/agent.zip       the agent (an `sb3:` policy for policy-eval and plan)
    OUT/results.json    the settings, the training's wall time, the real returns of the agent and the baselines
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ..io.atomic import atomic_file, write_text
from ..world.env import EnvConfig
from ..world.spaces import model_spec
from ..world.vector_env import WorldModelVectorEnv
from .catalog import make_policy
from .plan_run import interval
from .rollouts import run_real
from .sb3_policy import learn_with_progress, ppo_class


@dataclass(frozen=True)
class ImagineConfig:
    env: str
    steps: int  # environment steps of training (imagined frames)
    envs: int = 8  # imagined episodes stepped together (the rows of one session)
    episode_steps: int = 50  # an imagined episode's length before it restarts from a real first frame
    n_steps: int = 64  # PPO rollout length per row between updates
    seed: int = 0
    eval_episodes: int = 16
    eval_horizon: int = 100
    baselines: tuple[str, ...] = ("random",)


def train_in_imagination(model, head, env_config: EnvConfig, cfg: ImagineConfig, out: Path,
                         progress: bool = True) -> dict[str, Any]:
    """Train the agent inside `model` (sampling as `env_config` says; its max_steps is replaced by the config's
    episode length), save it and score it in the real game; returns results.json's content."""
    from ..world.sb3 import SB3VecEnv

    PPO = ppo_class()

    env_config = replace(env_config, max_steps=cfg.episode_steps)
    venv = SB3VecEnv(WorldModelVectorEnv(model, cfg.envs, env_config, outcome=head))
    venv.seed(cfg.seed)
    agent = PPO("CnnPolicy", venv, n_steps=cfg.n_steps, batch_size=128, n_epochs=4, learning_rate=2.5e-4,
                ent_coef=0.01, clip_range=0.1, seed=cfg.seed, device="cpu", verbose=0)
    started = time.time()
    learn_with_progress(agent, cfg.steps, "PPO in imagination", progress)
    wall = time.time() - started
    out.mkdir(parents=True, exist_ok=True)
    with atomic_file(out / "agent.zip") as tmp:
        agent.save(tmp)
    size = model.metadata["frame_size"][0]
    seeds = [cfg.seed * 100_003 + 70_000 + e for e in range(cfg.eval_episodes)]
    rows = []
    for word in (f"sb3:{out / 'agent.zip'}", *cfg.baselines):
        policy = make_policy(word, model_spec(model))
        run = run_real(cfg.env, seeds, 1, 20, size, policy, cfg.eval_horizon, cfg.seed)
        returns = run.rewards.sum(1).tolist()
        rows.append({"player": "imagination-trained agent" if word.startswith("sb3:") else policy.name,
                     "returns": returns, **interval(returns)})
    results = {"config": asdict(cfg), "training_wall_s": round(wall, 1), "players": rows}
    write_text(out / "results.json", json.dumps(results, indent=1))
    return results

