"""Learning works end to end: a tiny causal world model trained with Diffusion Forcing on a square steered by the
action follows the actions in a 16-frame rollout from one context frame (about 2.5 minutes on 2 CPU cores)."""

from __future__ import annotations

import time

import numpy as np
import torch

import vid2world as v2w
from vid2world.data import SquareWorld
from vid2world.diffusion import ScheduleConfig
from vid2world.train import FitConfig, fit_world_model


def psnr(pred: np.ndarray, truth: np.ndarray) -> float:
    """PSNR of the mean squared error over every frame (pixel range 1). Not the mean of per-frame PSNRs: a frame
    that happens to equal the truth would count as +inf (capped at 100 dB) and swamp the average."""
    mse = (((pred.astype(np.float64) - truth.astype(np.float64)) / 255.0) ** 2).mean()
    return float(10 * np.log10(1.0 / max(mse, 1e-10)))


def held_out_scores(model: v2w.WorldModel, world: SquareWorld, start: float) -> tuple[float, float, float]:
    """PSNR of 16-frame rollouts from one context frame of 8 held-out episodes (never seen in training): under the
    true actions, under another episode's (shuffled) and of the frozen first frame."""
    rng = np.random.default_rng(123)
    held_out = [world.episode(17, rng) for _ in range(8)]
    truth = np.stack([f for f, _ in held_out])
    acts = np.stack([a for _, a in held_out])
    pred = model.rollout(truth[:, :1], acts[:, :16], guidance=2.5, seed=0)
    shuffled = model.rollout(truth[:, :1], acts[np.r_[1:8, 0], :16].copy(), guidance=2.5, seed=0)
    ours = psnr(pred, truth[:, 1:])
    wrong_actions = psnr(shuffled, truth[:, 1:])
    frozen = psnr(np.repeat(truth[:, :1], 16, axis=1), truth[:, 1:])  # "nothing moves" baseline
    print(f"PSNR over 16 frames: {ours:.2f} dB; shuffled actions {wrong_actions:.2f}; frozen first frame "
          f"{frozen:.2f}; {time.perf_counter() - start:.0f} s")
    return ours, wrong_actions, frozen


def test_tiny_world_model_follows_the_actions():
    start = time.perf_counter()
    torch.manual_seed(0)
    world = SquareWorld(size=8, square=2, speed=1)
    frames, actions = world.dataset(episodes=400, frames=8, seed=0)
    # pixel-tiny: no temporal-conv dropout. With the DynamiCrafter default of 0.1 this 320-step model reached only
    # 13.8-15.8 dB depending on the initial weights; without it, 18-19.
    cfg = v2w.UNetConfig.preset("pixel-tiny", temporal_length=17, action_space=v2w.ActionSpace.continuous(2),
                                causal=v2w.CausalConfig("frame"))
    unet = v2w.VideoUNet(cfg)
    schedule = ScheduleConfig(dynamic_rescale=None)
    sampler = v2w.SamplerConfig(steps=10, history_level="clean", eta=0.0)
    losses = fit_world_model(v2w.WorldModel(unet, schedule=schedule, sampler=sampler), frames, actions,
                             FitConfig(steps=320, batch=16))
    assert np.mean(losses[-20:]) < 0.25 * np.mean(losses[:20])  # the loss fell by more than 4x

    model = v2w.WorldModel(unet, schedule=schedule,
                           sampler=v2w.SamplerConfig(steps=10, history_level="clean", eta=0.0))
    ours, wrong_actions, frozen = held_out_scores(model, world, start)
    # Thresholds: a model that ignores the actions does no better than with another episode's actions, and one
    # that only copies the first frame scores `frozen`; both sit near 12-13 dB here. Following the actions puts the
    # square where the truth has it: measured 18.3 dB (shuffled 11.8, frozen 12.2) on this configuration, 19.5 dB on 64
    # other held-out episodes. Other initial weights (torch seeds 1 and 2, as a CPU with other rounding could drift to)
    # gave 15.5 and 17.4 dB, the first only 3.2 dB over frozen: the recipe's spread (scripts/learning_spread.py).
    assert ours > 15.0
    assert ours > wrong_actions + 3.0
    assert ours > frozen + 3.0
