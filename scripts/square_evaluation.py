"""The measured run of docs/evaluation.md ("A measured run"), end to end from committed code:

    python scripts/square_evaluation.py OUT

trains the demo's square-world model (`vid2world.demo.square`, 320 steps), writes 64 held-out square-world episodes
of 17 frames as a dataset (all in the `val` split), then runs the documented `vid2world evaluate` command on them.
Everything lands in OUT (model/, data/, eval/ with results.json and report.html)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from vid2world.cli import main as cli
from vid2world.data import ActionSpec, DatasetMeta
from vid2world.data.writer import DatasetWriter
from vid2world.demo.square import WORLD, train_square_world


def write_held_out(path: Path, episodes: int = 64, frames: int = 17, seed: int = 123) -> None:
    spec = ActionSpec.continuous(("dx", "dy"), (-1.0, -1.0), (1.0, 1.0))
    rng = np.random.default_rng(seed)  # not the training stream (seed 0): episodes the model never saw
    with DatasetWriter(path, DatasetMeta("square-world", 4.0, (WORLD.size, WORLD.size), spec)) as writer:
        for i in range(episodes):
            video, actions = WORLD.episode(frames, rng)
            writer.add(video, actions, f"ep{i:03d}", "val")


def run(out: Path) -> int:
    model, _ = train_square_world(steps=320, seed=0)
    model.save_pretrained(out / "model")
    write_held_out(out / "data")
    return cli(["evaluate", "--model", str(out / "model"), "--data", str(out / "data"), "--protocol", "generic",
                "--context", "1", "--horizon", "16", "--windows", "64", "--batch", "16", "--guidance", "2.5",
                "--out", str(out / "eval")])


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/square_evaluation.py OUT")
    sys.exit(run(Path(sys.argv[1])))
