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
from .goals import GoalConfig, frame_distance, make_task, pose_errors, reached
from .plan import PlanConfig
from .plan_run import PlanRunConfig, interval, planned_episode, simulator_scorer, world_model_scorer


class GoalObjective:
    """Minus the distance of each step's frame to the goal's frame, summed over the candidate's steps: the closer
    and the sooner, the better."""

    def __init__(self, goal_frame: np.ndarray) -> None:
        self.goal_frame = goal_frame

    def imagined(self, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        return -frame_distance(after, self.goal_frame)

    def real(self, sim, before: np.ndarray | None, after: np.ndarray | None) -> float:
        shown = after if after is not None else before  # the game ended: judge the last frame it showed
        return 0.0 if shown is None else float(-frame_distance(shown[None], self.goal_frame)[0])


def policy_episode(sim, policy, steps: int, seed: int, frame: np.ndarray) -> None:
    """`policy` plays `steps` steps on from `sim`'s present, whose frame is `frame`."""
    policy.reset(1, seed)
    for _ in range(steps):
        frame, ended = sim.step(np.asarray(policy.act(frame[None]), np.float32)[0])
        if ended:
            return


def _row(name: str, outcomes: list[tuple[bool, float, float]], seconds: float | None) -> dict[str, Any]:
    success, position, angle = (np.array(x, float) for x in zip(*outcomes))
    row = {"player": name, "success": success.tolist(), **interval(success.tolist()),
           "position_error": interval(position.tolist()), "angle_error": interval(angle.tolist())}
    return row if seconds is None else {**row, "seconds_per_step": seconds}


def run_goal_planning(config: PlanRunConfig, plan: PlanConfig, goal: GoalConfig, model=None, sampling=None,
                      use_simulator: bool = True, progress: bool = True) -> dict[str, Any]:
    """Every player on the same tasks (`config.steps` real steps each); results.json's content."""
    sim = make_simulator(config.env, model.metadata["frame_size"][0] if model is not None else 64)
    seeds = [config.seed * 100_003 + 70_000 + 1_000 * e for e in range(config.episodes)]
    tasks = [make_task(sim, seed, goal) for seed in seeds]

    def outcome(task) -> tuple[bool, float, float]:
        state = sim.state()
        return (reached(sim, state, task.goal_state, goal), *pose_errors(sim, state, task.goal_state))

    players = {}
    if model is not None:
        players["plan: world model"] = lambda task: (
            lambda s, f, a, t: world_model_scorer(model, sampling, GoalObjective(task.goal_frame), f, a, t))
    if use_simulator:
        players["plan: real simulator"] = lambda task: (
            lambda s, f, a, t: simulator_scorer(s, GoalObjective(task.goal_frame)))
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
    default_target = getattr(sim, "target", None)
    for word in config.baselines:
        policy, outcomes = make_policy(word, sim.spec, sim.scripted_action), []
        for task in tasks:
            sim.restore(task.start)
            if default_target is not None:  # the scripted pusher pushes towards the goal's block position
                sim.target = task.goal_state[[sim.state_names.index("block_x"), sim.state_names.index("block_y")]]
            policy_episode(sim, policy, config.steps, task.seed, task.frames[-1])
            outcomes.append(outcome(task))
        if default_target is not None:
            sim.target = default_target
        rows.append(_row(policy.name, outcomes, None))
    sim.close()
    return {"config": asdict(config), "plan": asdict(plan), "goal": asdict(goal),
            "tasks": [task.seed for task in tasks], "players": rows}
