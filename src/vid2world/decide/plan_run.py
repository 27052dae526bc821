"""`vid2world plan`: episodes in the real game played by CEM through a world model, by CEM through the real
simulator (restored state: the upper bound), and by baseline policies, all from the same seeded starts; the real
return of each, with bootstrap intervals over episodes."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from ..data.sim import make_simulator
from ..io.progress import progress_bar
from .catalog import make_policy
from .heads import RewardHead
from .plan import PlanConfig, cem
from .rollouts import run_real
from .sim_env import last_context, start_frames

Scorer = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class PlanRunConfig:
    env: str
    episodes: int = 8
    steps: int = 60  # real steps per episode
    context: int = 2
    random_start: int = 20
    seed: int = 0
    baselines: tuple[str, ...] = ("random",)


class RewardObjective:
    """Candidates scored by reward: the outcome head's expected rewards on imagined frames, the game's own in the
    real simulator."""

    def __init__(self, head: RewardHead) -> None:
        self.head = head

    def imagined(self, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        return self.head.expected_rewards(before, after)

    def real(self, rewards: np.ndarray, frames: np.ndarray, seen: np.ndarray) -> np.ndarray:
        """The game's rewards [P, T] summed per candidate (a step after the game ended scores 0)."""
        return rewards.sum(1)


def world_model_scorer(model, sampling, objective, frames: np.ndarray, actions: np.ndarray, seed: int) -> Scorer:
    """Candidates as the rows of one session from the last real frames [L, H, W, 3] (and the actions between
    them [L - 1, A]); a candidate's score is the objective summed over its imagined steps."""
    def score(sequences: np.ndarray) -> np.ndarray:
        p = len(sequences)
        session = model.session(np.repeat(frames[None], p, 0),
                                np.repeat(actions[None], p, 0) if len(actions) else None, seed=seed,
                                sampling=sampling)
        before, total = np.repeat(frames[-1:], p, 0), np.zeros(p)
        for t in range(sequences.shape[1]):
            after = np.asarray(session.step(sequences[:, t]))
            total += objective.imagined(before, after)
            before = after
        return total
    return score


def simulator_scorer(sim, objective) -> Scorer:
    """Each candidate played in the real game from its saved state, which is restored after each; scored by the
    objective over the real steps it played (until the game ended), all candidates' frames in one call."""
    def score(sequences: np.ndarray) -> np.ndarray:
        state, (p, t) = sim.snapshot(), sequences.shape[:2]
        rewards, seen = np.zeros((p, t)), np.zeros((p, t), bool)
        frames = np.zeros((p, t, sim.size, sim.size, 3), np.uint8)
        for row, sequence in enumerate(sequences):
            sim.restore(state)
            before = None
            for step, action in enumerate(sequence):
                after, ended = sim.step(action)
                rewards[row, step] = sim.last_reward
                shown = after if after is not None else before  # the game ended: the last frame it showed
                if shown is not None:
                    frames[row, step], seen[row, step] = shown, True
                if ended:
                    break
                before = after
        sim.restore(state)
        return objective.real(rewards, frames, seen)
    return score


def planned_episode(sim, frames: np.ndarray, actions: np.ndarray, config: PlanRunConfig, plan: PlanConfig,
                    scorer: Callable[[Any, np.ndarray, np.ndarray, int], Scorer], rng: np.random.Generator) -> float:
    """One real episode on from `sim`'s present (`frames` and the `actions` between them led there), every
    action chosen by CEM under `scorer(sim, frames, actions, step)`; returns the game's return over
    `config.steps` steps."""
    total = 0.0
    for step in range(config.steps):
        if step % plan.hold == 0:  # a new plan; its first action is held `plan.hold` steps
            window, past = last_context(frames, actions, config.context)
            action = cem(scorer(sim, window, past, step), sim.spec, plan, rng)
        frame, ended = sim.step(action)
        total += sim.last_reward
        if ended:
            break
        # only the window is kept: the model sees the last `context` frames
        frames = np.concatenate([frames[len(frames) - config.context:], frame[None]])
        actions = np.concatenate([actions[len(actions) - config.context + 1:], action[None]])
    return total


def interval(returns: list[float], seed: int = 0, resamples: int = 2000) -> dict[str, float]:
    x = np.asarray(returns, float)
    means = np.random.default_rng(seed).choice(x, (resamples, len(x))).mean(1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"mean": float(x.mean()), "low": float(low), "high": float(high)}


def run_planning(config: PlanRunConfig, plan: PlanConfig, model=None, sampling=None, head: RewardHead | None = None,
                 use_simulator: bool = True, progress: bool = True) -> dict[str, Any]:
    """Every player's real returns from the same starts (see the module doc); results.json's content."""
    sim = make_simulator(config.env, model.metadata["frame_size"][0] if model is not None else 64)
    size = sim.size
    seeds = [config.seed * 100_003 + 50_000 + e for e in range(config.episodes)]
    players: dict[str, Callable[[Any, np.ndarray, np.ndarray, int], Scorer]] = {}
    objective = RewardObjective(head) if head is not None else None
    if model is not None:
        players["plan: world model"] = lambda s, f, a, t: world_model_scorer(model, sampling, objective, f, a, t)
    if use_simulator:
        players["plan: real simulator"] = lambda s, f, a, t: simulator_scorer(s, RewardObjective(head))
    rows = []
    for name, scorer in players.items():
        started, returns = time.time(), []
        for seed in progress_bar(seeds, desc=name, unit="episode", enabled=progress):
            frames, actions = start_frames(sim, seed, config.random_start, least=config.context - 1)
            rng = np.random.default_rng([seed, 3])
            returns.append(planned_episode(sim, frames, actions, config, plan, scorer, rng))
        seconds = (time.time() - started) / max(1, config.episodes * config.steps)
        rows.append({"player": name, "returns": returns, **interval(returns), "seconds_per_step": seconds})
    for word in config.baselines:
        policy = make_policy(word, sim.spec, sim.scripted_action)
        run = run_real(config.env, seeds, config.context, config.random_start, size, policy, config.steps, 0)
        returns = run.rewards.sum(1).tolist()
        rows.append({"player": policy.name, "returns": returns, **interval(returns)})
    sim.close()
    return {"config": asdict(config), "plan": asdict(plan), "players": rows}
