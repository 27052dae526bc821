"""The measured run of docs/evaluation.md ("A measured run"), end to end from committed code:

    python scripts/square_evaluation.py OUT

trains a square-world model (the tiny causal pixel UNet the first demo trained, 320 steps), writes 64 held-out square-world episodes
of 17 frames as a dataset (all in the `val` split), then runs the documented `vid2world evaluate` command on them.
Everything lands in OUT (model/, data/, eval/ with results.json and report.html)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from vid2world.cli import main as cli
from vid2world.data import ActionSpec, DatasetMeta, SquareWorld
from vid2world.data.writer import DatasetWriter
from vid2world.diffusion import ScheduleConfig
from vid2world.models import ActionSpace, CausalConfig, UNetConfig, VideoUNet
from vid2world.train import FitConfig, fit_world_model
from vid2world.world import SamplerConfig, WorldModel

WORLD = SquareWorld(size=8, square=2, speed=1)


def train_square_world(steps: int = 320, seed: int = 0) -> WorldModel:
    """pixel-tiny with the temporal-conv dropout this measured run was made with, trained with Diffusion Forcing."""
    torch.manual_seed(seed)
    cfg = UNetConfig.preset("pixel-tiny", temporal_conv_dropout=0.1, temporal_length=17,
                            action_space=ActionSpace.continuous(2, ("dx", "dy")), causal=CausalConfig("frame"))
    model = WorldModel(VideoUNet(cfg), schedule=ScheduleConfig(dynamic_rescale=None),
                       sampler=SamplerConfig(steps=10, history_level="clean", eta=0.0),
                       metadata={"env": "square-world", "world": vars(WORLD) | {"hold": list(WORLD.hold)}})
    frames, actions = WORLD.dataset(episodes=400, frames=8, seed=seed)
    fit_world_model(model, frames, actions, FitConfig(steps=steps, batch=16, seed=seed), progress=True)
    return model


def write_held_out(path: Path, episodes: int = 64, frames: int = 17, seed: int = 123) -> None:
    spec = ActionSpec.continuous(("dx", "dy"), (-1.0, -1.0), (1.0, 1.0))
    rng = np.random.default_rng(seed)  # not the training stream (seed 0): episodes the model never saw
    with DatasetWriter(path, DatasetMeta("square-world", 4.0, (WORLD.size, WORLD.size), spec)) as writer:
        for i in range(episodes):
            video, actions = WORLD.episode(frames, rng)
            writer.add(video, actions, f"ep{i:03d}", "val")


def run(out: Path) -> int:
    model = train_square_world(steps=320, seed=0)
    model.save_pretrained(out / "model")
    write_held_out(out / "data")
    return cli(["evaluate", "--model", str(out / "model"), "--data", str(out / "data"), "--protocol", "generic",
                "--context", "1", "--horizon", "16", "--windows", "64", "--batch", "16", "--guidance", "2.5",
                "--out", str(out / "eval")])


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/square_evaluation.py OUT")
    sys.exit(run(Path(sys.argv[1])))
