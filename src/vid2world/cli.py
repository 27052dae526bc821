"""vid2world: turn pretrained video diffusion models into interactive world models.

The command line: argument parsing only; the work lives in the packages.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence


def _write_json(path: str | None, result: dict) -> None:
    """Write a result for machines too, when --json asked for it."""
    if path:
        with open(path, "w") as f:
            json.dump(result, f, indent=1)
        print(f"\nwrote {path}")


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo
    from .causal.study import format_study

    paths = run_demo(args.out, device=args.device, train_steps=args.train_steps)
    print(format_study(json.loads(paths["json"].read_text())))
    report = json.loads(paths["report"].read_text())
    print(f"\nsquare world: 16-frame rollouts from one frame, PSNR {report['psnr']:.2f} dB following the actions, "
          f"{report['psnr_other_actions']:.2f} dB with another episode's actions")
    print(f"wrote {paths['picture']}, {paths['video']}, {paths['model']}/, {paths['report']}")
    return 0


def _bench_causal(args: argparse.Namespace) -> int:
    from .causal.study import format_study, run_study

    result = run_study(preset=args.preset, frames=args.frames, size=args.size, seed=args.seed,
                       leak_at=args.leak_at, device=args.device)
    print(format_study(result))
    _write_json(args.json, result)
    return 0


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def _bench_rollout(args: argparse.Namespace) -> int:
    from .world.bench import format_bench, run_bench

    caches = {"on": [True], "off": [False], "both": [True, False]}[args.cache]
    result = run_bench(preset=args.preset, size=args.size, histories=_ints(args.histories), steps=_ints(args.steps),
                       guidances=_floats(args.guidance), caches=caches, batch=args.batch, repeats=args.repeats,
                       norm=args.norm, device=args.device, dtype=args.dtype)
    print(format_bench(result))
    _write_json(args.json, result)
    return 0


def _bench_cache(args: argparse.Namespace) -> int:
    from .world.bench import cache_exactness, format_exactness

    result = cache_exactness(frames=args.frames, steps=args.steps, size=args.size, seed=args.seed)
    print(format_exactness(result))
    _write_json(args.json, result)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vid2world", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="the main job on the bundled model, offline")
    demo.add_argument("--out", default="out/demo", help="directory for the demo's outputs (default: out/demo)")
    demo.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:1 (default: cpu)")
    demo.add_argument("--train-steps", type=int, default=320,
                      help="training steps of the square-world model when OUT has none yet (default: 320)")
    demo.set_defaults(func=_demo)

    bench = sub.add_parser("bench", help="measurements, as tables and JSON")
    bench_sub = bench.add_subparsers(dest="bench", required=True)
    causal = bench_sub.add_parser("causal", help="future leak and feature preservation of every transfer x norm")
    causal.add_argument("--preset", default="tiny", help="UNet preset (default: tiny; random stand-in weights)")
    causal.add_argument("--frames", type=int, default=8, help="clip length (default: 8)")
    causal.add_argument("--size", type=int, default=16, help="latent height and width (default: 16)")
    causal.add_argument("--leak-at", type=int, default=3, help="perturb the frames after this one (default: 3)")
    causal.add_argument("--seed", type=int, default=0, help="seed of the weights and inputs (default: 0)")
    causal.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    causal.add_argument("--json", help="also write the result to this JSON file")
    causal.set_defaults(func=_bench_causal)

    rollout = bench_sub.add_parser("rollout", help="per-frame latency vs history: cached/recompute, guided/unguided")
    rollout.add_argument("--preset", default="tiny",
                         help="UNet preset (tiny: pixel space; dynamicrafter-*: 4-channel latents); random weights")
    rollout.add_argument("--size", type=int, default=16, help="latent height and width (default: 16)")
    rollout.add_argument("--histories", default="1,3,7,15", help="history lengths, comma-separated (default: 1,3,7,15)")
    rollout.add_argument("--steps", default="10", help="denoising steps per frame, comma-separated (default: 10)")
    rollout.add_argument("--guidance", default="1,2.5", help="guidance scales, comma-separated; 1 = off (default: 1,2.5)")
    rollout.add_argument("--cache", choices=["on", "off", "both"], default="both", help="KV cache (default: both)")
    rollout.add_argument("--norm", default="frame", choices=["frame", "causal"], help="temporal norm mode")
    rollout.add_argument("--batch", type=int, default=1, help="rollouts in parallel (default: 1)")
    rollout.add_argument("--repeats", type=int, default=3, help="timed frames per cell, median reported (default: 3)")
    rollout.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    rollout.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"], help="weights dtype")
    rollout.add_argument("--json", help="also write the result to this JSON file")
    rollout.set_defaults(func=_bench_rollout)

    cache = bench_sub.add_parser("cache", help="cached vs recomputed rollouts: largest difference per norm mode")
    cache.add_argument("--frames", type=int, default=16, help="rollout length incl. the context frame (default: 16)")
    cache.add_argument("--steps", type=int, default=10, help="denoising steps per frame (default: 10)")
    cache.add_argument("--size", type=int, default=16, help="frame height and width (default: 16)")
    cache.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    cache.add_argument("--json", help="also write the result to this JSON file")
    cache.set_defaults(func=_bench_cache)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"vid2world {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
