"""Episodes of a policy from the same seeded starts, in the real simulator and inside a world model.

A start: the simulator reset from a seed, then random steps (`sim_env.start_frames`); its last `context` frames
are the world model's context. From there the policy acts on what it sees for `horizon` steps: the real frames in
the simulator (one simulator per episode, stepped in lockstep, so the policy acts on a batch), the imagined ones in
the model (one session of all episodes, sliding past the model's window).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.sim import make_simulator
from ..io.progress import progress_bar
from .sim_env import last_context, start_frames


@dataclass
class Starts:
    frames: np.ndarray  # [E, context, H, W, 3] uint8
    actions: np.ndarray  # [E, context - 1, A]


@dataclass
class Episodes:
    frames: np.ndarray  # [E, horizon + 1, H, W, 3]: the last context frame, then one per step
    actions: np.ndarray  # [E, horizon, A]
    rewards: np.ndarray | None  # [E, horizon]: the game's (real episodes only)
    alive: np.ndarray  # [E, horizon] bool: the step happened before the game ended
    states: np.ndarray | None = None  # [E, horizon + 1, S]: the simulator's state beside each frame (real only)


def real_starts(env: str, seeds: list[int], context: int, random_start: int, size: int) -> Starts:
    sim = make_simulator(env, size)
    try:
        pairs = [start_frames(sim, seed, random_start, least=context - 1) for seed in seeds]
    finally:
        sim.close()
    windows = [last_context(f, a, context) for f, a in pairs]
    return Starts(np.stack([f for f, _ in windows]), np.stack([a for _, a in windows]))


def run_real(env: str, seeds: list[int], context: int, random_start: int, size: int, policy, horizon: int,
             policy_seed: int, progress: bool = False) -> Episodes:
    """`policy` in the real simulator from the starts of `seeds` (the same as `real_starts`')."""
    sims = [make_simulator(env, size) for _ in seeds]
    try:
        current = np.stack([start_frames(sim, seed, random_start, least=context - 1)[0][-1]
                            for sim, seed in zip(sims, seeds)])
        e = len(seeds)
        frames, actions, states = [current], [], [np.stack([sim.state() for sim in sims])]
        rewards, alive = np.zeros((e, horizon), np.float32), np.zeros((e, horizon), bool)
        ended = np.zeros(e, bool)
        policy.reset(e, policy_seed)
        for t in progress_bar(range(horizon), desc=f"real {policy.name}", unit="step", enabled=progress):
            action = np.asarray(policy.act(current), np.float32)
            actions.append(action)
            current, state = current.copy(), states[-1].copy()
            for r, sim in enumerate(sims):
                if ended[r]:
                    continue
                frame, ended[r] = sim.step(action[r])
                alive[r, t], rewards[r, t], state[r] = True, sim.last_reward, sim.state()
                if frame is not None:
                    current[r] = frame
            frames.append(current)
            states.append(state)
    finally:
        for sim in sims:
            sim.close()
    return Episodes(np.stack(frames, 1), np.stack(actions, 1), rewards, alive, np.stack(states, 1))


def run_imagined(model, sampling, starts: Starts, policy, horizon: int, policy_seed: int, seed: int,
                 progress: bool = False) -> Episodes:
    """`policy` inside `model` (one session of every start under `sampling`), acting on the imagined frames."""
    session = model.session(starts.frames, starts.actions if starts.actions.shape[1] else None, seed=seed,
                            sampling=sampling)
    current = starts.frames[:, -1]
    frames, actions = [current], []
    policy.reset(len(current), policy_seed)
    for _ in progress_bar(range(horizon), desc=f"imagined {policy.name}", unit="step", enabled=progress):
        action = np.asarray(policy.act(current), np.float32)
        actions.append(action)
        current = np.asarray(session.step(action))
        frames.append(current)
    e = len(current)
    return Episodes(np.stack(frames, 1), np.stack(actions, 1), None, np.ones((e, horizon), bool))
