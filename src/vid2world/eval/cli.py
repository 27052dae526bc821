"""`vid2world rollout`, `vid2world evaluate` and `vid2world compare`: their arguments and handlers."""

from __future__ import annotations

import argparse
from typing import Any

from ..io.args import add_json_flag, add_progress_flag, non_negative_int, positive_int, torch_device
from ..models.precision import PRECISIONS
from ..metrics.weights import add_weights_flag
from .protocols import PROTOCOLS


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _sampling_flags(parser: argparse.ArgumentParser) -> None:
    speed = parser.add_mutually_exclusive_group()
    speed.add_argument("--steps", type=positive_int, default=None,
                       help="DDIM steps per frame (default: the model's sampler, 50 for released models)")
    speed.add_argument("--fast", dest="preset", action="store_const", const="fast", default=None,
                       help="the model's fast sampling preset (few DDIM steps, for interactive use; 8 unless the "
                            "model says otherwise)")
    speed.add_argument("--quality", dest="preset", action="store_const", const="quality",
                       help="the model's default sampling steps (the same as leaving out --steps)")
    parser.add_argument("--guidance", type=_finite, default=None,
                        help="action guidance scale, 1 = off (default: the model's sampler, 2.5)")
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="the UNet's precision: fp32, or bf16 autocast (default: the preset's, else the model's)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="sampling seed (default: 0)")
    parser.add_argument("--device", type=torch_device, default="cpu",
                        help="torch device, e.g. cpu, cuda, cuda:1 (default: cpu)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier output of this command")
    add_progress_flag(parser)


NEGATED_FLAGS = ("counterfactual", "random_actions")


def command_line(command: str, fields: dict[str, Any]) -> list[str]:
    """The command with every setting spelled out (defaults included), so it reruns the same evaluation."""
    out = ["vid2world", command]
    for name, value in fields.items():
        flag = "--" + name.replace("_", "-")
        if name == "preset" and value is not None:  # --fast / --quality
            out.append(f"--{value}")
        elif name in NEGATED_FLAGS:  # on by default, turned off by --no-NAME
            out += [] if value else ["--no-" + name.replace("_", "-")]
        elif value is True:
            out.append(flag)
        elif value is not None and value is not False:
            out += [flag, str(value)]
    return out


MODEL_HELP = "world-model directory, or a bundled model's name (`vid2world zoo list`)"


def _resolve_model(args: argparse.Namespace) -> None:
    """--model as `play` reads it (`bundled.resolve`): a directory, or a bundled model's name."""
    from ..world.bundled import resolve

    args.model = str(resolve(args.model, "--model"))


def _rollout(args: argparse.Namespace) -> int:
    from .rollout import RolloutConfig, rollout_episode

    _resolve_model(args)
    fields = {k: getattr(args, k) for k in RolloutConfig.__dataclass_fields__}
    result = rollout_episode(RolloutConfig(**fields), progress=not args.no_progress)
    for t, value in enumerate(result["psnr"]):
        kind = "given" if t < result["context"] else f"generated {t - result['context'] + 1}"
        print(f"frame {t:3d} ({kind}): PSNR {value:6.2f} dB")
    generated = result["psnr"][result["context"]:]
    print(f"mean PSNR of the {len(generated)} generated frames: {sum(generated) / len(generated):.2f} dB")
    print(f"wrote {result['video']} (ground truth | prediction)")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .run import EvaluateConfig, evaluate

    _resolve_model(args)
    fields = {k: getattr(args, k) for k in EvaluateConfig.__dataclass_fields__}
    results = evaluate(EvaluateConfig(**fields), command=command_line("evaluate", fields),
                       progress=not args.no_progress)
    names = [m.name for m in results.metrics if m.skipped is None]
    print(f"{results.windows} windows, protocol {results.protocol['name']}")
    print(f"{'source':36s}" + "".join(f"{n:>12s}" for n in names))
    for s in results.sources:
        print(f"{s.name:36s}" + "".join(f"{s.means.get(n, float('nan')):12.4g}" for n in names))
    for note in results.notes:
        print(f"note: {note}")
    print(f"wrote {args.out}/results.json, {args.out}/report.md and {args.out}/report.html")
    return 0


def register(sub) -> None:
    """The `rollout`, `evaluate` and `compare` commands."""
    roll = sub.add_parser("rollout", help="one rollout against ground truth (side-by-side mp4, per-frame PSNR)")
    roll.add_argument("--model", required=True, help=MODEL_HELP)
    roll.add_argument("--data", required=True, help="dataset directory (`vid2world data record|convert`)")
    roll.add_argument("--episode", type=non_negative_int, required=True, help="episode index in the dataset")
    roll.add_argument("--start", type=non_negative_int, default=0, help="first frame of the window (default: 0)")
    roll.add_argument("--context", type=positive_int, required=True, help="ground-truth frames given")
    roll.add_argument("--horizon", type=positive_int, required=True, help="frames to generate")
    roll.add_argument("--out", required=True, help="the .mp4 to write (ground truth | prediction)")
    _sampling_flags(roll)
    roll.set_defaults(func=_rollout)

    ev = sub.add_parser("evaluate", help="metrics, baselines, curves and videos of a world model on a dataset",
                        description="Infer every source to OUT/predictions (reused by a rerun, resumed after a "
                        "kill), then score them from disk and write OUT/results.json; see docs/evaluation.md.")
    ev.add_argument("--model", required=True, help=MODEL_HELP)
    ev.add_argument("--data", required=True, help="dataset directory; windows come from its held-out split")
    ev.add_argument("--protocol", required=True, choices=sorted(PROTOCOLS) + ["generic"],
                    help="method.md 10.2 protocol, or generic (with --context and --horizon)")
    ev.add_argument("--out", required=True, help="output directory (new, or an earlier evaluation's)")
    add_weights_flag(ev)
    ev.add_argument("--idm", default=None, metavar="DIR", help="inverse-dynamics model (`vid2world idm train`) "
                    "for action accuracy on real and generated frames")
    ev.add_argument("--windows", type=positive_int, default=None, help="evaluation windows (default: protocol's)")
    ev.add_argument("--batch", type=positive_int, default=4, help="windows rolled out together (default: 4)")
    ev.add_argument("--seeds", type=positive_int, default=None,
                    help="model rollouts per window, each its own seed (default: protocol's; recon-ar: 5)")
    ev.add_argument("--videos", type=non_negative_int, default=2, help="side-by-side videos per source (default: 2)")
    ev.add_argument("--no-counterfactual", dest="counterfactual", action="store_false",
                    help="skip the grid of window 0 under held actions (one more batch of rollouts)")
    ev.add_argument("--no-random-actions", dest="random_actions", action="store_false",
                    help="skip the random-actions baseline and Delta-N (a third of the rollouts), e.g. when "
                         "comparing models with `compare`")
    ev.add_argument("--context", type=positive_int, default=None, help="generic: ground-truth frames given")
    ev.add_argument("--horizon", type=positive_int, default=None, help="generic: frames generated")
    ev.add_argument("--stride", type=positive_int, default=None, help="dataset frames between window frames")
    ev.add_argument("--split", default=None, metavar="NAME", help="the dataset split the windows come from (default: "
                    "the protocol's, val); all: every episode, for data recorded apart from the training data")
    _sampling_flags(ev)
    ev.set_defaults(func=_evaluate)
    cmp = sub.add_parser("compare", help="two evaluations of the same windows, window by window",
                         description="Every source both evaluations scored, A - B on each window with a 95%% "
                         "bootstrap interval over the windows (docs/evaluation.md).")
    cmp.add_argument("a", help="an output directory of `vid2world evaluate` (holds results.json)")
    cmp.add_argument("b", help="another, scored on the same windows")
    add_json_flag(cmp, "the comparison")
    cmp.set_defaults(func=_compare)


def _compare(args: argparse.Namespace) -> int:
    from ..io.args import write_json
    from .compare import compare_evaluations, comparison_json, format_comparison

    gaps = compare_evaluations(args.a, args.b)
    print(format_comparison(gaps, args.a, args.b))
    write_json(args.json, comparison_json(gaps, args.a, args.b))
    return 0
