"""Real transitions for outcome heads: several policies played in the real simulator from seeded starts, every
step's frames before and after and the game's reward (`vid2world heads fit`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.clips import to_model_input
from ..data.sim import make_simulator
from ..io.progress import progress_bar
from ..world.frames import tensor_to_frames
from .catalog import make_policy
from .goals import pose_indices
from .rollouts import run_real
from .sim_env import start_frames


@dataclass
class Transitions:
    before: np.ndarray  # [N, H, W, 3] uint8
    after: np.ndarray
    rewards: np.ndarray  # [N]
    episode: np.ndarray  # [N]: which episode (for per-episode returns)


def collect_transitions(env: str, policies: list[str], episodes: int, steps: int, seed: int, size: int,
                        spec, batch: int = 16, progress: bool = False, codec=None) -> Transitions:
    """`episodes` episodes of `steps` steps per policy, from starts seeded by `seed` (disjoint seeds per call
    with different `seed`s), in batches of `batch` lockstep simulators. With a world model's `codec`, every frame
    as it gives them back (`through_codec`), each once though it is one step's after and the next one's before."""
    sim = make_simulator(env, size)
    scripted = sim.scripted_action
    parts, index = [], 0
    bar = progress_bar(total=len(policies) * episodes, desc=f"real episodes (seed {seed})", unit="episode",
                       enabled=progress)
    for p, word in enumerate(policies):
        for lo in range(0, episodes, batch):
            seeds = [seed * 1_000_003 + p * 10_007 + e for e in range(lo, min(episodes, lo + batch))]
            run = run_real(env, seeds, 1, 20, size, make_policy(word, spec, scripted), steps, seed + lo)
            e, t = run.alive.shape
            frames = run.frames
            if codec is not None:
                frames = through_codec(codec, frames.reshape(-1, size, size, 3)).reshape(frames.shape)
            keep = run.alive.reshape(-1)
            parts.append(Transitions(frames[:, :-1].reshape(e * t, size, size, 3)[keep],
                                     frames[:, 1:].reshape(e * t, size, size, 3)[keep],
                                     run.rewards.reshape(-1)[keep],
                                     np.repeat(np.arange(index, index + e), t)[keep]))
            index += e
            bar.update(e)
    bar.close()
    sim.close()
    return Transitions(*(np.concatenate([getattr(x, f) for x in parts]) for f in ("before", "after", "rewards",
                                                                                  "episode")))


def collect_poses(env: str, policies: list[str], episodes: int, steps: int, seed: int, size: int,
                  progress: bool = False, codec=None) -> tuple[np.ndarray, np.ndarray]:
    """Real frames [N, H, W, 3] and the block's pose beside each [N, 3] (x, y, angle: the simulator's state), from
    `episodes` episodes of `steps` steps per policy (seeded starts as `collect_transitions`'); with a `codec`, the
    frames as it gives them back."""
    sim = make_simulator(env, size)
    index, frames, poses = pose_indices(sim), [], []
    bar = progress_bar(total=len(policies) * episodes, desc=f"real episodes (seed {seed})", unit="episode",
                       enabled=progress)
    for p, word in enumerate(policies):
        policy = make_policy(word, sim.spec, sim.scripted_action)
        for e in range(episodes):
            start = seed * 1_000_003 + p * 10_007 + e
            frame, ended = start_frames(sim, start, 20)[0][-1], False
            policy.reset(1, start)
            for _ in range(steps):
                frames.append(frame)
                poses.append(sim.state()[index])
                frame, ended = sim.step(np.asarray(policy.act(frame[None]), np.float32)[0])
                if ended:
                    break
            bar.update(1)
    bar.close()
    sim.close()
    frames = np.stack(frames)
    return (through_codec(codec, frames) if codec is not None else frames), np.stack(poses).astype(np.float64)


@torch.no_grad()
def through_codec(codec, frames: np.ndarray, batch: int = 256) -> np.ndarray:
    """Frames [N, H, W, 3] as a world model's codec gives them back (encoded, decoded): a head trained on these
    sees the codec's blur, as it will on imagined frames."""
    out = []
    for lo in range(0, len(frames), batch):
        pixels = to_model_input(torch.from_numpy(np.ascontiguousarray(frames[lo:lo + batch]))[None])
        out.append(tensor_to_frames(codec.decode(codec.encode(pixels)), True)[0])
    return np.concatenate(out) if out else frames[:0]
