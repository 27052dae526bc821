"""`vid2world demo`: its arguments and handler."""

from __future__ import annotations

import argparse
import json

from ..io.args import add_progress_flag, positive_int, torch_device


def _demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo
    from ..bench.causal import format_study

    paths = run_demo(args.out, device=args.device, train_steps=args.train_steps, progress=not args.no_progress)
    print(format_study(json.loads(paths["json"].read_text())))
    report = json.loads(paths["report"].read_text())
    print(f"\nsquare world: 16-frame rollouts from one frame, PSNR {report['psnr']:.2f} dB following the actions, "
          f"{report['psnr_other_actions']:.2f} dB with another episode's actions")
    print(f"wrote {paths['picture']}, {paths['video']}, {paths['model']}/, {paths['report']}")
    return 0


def register(sub) -> None:
    """The `demo` command."""
    demo = sub.add_parser("demo", help="the main job on the bundled model, offline")
    demo.add_argument("--out", default="out/demo", help="directory for the demo's outputs (default: out/demo)")
    demo.add_argument("--device", type=torch_device, default="cpu",
                      help="torch device, e.g. cpu, cuda, cuda:1 (default: cpu)")
    demo.add_argument("--train-steps", type=positive_int, default=320,
                      help="training steps of the square-world model when OUT has none yet (default: 320)")
    add_progress_flag(demo)
    demo.set_defaults(func=_demo)
