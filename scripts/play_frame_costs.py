"""Where a played frame's time goes (docs/performance.md, "Interactive speed" and "In the browser").

    python scripts/play_frame_costs.py                 # Game.step's parts: the model, the real game, the PNGs
    python scripts/play_frame_costs.py --profile       # + torch.profiler's ops over 10 model frames
    python scripts/play_frame_costs.py --ab-fuse       # at commit c76f1db only: the fused commit against separate ones

One thread by default, as `vid2world play` runs the model (`--threads 2` for two). Medians; one run is noisy.
"""

from __future__ import annotations

import argparse
import gc
import time

import numpy as np
import torch

import vid2world as v2w
from vid2world.play.game import Game, PlayConfig
from vid2world.play.server import png_data_url
from vid2world.world.spaces import to_vector


def parts(model, frames: int) -> None:
    game = Game(model, PlayConfig())
    game.reset(0)
    times = []
    for i in range(frames + 5):
        a = time.perf_counter()
        frame = game.env.step(game.action)[0]
        b = time.perf_counter()
        real, _ = game.real.step(to_vector(game.env.action_spec, game.env.action_space, game.action))
        c = time.perf_counter()
        png_data_url(frame), png_data_url(real)
        if i >= 5:
            times.append((b - a, c - b, time.perf_counter() - c))
    model_ms, real_ms, png_ms = (1000 * np.median(t) for t in zip(*times))
    print(f"median of {frames} frames: model {model_ms:.1f} ms, real game {real_ms:.1f} ms, PNGs {png_ms:.1f} ms")
    game.close()


def played_env(model) -> v2w.WorldModelEnv:
    env = v2w.WorldModelEnv(model, v2w.world.env.EnvConfig(preset="fast"))
    env.reset(seed=0)
    for _ in range(10):  # past the window's first fill
        env.step(env.action_space.sample())
    return env


def profile(model) -> None:
    from torch.profiler import ProfilerActivity, profile as run

    env = played_env(model)
    with run(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(10):
            env.step(env.action_space.sample())
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14, max_name_column_width=40))


def ab_fuse(model, blocks: int = 8, frames: int = 12) -> None:
    envs = {}
    for fuse in (True, False):
        env = played_env(model)
        evaluator = [o for o in gc.get_objects() if type(o).__name__ == "CachedEvaluator"][-1]
        if not hasattr(evaluator, "fuse"):
            raise SystemExit("--ab-fuse: this checkout has no fused commit (it lives in commit c76f1db)")
        with torch.no_grad():
            evaluator.flush()
        evaluator.fuse, envs[fuse] = fuse, env
    times = {True: [], False: []}
    for _ in range(blocks):  # interleaved, so the machine's drift falls on both
        for fuse, env in envs.items():
            start = time.perf_counter()
            for _ in range(frames):
                env.step(env.action_space.sample())
            times[fuse].append((time.perf_counter() - start) / frames * 1000)
    ratio = np.array(times[True]) / np.array(times[False])
    print(f"fused {np.median(times[True]):.1f} ms, separate {np.median(times[False]):.1f} ms a frame; ratio "
          f"median {np.median(ratio):.3f} ({ratio.min():.3f} to {ratio.max():.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vizdoom-deathmatch")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--frames", type=int, default=35)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--ab-fuse", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = v2w.zoo.load(args.model)
    if args.ab_fuse:
        ab_fuse(model)
        return
    parts(model, args.frames)
    if args.profile:
        profile(model)


if __name__ == "__main__":
    main()
