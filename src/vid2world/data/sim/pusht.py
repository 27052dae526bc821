"""Push-T (gym-pusht, LeRobot's and Diffusion Policy's benchmark): a blue disc pushes a grey T onto a fixed green
target pose. Actions are the disc's target position in the 512x512 workspace (pixels of the simulation, as in
LeRobot's pusht datasets); the reward is the coverage of the target by the block over the success threshold (0.95),
clipped to [0, 1]; an episode ends when the coverage passes the threshold. The state beside each frame: the disc's
position, the block's pose and the coverage, so outcome heads can be trained and checked exactly.
"""

from __future__ import annotations

import numpy as np
from gym_pusht.envs.pusht import PushTEnv

from ..spec import ActionSpec
from .base import Simulator

WORKSPACE = 512.0
GOAL = np.array([256.0, 256.0, np.pi / 4])  # gym-pusht's fixed target pose (x, y, angle)


def push_towards(agent: np.ndarray, block: np.ndarray, target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The scripted pusher's next disc target (workspace pixels) from the disc's and the block's positions: get
    behind the block as seen from `target`, going around it when on the target's side, then push it there."""
    to_goal = np.asarray(target, np.float64) - block
    distance = np.linalg.norm(to_goal)
    direction = to_goal / max(distance, 1e-6)
    behind = np.clip(block - 70.0 * direction, 15.0, WORKSPACE - 15.0)  # the walls bound where it can stand
    offset = agent - block
    if np.linalg.norm(agent - behind) > 25.0:
        if offset @ direction > -30.0:  # on the target's side: go round the block, not through it
            side = np.array([-direction[1], direction[0]])
            side = side if offset @ side >= 0 else -side
            aim = block + 90.0 * side - 40.0 * direction
        else:
            aim = behind
    else:
        aim = block + min(40.0, distance) * direction
    return np.clip(aim + rng.normal(0.0, 8.0, 2), 0, WORKSPACE).astype(np.float32)


class PushT(Simulator):
    fps = 10.0
    state_names = ("agent_x", "agent_y", "block_x", "block_y", "block_angle", "coverage")

    def __init__(self, name: str, size: int) -> None:
        super().__init__(size)
        if name:
            raise ValueError(f"pusht:{name}: Push-T has no variants; use the id 'pusht'")
        self.env_id = "pusht"
        self.spec = ActionSpec.continuous(("x", "y"), (0.0, 0.0), (WORKSPACE, WORKSPACE), name="target")
        self.env = PushTEnv(obs_type="pixels", render_mode="rgb_array", observation_width=size,
                            observation_height=size)
        self.coverage = 0.0
        # where the scripted pusher takes the block: gym-pusht's target pose, or a goal-reaching task's
        self.target = GOAL.copy()

    def reset(self, seed: int) -> np.ndarray:
        frame, _ = self.env.reset(seed=int(seed) % (2 ** 31))
        self.last_reward, self.coverage = 0.0, float(self.env._get_coverage())
        return np.asarray(frame)

    def step(self, action: np.ndarray) -> tuple[np.ndarray | None, bool]:
        target = np.clip(np.asarray(action, np.float64)[:2], 0.0, WORKSPACE)
        frame, reward, terminated, _, info = self.env.step(target)
        self.last_reward, self.coverage = float(reward), float(info["coverage"])
        return (None, True) if terminated else (np.asarray(frame), False)

    def state(self) -> np.ndarray:
        agent, block = self.env.agent, self.env.block
        return np.array([*agent.position, *block.position, block.angle % (2 * np.pi), self.coverage], np.float32)

    def scripted_action(self, rng: np.random.Generator) -> np.ndarray:
        """A pusher: get behind the block (as seen from `self.target`), going around it, then push it towards the
        target (position only: it does not turn the T), with a little noise. Called every step, in 10 seeded
        episodes of 300 steps it leaves the block 113 px from the target on average (random play: 228 px) and
        reaches a final coverage of 0.06 (random play: 0.00); it is a weak player, a level above random."""
        agent, block = np.asarray(self.env.agent.position), np.asarray(self.env.block.position)
        return push_towards(agent, block, self.target[:2], rng)

    def snapshot(self) -> object:
        agent, block = self.env.agent, self.env.block
        return (tuple(agent.position), tuple(agent.velocity), tuple(block.position), block.angle,
                tuple(block.velocity), block.angular_velocity, self.last_reward, self.coverage)

    def restore(self, state: object) -> None:
        agent, block = self.env.agent, self.env.block
        (agent.position, agent.velocity, position, block.angle, block.velocity, block.angular_velocity,
         self.last_reward, self.coverage) = state
        # after the angle: pymunk turns a body about its centre of gravity, which moves the T's origin
        block.position = position

    def settings(self) -> dict[str, object]:
        return {"workspace": WORKSPACE, "goal_pose": GOAL.tolist(), "success_threshold": 0.95,
                "native_resolution": [WORKSPACE, WORKSPACE]}

    def close(self) -> None:
        self.env.close()
