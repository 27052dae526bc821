"""vid2world: turn pretrained video diffusion models into interactive world models.

The command line: each command's arguments and handler live next to its code (a `register(sub)` function); this
module only assembles them and turns the input's errors into one line.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from typing import Sequence

from .io.args import check_json_target


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .bench import register as register_bench
    from .checkpoints.cli import register as register_checkpoints
    from .data.cli import register as register_data
    from .decide.cli import register as register_decide
    from .demo.cli import register as register_demo
    from .eval.cli import register as register_eval
    from .eval.idm.cli import register as register_idm
    from .eval.report.cli import register as register_report
    from .play.cli import register as register_play
    from .train.cli import register as register_train
    from .train.distill_cli import register as register_distill
    from .zoo.cli import register as register_zoo

    parser = argparse.ArgumentParser(prog="vid2world", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"vid2world {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for register in (register_demo, register_checkpoints, register_train, register_distill, register_eval,
                     register_report, register_idm, register_decide, register_play, register_zoo, register_bench, register_data):
        register(sub)  # in this order: the order `vid2world --help` lists the commands
    return parser


# The library's messages name its keywords ("pass trust_pickle=True"); the command line names its flags instead.
_FLAGS_FOR_KEYWORDS = {"trust_pickle=True": "--trust-pickle", "skip_bad=True": "--skip-bad",
                       "overwrite=True": "--overwrite"}


def _cli_wording(message: str) -> str:
    """An error message as the command line says it: its flags where the library names a keyword argument."""
    for keyword, flag in _FLAGS_FOR_KEYWORDS.items():
        message = message.replace(f"pass {keyword}", f"pass {flag}")
    return message


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors that are the input's fault: one line and exit status 2, no traceback."""
    errors: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, FileExistsError, PermissionError)
    trainer = sys.modules.get("vid2world.train.trainer")
    return errors + ((trainer.TrainingError,) if trainer else ())


# where the output goes, not the program, is at fault: one line, no traceback (atomic writes left nothing behind)
# (a PermissionError, EACCES, is a user error above and says so itself)
_PLACE_ERRORS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "over the disk quota",
                 errno.EROFS: "the file system is read-only"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "train":  # key=value overrides may follow flags: `train c.yaml --resume train.steps=9`
        args.overrides += [e for e in extra if "=" in e and not e.startswith("-")]
        extra = [e for e in extra if e not in args.overrides]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        check_json_target(args)  # before minutes of work, not after
        return args.func(args)
    except _user_errors() as err:
        print(f"vid2world {args.command}: error: {_cli_wording(str(err))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `vid2world ... | head` closed its end: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush cannot fail again
        return 141
    except OSError as err:
        if err.errno not in _PLACE_ERRORS:
            raise
        print(f"vid2world {args.command}: error: {err.filename or 'output'}: {_PLACE_ERRORS[err.errno]}",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
