"""Goal-reaching tasks (`vid2world plan --goal`): a start and a goal `gap` steps apart on one episode of the
simulator's scripted player, as DINO-WM draws its Push-T tasks from (slower, human) trajectories 25 steps apart.
The planner sees only the goal's frame; success is judged on the simulator's state: the block within 20 px and 20
degrees of the goal's pose (DINO-WM's criterion, on the block). A start that already meets its goal is drawn again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .pose import pose_errors

POSE = ("block_x", "block_y", "block_angle")  # the state a goal is judged on


@dataclass(frozen=True)
class GoalConfig:
    lead: int = 10  # scripted steps from the reset to the start (the context frames)
    gap: int = 10  # scripted steps from the start to the goal (our pusher moves the block ~110 px in 10)
    position_tolerance: float = 20.0  # pixels of the simulation
    angle_tolerance: float = 20.0  # degrees

    def __post_init__(self) -> None:
        if self.lead < 1 or self.gap < 1:
            raise ValueError(f"plan --goal: the lead and the gap are >= 1 step (lead {self.lead}, gap {self.gap})")


@dataclass
class GoalTask:
    seed: int
    frames: np.ndarray  # [lead + 1, H, W, 3] uint8: the reset frame, then one per scripted step
    actions: np.ndarray  # [lead, A]
    start: object  # the simulator's snapshot at the start
    goal_frame: np.ndarray  # [H, W, 3] uint8
    goal_state: np.ndarray  # the simulator's state() at the goal


def pose_indices(sim) -> list[int]:
    names = tuple(sim.state_names)
    if not set(POSE) <= set(names):
        raise ValueError(f"plan --goal: {sim.env_id} records no block pose {POSE} beside its frames; goal-reaching "
                         "tasks run on pusht")
    return [names.index(n) for n in POSE]


def block_errors(sim, state: np.ndarray, goal_state: np.ndarray) -> tuple[float, float]:
    """The block's distance to its goal position (pixels) and to its goal angle (degrees, the shorter way)."""
    i = pose_indices(sim)
    position, angle = pose_errors(np.asarray(state, float)[i][None], np.asarray(goal_state, float)[i][None])
    return float(position[0]), float(angle[0])


def reached(sim, state: np.ndarray, goal_state: np.ndarray, config: GoalConfig) -> bool:
    position, angle = block_errors(sim, state, goal_state)
    return position < config.position_tolerance and angle < config.angle_tolerance


def make_task(sim, seed: int, config: GoalConfig) -> GoalTask:
    """The task of `seed` (the next seeds in turn while a start already meets its goal); leaves `sim` at the
    start."""
    pose_indices(sim)
    for draw in range(seed, seed + 1000):
        rng = np.random.default_rng([draw, 11])
        frames, actions = [sim.reset(draw)], []
        for _ in range(config.lead + config.gap):
            if len(actions) == config.lead:
                start, start_state = sim.snapshot(), sim.state()
            actions.append(sim.scripted_action(rng))
            frame, ended = sim.step(actions[-1])
            if ended:
                break
            frames.append(frame)
        if ended or reached(sim, start_state, sim.state(), config):
            continue
        task = GoalTask(draw, np.stack(frames[:config.lead + 1]), np.stack(actions[:config.lead]), start,
                        frames[-1], sim.state())
        sim.restore(start)
        return task
    raise RuntimeError(f"plan --goal: no task among 1,000 seeds from {seed} moves the block out of tolerance")


def frame_distance(frames: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """Mean squared difference of frames [P, H, W, 3] to the goal frame [H, W, 3], on [0, 1]: [P]."""
    diff = np.asarray(frames, np.float32) / 255.0 - np.asarray(goal, np.float32)[None] / 255.0
    return (diff ** 2).mean(axis=(1, 2, 3))
