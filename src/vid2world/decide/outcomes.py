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
from .rollouts import run_real


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


@torch.no_grad()
def through_codec(codec, frames: np.ndarray, batch: int = 256) -> np.ndarray:
    """Frames [N, H, W, 3] as a world model's codec gives them back (encoded, decoded): a head trained on these
    sees the codec's blur, as it will on imagined frames."""
    out = []
    for lo in range(0, len(frames), batch):
        pixels = to_model_input(torch.from_numpy(np.ascontiguousarray(frames[lo:lo + batch]))[None])
        out.append(tensor_to_frames(codec.decode(codec.encode(pixels)), True)[0])
    return np.concatenate(out) if out else frames[:0]
