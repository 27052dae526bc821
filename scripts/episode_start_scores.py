"""The bundled ViZDoom model against copying the last frame, from a fixed step of every held-out episode
(docs/results.md, "The demo"): why the demo's start frames come a few steps after the spawn.

    python scripts/episode_start_scores.py build/zoo/vizdoom-deathmatch/data/vizdoom_deathmatch-s1 0 1 2 4 8 40

For each start step: 16 frames generated from that episode frame with the episode's actions (the fast preset), the
mean PSNR of the model and of the copied frame, and the model's lead window by window (`eval.paired`). The first
line gives how much consecutive frames differ at each of the first steps (mean absolute difference, 0-255)."""

from __future__ import annotations

import argparse

import numpy as np

import vid2world as v2w
from vid2world.data import open_dataset
from vid2world.eval.paired import paired_difference
from vid2world.metrics import psnr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", help="held-out episodes of the bundled model's game")
    parser.add_argument("starts", type=int, nargs="+", help="episode steps to start from")
    parser.add_argument("--episodes", type=int, default=16)
    args = parser.parse_args()
    model, data = v2w.zoo.load("vizdoom-deathmatch"), open_dataset(args.data)
    fast, horizon = model.sampling("fast"), 16
    episodes = [data.episode(i) for i in range(min(args.episodes, len(data)))]
    motion = np.mean([np.abs(np.diff(np.asarray(e.frames[:9], np.float32), axis=0)).mean(axis=(1, 2, 3))
                      for e in episodes], axis=0)
    print("frame-to-frame change over the first 8 steps:", " ".join(f"{m:.1f}" for m in motion))
    for start in args.starts:
        frames = np.stack([np.asarray(e.frames[start: start + horizon + 1]) for e in episodes])
        actions = np.stack([np.asarray(e.actions[start: start + horizon]) for e in episodes])
        made = model.rollout(frames[:, :1], actions, seed=0, steps=fast.steps, guidance=fast.guidance,
                             precision=fast.precision)
        mine = np.asarray(psnr(made, frames[:, 1:])).mean(axis=1)
        copied = np.asarray(psnr(np.repeat(frames[:, :1], horizon, axis=1), frames[:, 1:])).mean(axis=1)
        d = paired_difference(mine, copied, higher_is_better=True)
        print(f"start {start:3d}: model {mine.mean():.2f} dB, copy last frame {copied.mean():.2f} dB, model - copy "
              f"{d.text(2)}, the model ahead on {d.wins} of {d.windows}")


if __name__ == "__main__":
    main()
