"""The spread of tests/test_learning.py's recipe over initial weights (the numbers beside its thresholds).

    OMP_NUM_THREADS=1 python scripts/learning_spread.py --seeds 0 1 2 [--temporal-dropout 0.1]

Each seed trains the test's model (pixel-tiny, 320 Diffusion Forcing steps on the square world) from
`torch.manual_seed(seed)` and prints the test's three PSNRs plus the PSNR on 64 other held-out episodes. About 6 CPU
minutes per seed; one thread each (two threads beside another process wait on each other for 7x longer)."""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import vid2world as v2w
from vid2world.data import SquareWorld
from vid2world.diffusion import ScheduleConfig
from vid2world.train import FitConfig, fit_world_model


def psnr(pred: np.ndarray, truth: np.ndarray) -> float:
    """As tests/test_learning.py: PSNR of the MSE over every frame, pixel range 1."""
    mse = (((pred.astype(np.float64) - truth.astype(np.float64)) / 255.0) ** 2).mean()
    return float(10 * np.log10(1.0 / max(mse, 1e-10)))


def held_out(world: SquareWorld, seed: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    episodes = [world.episode(17, rng) for _ in range(count)]
    return np.stack([f for f, _ in episodes]), np.stack([a for _, a in episodes])


def run(seed: int, temporal_dropout: float) -> str:
    start = time.perf_counter()
    torch.manual_seed(seed)
    world = SquareWorld(size=8, square=2, speed=1)
    frames, actions = world.dataset(episodes=400, frames=8, seed=0)
    cfg = v2w.UNetConfig.preset("pixel-tiny", temporal_length=17, action_space=v2w.ActionSpace.continuous(2),
                                causal=v2w.CausalConfig("frame"), temporal_conv_dropout=temporal_dropout)
    model = v2w.WorldModel(v2w.VideoUNet(cfg), schedule=ScheduleConfig(dynamic_rescale=None),
                           sampler=v2w.SamplerConfig(steps=10, history_level="clean", eta=0.0))
    fit_world_model(model, frames, actions, FitConfig(steps=320, batch=16))
    truth, acts = held_out(world, 123, 8)  # the test's episodes
    ours = psnr(model.rollout(truth[:, :1], acts[:, :16], guidance=2.5, seed=0), truth[:, 1:])
    shuffled = psnr(model.rollout(truth[:, :1], acts[np.r_[1:8, 0], :16].copy(), guidance=2.5, seed=0), truth[:, 1:])
    frozen = psnr(np.repeat(truth[:, :1], 16, axis=1), truth[:, 1:])
    more, more_acts = held_out(world, 7, 64)
    wide = psnr(model.rollout(more[:, :1], more_acts[:, :16], guidance=2.5, seed=0), more[:, 1:])
    return (f"seed {seed}, temporal dropout {temporal_dropout}: ours {ours:.2f} dB, shuffled {shuffled:.2f}, "
            f"frozen {frozen:.2f}; 64 other episodes {wide:.2f} dB ({time.perf_counter() - start:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--temporal-dropout", type=float, default=0.0)
    args = parser.parse_args()
    for seed in args.seeds:
        print(run(seed, args.temporal_dropout), flush=True)


if __name__ == "__main__":
    main()
