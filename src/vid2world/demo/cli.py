"""`vid2world demo`: its arguments and handler."""

from __future__ import annotations

import argparse
import json

from ..eval.paired import PairedDifference
from ..io.args import add_progress_flag, torch_device


def _demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo
    from .vizdoom import DemoConfig

    config = DemoConfig() if args.seed is None else DemoConfig(seed=args.seed)
    paths = run_demo(args.out, device=args.device, progress=not args.no_progress, config=config)
    report = json.loads(paths["json"].read_text())
    for name, s in report["scores"].items():
        d = report["against_baselines"].get(name)
        gap = f"   model - this: {PairedDifference(**d).text(2, ' dB')}" if d else ""
        print(f"{name:22s} PSNR {s['psnr']:6.2f} dB   SSIM {s['ssim']:.3f}{gap}")
    gap = report["spawn_against_baselines"]["copy last frame"]
    print(f"from the spawn frame ({report['config']['settle']} steps earlier): model PSNR "
          f"{report['spawn_scores']['model']['psnr']:.2f} dB, copy last frame "
          f"{report['spawn_scores']['copy last frame']['psnr']:.2f} dB (model - copy {gap['difference']:+.2f})")
    acc = report.get("action_accuracy")
    if acc:
        print(f"action accuracy: model {acc['model']:.3f}, real frames {acc['real']:.3f}, chance {acc['chance']:.3f}")
    turn = report["turning"]
    print(f"turning: {turn['follows']} of {turn['of']} starts move the view the way the game does")
    drift = report.get("drift")
    if drift:
        last = drift["blocks"][-1]
        ratios = ", ".join(f"{name} {last[name]['ratio']:.2f}" for name in ("sharpness", "contrast", "change"))
        print(f"a {drift['frames']}-frame session beside the game, last block model / game: {ratios}, colour "
              f"distance {last['colour_distance']:.2f}")
    print(f"causality check: largest change of a past frame {report['causality_max_past_change']:.1e}")
    print(f"{report['wall_s']:.0f} s; wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def register(sub) -> None:
    """The `demo` command."""

    demo = sub.add_parser("demo", help="the main job on the bundled model, offline")
    demo.add_argument("--out", default="out/demo", help="directory for the demo's outputs (default: out/demo)")
    demo.add_argument("--device", type=torch_device, default="cpu",
                      help="torch device, e.g. cpu, cuda, cuda:1 (default: cpu)")
    demo.add_argument("--seed", type=int, default=None,
                      help="the fresh episodes' seed (default: the demo's own); another seed, other fresh starts")
    add_progress_flag(demo)
    demo.set_defaults(func=_demo)
