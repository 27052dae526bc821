"""`vid2world train`: its arguments and handler."""

from __future__ import annotations

import argparse
import sys

from ..io.args import add_progress_flag


def _train(args: argparse.Namespace) -> int:
    from ..train.config import load_config
    from ..train.trainer import TrainingStopped, train

    config = load_config(args.config, args.overrides)
    try:
        result = train(config, resume=args.resume, progress=not args.no_progress)
    except TrainingStopped as stopped:  # Ctrl-C: one line, and the conventional status of a SIGINT exit
        newline = "\n" if sys.stderr.isatty() else ""  # past the progress bar and the terminal's ^C
        print(f"{newline}vid2world train: {stopped}", file=sys.stderr)
        return 130
    if result.model_dir:
        loss = "n/a" if result.last_loss is None else f"{result.last_loss:.5f}"
        print(f"trained {result.steps} steps (last logged loss {loss}); world model in {result.model_dir}, "
              f"checkpoints in {result.out}/checkpoints")
    return 0


def register(sub) -> None:
    """The `train` command."""
    train = sub.add_parser("train", help="pretrain a video model or fine-tune a world model (YAML config)",
                           description="Train from a YAML config with key=value overrides, e.g. `vid2world train "
                           "configs/tiny.yaml data.path=data/doom train.steps=200`. Several processes: launch with "
                           "`torchrun --nproc_per_node N -m vid2world.cli train ...` or `accelerate launch`.")
    train.add_argument("config", help="YAML config (see configs/ and docs/training.md)")
    train.add_argument("overrides", nargs="*", help="key=value overrides of config keys, e.g. train.steps=100")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in the config's out directory from its newest checkpoint, exactly")
    add_progress_flag(train)
    train.set_defaults(func=_train)
