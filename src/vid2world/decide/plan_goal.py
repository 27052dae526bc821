"""`vid2world plan --goal`: goal-reaching tasks (decide/goals.py) played in the real simulator by CEM through a
world model and through the real simulator (restored state: the upper bound), both scoring a candidate by how
close its frames come to the goal's frame, and by baseline policies (`scripted` pushes towards the goal's block
position); per player the success rate and the final pose errors, with bootstrap intervals over tasks."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import numpy as np

from ..data.sim import make_simulator
from ..io.progress import progress_bar
from .catalog import make_policy
from .goals import GoalConfig, block_errors, frame_distance, make_task, reached
from .plan import PlanConfig
from .pose import check_reader_size, pose_errors
from .plan_run import PlanRunConfig, interval, planned_episode, simulator_scorer, world_model_scorer


class GoalObjective:
    """Minus the distance of each step's frame to the goal's frame, summed over the candidate's steps: the closer
    and the sooner, the better."""

    def __init__(self, goal_frame: np.ndarray) -> None:
        self.goal_frame = goal_frame

    def imagined(self, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        return -frame_distance(after, self.goal_frame)

    def real(self, rewards: np.ndarray, frames: np.ndarray, seen: np.ndarray) -> np.ndarray:
        return _summed(self.imagined, frames, seen)


class PoseObjective:
    """Minus the distance of the block's pose read off each step's frame to the pose read off the goal's frame
    (position over its tolerance plus angle over its), summed over the candidate's steps."""

    def __init__(self, reader, goal_frame: np.ndarray, goal: GoalConfig) -> None:
        self.reader, self.goal = reader, goal
        self.goal_pose = reader.read(goal_frame[None])

    def imagined(self, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        position, angle = pose_errors(self.reader.read(after), np.repeat(self.goal_pose, len(after), 0))
        return -(position / self.goal.position_tolerance + angle / self.goal.angle_tolerance)

    def real(self, rewards: np.ndarray, frames: np.ndarray, seen: np.ndarray) -> np.ndarray:
        return _summed(self.imagined, frames, seen)


def _summed(per_frame, frames: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """`per_frame(before, after)` of the frames [P, T, H, W, 3] that `seen` [P, T] marks, summed per candidate:
    one batched call over every candidate's steps."""
    scores = np.zeros(seen.shape)
    if seen.any():
        shown = frames[seen]
        scores[seen] = per_frame(shown, shown)
    return scores.sum(1)


def policy_episode(sim, policy, steps: int, seed: int, frame: np.ndarray) -> None:
    """`policy` plays `steps` steps on from `sim`'s present, whose frame is `frame`."""
    policy.reset(1, seed)
    for _ in range(steps):
        frame, ended = sim.step(np.asarray(policy.act(frame[None]), np.float32)[0])
        if ended:
            return


def baselines(sim, tasks: list, config: PlanRunConfig, outcome) -> list[tuple[str, list]]:
    """Each of `config.baselines` on every task: (its name, the `outcome` of each task)."""
    default_target, rows = getattr(sim, "target", None), []
    for word in config.baselines:
        policy, outcomes = make_policy(word, sim.spec, sim.scripted_action), []
        for task in tasks:
            sim.restore(task.start)
            if default_target is not None:  # the scripted pusher pushes towards the goal's block position
                sim.target = task.goal_state[[sim.state_names.index("block_x"), sim.state_names.index("block_y")]]
            policy_episode(sim, policy, config.steps, task.seed, task.frames[-1])
            outcomes.append(outcome(task))
        rows.append((policy.name, outcomes))
    if default_target is not None:
        sim.target = default_target
    return rows


def _row(name: str, outcomes: list[tuple[bool, float, float]], seconds: float | None) -> dict[str, Any]:
    success, position, angle = (np.array(x, float) for x in zip(*outcomes))
    row = {"player": name, "success": success.tolist(), **interval(success.tolist()),
           "position_error": interval(position.tolist()), "angle_error": interval(angle.tolist())}
    return row if seconds is None else {**row, "seconds_per_step": seconds}


def run_goal_planning(config: PlanRunConfig, plan: PlanConfig, goal: GoalConfig, model=None, sampling=None,
                      use_simulator: bool = True, progress: bool = True, reader=None) -> dict[str, Any]:
    """Every player on the same tasks (`config.steps` real steps each); candidates scored by the frame distance,
    or with a pose `reader` by the read poses (`PoseObjective`); results.json's content."""
    size = model.metadata["frame_size"][0] if model is not None else 64
    if reader is not None:
        check_reader_size(reader, size, "the planner's are")
    sim = make_simulator(config.env, size)
    seeds = [config.seed * 100_003 + 70_000 + 1_000 * e for e in range(config.episodes)]
    tasks = [make_task(sim, seed, goal) for seed in seeds]

    def outcome(task) -> tuple[bool, float, float]:
        state = sim.state()
        return (reached(sim, state, task.goal_state, goal), *block_errors(sim, state, task.goal_state))

    def objective(task):
        return GoalObjective(task.goal_frame) if reader is None else PoseObjective(reader, task.goal_frame, goal)

    players = {}
    if model is not None:
        players["plan: world model"] = lambda task: (
            lambda s, f, a, t: world_model_scorer(model, sampling, objective(task), f, a, t))
    if use_simulator:
        players["plan: real simulator"] = lambda task: (
            lambda s, f, a, t: simulator_scorer(s, objective(task)))
    rows = []
    starts = []  # how far each start is from its goal: the task's difficulty, and what standing still scores
    for task in tasks:
        sim.restore(task.start)
        starts.append(outcome(task))
    rows.append(_row("start (no steps)", starts, None))
    for name, scorer in players.items():
        started, outcomes = time.time(), []
        for task in progress_bar(tasks, desc=name, unit="task", enabled=progress):
            sim.restore(task.start)
            planned_episode(sim, task.frames, task.actions, config, plan, scorer(task),
                            np.random.default_rng([task.seed, 3]))
            outcomes.append(outcome(task))
        rows.append(_row(name, outcomes, (time.time() - started) / max(1, len(tasks) * config.steps)))
    rows += [_row(name, outcomes, None) for name, outcomes in baselines(sim, tasks, config, outcome)]
    sim.close()
    return {"config": asdict(config), "plan": asdict(plan), "goal": asdict(goal),
            "objective": "frame distance" if reader is None else "pose read by the reader",
            "tasks": [task.seed for task in tasks], "players": rows}
