"""Recording simulator episodes into a dataset, in parallel processes.

Episode i is a pure function of (env, policy, steps, size, seed, i): its simulator and policy are seeded from
`np.random.SeedSequence([seed, i])`, so the same seed gives the same episodes whatever the number of workers.
Each worker writes its own shards into the dataset's temporary directory; the parent writes the index and renames.
"""

from __future__ import annotations

import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..io.outputs import check_writable
from ..io.progress import progress_bar
from ..io.resources import check_disk, check_memory
from .sim import make_policy, make_simulator
from .spec import DatasetMeta
from .store import Dataset
from .writer import DatasetWriter, EpisodeRecord, ShardWriter


@dataclass(frozen=True)
class RecordConfig:
    env: str  # e.g. "vizdoom:deathmatch", "atari:Breakout", "crafter"
    episodes: int
    steps: int = 200  # frames per episode (fewer when the game ends first)
    policy: str = "scripted"  # "random" | "scripted" | "explore"
    size: int = 64
    seed: int = 0
    actions: bool = True  # False: action-free video, for passive pretraining
    val_episodes: int = 0  # the last K episodes get split "val"
    workers: int = 1

    def __post_init__(self) -> None:
        for name, low in (("episodes", 1), ("steps", 1), ("size", 8), ("workers", 1)):
            if getattr(self, name) < low:
                raise ValueError(f"record: {name} must be >= {low}, got {getattr(self, name)}")
        if not 0 <= self.val_episodes <= self.episodes:
            raise ValueError(f"record: val_episodes must lie in [0, {self.episodes}], got {self.val_episodes}")


def record_episode(sim, policy, steps: int, seed: int, episode: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Frames o_0..o_{n-1}, actions a_0..a_{n-1} (a_t chosen after seeing o_t), n <= steps, and the simulator's
    state beside each frame (None for a simulator without one)."""
    sim_seed, policy_seed = np.random.SeedSequence([seed, episode]).generate_state(2)
    rng = np.random.default_rng(int(policy_seed))
    frame = sim.reset(int(sim_seed))
    frames, actions, states = [frame], [], [sim.state()]
    while True:
        actions.append(policy.act(rng))
        if len(frames) == steps:
            break
        frame, done = sim.step(actions[-1])
        if done:
            break
        frames.append(frame)
        states.append(sim.state())
    return np.stack(frames), np.stack(actions).astype(np.float32), np.stack(states) if sim.state_names else None


def episode_name(env: str, episode: int) -> str:
    return f"{env.replace(':', '_')}_{episode:06d}"


def _record_chunk(cfg: RecordConfig, meta: DatasetMeta, shard_dir: str, first: int,
                  count: int) -> tuple[list[EpisodeRecord], dict[str, int]]:
    sim = make_simulator(cfg.env, cfg.size)
    writer = ShardWriter(Path(shard_dir), meta, prefix=f"e{first:06d}-")
    try:
        for episode in range(first, first + count):
            policy = make_policy(cfg.policy, sim)
            frames, actions, state = record_episode(sim, policy, cfg.steps, cfg.seed, episode)
            split = "val" if episode >= cfg.episodes - cfg.val_episodes else "train"
            writer.add(frames, actions if cfg.actions else None, episode_name(cfg.env, episode), split, episode,
                       state)
    finally:
        writer.close()
        sim.close()
    return writer.records, writer.rows


def recording_meta(cfg: RecordConfig) -> DatasetMeta:
    sim = make_simulator(cfg.env, cfg.size)
    try:
        return DatasetMeta(name=cfg.env.replace(":", "_"), fps=sim.fps, frame_size=(cfg.size, cfg.size),
                           actions=sim.spec if cfg.actions else None, source=cfg.env,
                           extra={"recorder": asdict(cfg), "simulator": sim.settings()}, state=sim.state_names)
    finally:
        sim.close()


def check_resources(cfg: RecordConfig, out: str | Path) -> None:
    """Refuse, before a simulator starts, a recording whose episodes cannot fit this machine's memory (each worker
    holds one episode's frames twice, list and stack) or whose frames cannot fit the disk of `out`."""
    check_writable(Path(out).parent, "--out")
    frame = cfg.size * cfg.size * 3
    flags = f"--size {cfg.size}, --steps {cfg.steps}"
    check_memory(cfg.workers * (2 * cfg.steps * frame + 4 * frame), f"{flags}, --workers {cfg.workers}",
                 "record smaller frames, shorter episodes or with fewer workers")
    action_bytes = 4 * 64 if cfg.actions else 0  # an upper bound on one step's action vector
    check_disk(out, cfg.episodes * cfg.steps * (frame + action_bytes), f"{flags}, --episodes {cfg.episodes}",
               "free space, record less or choose an --out on a larger disk")


def record_dataset(cfg: RecordConfig, out: str | Path, progress: bool = True) -> Dataset:
    """Record `cfg.episodes` episodes into the dataset directory `out` (written atomically)."""
    check_resources(cfg, out)
    meta = recording_meta(cfg)
    chunk = max(1, min(16, math.ceil(cfg.episodes / (cfg.workers * 4))))
    jobs = [(first, min(chunk, cfg.episodes - first)) for first in range(0, cfg.episodes, chunk)]
    bar = progress_bar(total=cfg.episodes, desc=f"recording {cfg.env}", unit="ep", enabled=progress)
    with DatasetWriter(out, meta) as writer:
        if cfg.workers == 1:
            for first, count in jobs:
                writer.add_records(*_record_chunk(cfg, meta, str(writer.shard_dir), first, count))
                bar.update(count)
        else:
            context = multiprocessing.get_context("spawn")  # simulators are not fork-safe
            with ProcessPoolExecutor(cfg.workers, mp_context=context) as pool:
                futures = {pool.submit(_record_chunk, cfg, meta, str(writer.shard_dir), first, count): count
                           for first, count in jobs}
                for future in as_completed(futures):
                    writer.add_records(*future.result())
                    bar.update(futures[future])
        dataset = writer.close()
    bar.close()
    return dataset
