"""`vid2world bench play`: frames per second of an interactive session, end to end (one action in, one decoded
uint8 frame out), per sampling preset: what a player feels, measured after a warm-up over a long run so the
history fills the window and the cache's rings wrap."""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
import torch

from ..io.args import (add_json_flag, choice_list, float_list, int_list, non_negative_int, positive_int,
                       torch_device, write_json)
from ..models.precision import PRECISIONS
from ..world.bundled import load_model
from ..world.world_model import SAMPLING_PRESETS, Sampling, WorldModel


def session_rate(model: WorldModel, sampling: Sampling, frames: int = 24, warmup: int = 4, seed: int = 0
                 ) -> dict[str, Any]:
    """Time `frames` single steps of a one-row session from a random start under a held random action."""
    h, w = model.metadata.get("frame_size", (64, 64))
    rng = np.random.default_rng(seed)
    start = rng.integers(0, 256, (1, 1, h, w, 3), dtype=np.uint8)
    action = None if model.action_dim is None else (rng.random((1, model.action_dim)) < 0.3).astype(np.float32)
    sess = model.session(start, seed=seed, sampling=sampling)
    times = []
    for i in range(warmup + frames):
        t0 = time.perf_counter()
        sess.step(action)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {"steps": sampling.steps, "guidance": sampling.guidance, "precision": sampling.precision, "frame_s": median, "fps": 1.0 / median,
            "frames": frames, "warmup": warmup, "threads": torch.get_num_threads()}


def bench_play(model_ref: str, device: str = "cpu", frames: int = 24, steps: list[int] | None = None,
               guidances: list[float] | None = None, precisions: list[str] | None = None,
               warmup: int = 4) -> dict[str, Any]:
    """Both sampling presets, or with `steps`, `guidances` or `precisions` every combination of them (the
    fast preset's values where one is not given)."""
    model = load_model(model_ref, device)
    if steps is None and guidances is None and precisions is None:
        settings = [(p, model.sampling(p)) for p in SAMPLING_PRESETS]
    else:
        fast = model.sampling("fast")
        settings = [("-", fast.override(steps=s, guidance=g, precision=p)) for s in steps or [fast.steps]
                    for g in guidances or [fast.guidance] for p in precisions or [fast.precision]]
    rows = [{"preset": name, **session_rate(model, sampling, frames, warmup)} for name, sampling in settings]
    return {"model": model_ref, "device": device, "rows": rows}


def format_bench_play(r: dict[str, Any]) -> str:
    lines = [f"{r['model']} on {r['device']}: one action in, one decoded frame out", "",
             "| preset | DDIM steps | guidance | precision | ms/frame | frames/s |", "|---|---|---|---|---|---|"]
    lines += [f"| {x['preset']} | {x['steps']} | {x['guidance']:g} | {x['precision']} | {1000 * x['frame_s']:.0f} "
              f"| {x['fps']:.1f} |" for x in r["rows"]]
    return "\n".join(lines)


def _bench_play(args: argparse.Namespace) -> int:
    result = bench_play(args.model, args.device, args.frames, args.steps, args.guidance, args.precision, args.warmup)
    print(format_bench_play(result))
    write_json(args.json, result)
    return 0


def register(bench_sub) -> None:
    """The `bench play` command."""
    play = bench_sub.add_parser("play", help="frames per second of an interactive session, per sampling preset")
    play.add_argument("--model", default="vizdoom-deathmatch",
                      help="a world-model directory or a bundled model's name (default: vizdoom-deathmatch)")
    play.add_argument("--frames", type=positive_int, default=24, help="timed frames per preset (default: 24)")
    play.add_argument("--warmup", type=non_negative_int, default=4,
                      help="frames played before the timing starts, per preset (default: 4)")
    play.add_argument("--steps", type=int_list, default=None,
                      help="DDIM steps, comma-separated: time every combination with --guidance and --precision "
                           "instead of the two presets (default: the fast preset's)")
    play.add_argument("--guidance", type=float_list, default=None,
                      help="guidance scales, comma-separated, 1 = off (default: the fast preset's)")
    play.add_argument("--precision", type=choice_list(PRECISIONS), default=None,
                      help=f"the UNet's precision, comma-separated from {', '.join(PRECISIONS)} (default: the fast "
                           "preset's)")
    play.add_argument("--device", type=torch_device, default="cpu", help="torch device (default: cpu)")
    add_json_flag(play)
    play.set_defaults(func=_bench_play)
