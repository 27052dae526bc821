"""`vid2world idm train`: fit an inverse-dynamics model on a dataset's real frames and report its held-out accuracy
against chance (docs/idm.md)."""

from __future__ import annotations

import argparse
from typing import Any

from ...io.args import add_progress_flag, non_negative_int, positive_int, torch_device


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def format_scores(scores: dict[str, Any]) -> str:
    """Held-out scores as lines: each group's scores with chance beside them, then the overall action accuracy."""
    lines = []
    for name, group in scores["groups"].items():
        chance = group["chance"]
        shown = [k for k in ("accuracy", "exact_match", "r2", "sign_agreement") if k in group]
        text = ", ".join(f"{k} {_num(group[k])} (chance {_num(chance[k])})" for k in shown)
        lines.append(f"  {name} ({group['kind']}): {text}")
        for label, acc in group.get("per_label", {}).items():
            lines.append(f"    {label}: {acc:.3f} (chance {chance['per_label'][label]:.3f})")
    if scores["action_accuracy"] is not None:
        lines.append(f"  action accuracy (mean of discrete groups): {scores['action_accuracy']:.3f} "
                     f"(chance {scores['chance_accuracy']:.3f})")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _idm_train(args: argparse.Namespace) -> int:
    from .model import IDMConfig
    from .fit import FitConfig, fit_idm
    from .store import check_idm_target, save_idm

    check_idm_target(args.out, args.overwrite)  # before minutes of fitting, not after
    cfg = FitConfig(steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed,
                    model=IDMConfig(width=args.width, before=args.before, after=args.after))
    idm = fit_idm(args.data, cfg, device=args.device, progress=not args.no_progress)
    out = save_idm(idm, args.out, overwrite=args.overwrite)
    held = idm.report["held_out"]
    print(f"held-out scores on {held['episodes']} episodes ({held['rule']}), {held['pairs']} frame pairs:")
    print(format_scores(held))
    print(f"wrote {out}")
    return 0


def register(sub) -> None:
    """The `idm` command and its `train` sub-command."""
    idm = sub.add_parser("idm", help="an inverse-dynamics model (frames -> action) for action-accuracy scores")
    idm_sub = idm.add_subparsers(dest="idm", required=True)
    train = idm_sub.add_parser("train", help="fit an IDM on real frames; report its held-out accuracy vs chance",
                               description="Fit an inverse-dynamics model (frames t, t+1 -> action t) on split "
                               "'train' of a dataset and score it on split 'val' (or, without one, on 10% of the "
                               "training episodes chosen by name), beside the majority-label predictor.")
    train.add_argument("--data", required=True, help="dataset directory with actions (`vid2world data record`)")
    train.add_argument("--out", required=True, help="directory to write idm.safetensors and idm.json into")
    train.add_argument("--steps", type=positive_int, default=2000, help="training steps (default: 2000)")
    train.add_argument("--batch", type=positive_int, default=64, help="frame pairs per step (default: 64)")
    train.add_argument("--lr", type=_positive_float, default=2e-3, help="peak learning rate (default: 2e-3)")
    train.add_argument("--width", type=positive_int, default=32, help="channels of the first conv (default: 32)")
    train.add_argument("--before", type=non_negative_int, default=0,
                       help="frames before t the IDM also sees (default: 0)")
    train.add_argument("--after", type=non_negative_int, default=0,
                       help="frames after t+1 the IDM also sees: where an action shows late (momentum) (default: 0)")
    train.add_argument("--seed", type=non_negative_int, default=0, help="same seed, same weights (default: 0)")
    train.add_argument("--device", type=torch_device, default="cpu", help="torch device (default: cpu)")
    train.add_argument("--overwrite", action="store_true", help="replace the IDM already in --out")
    add_progress_flag(train)
    train.set_defaults(func=_idm_train)
