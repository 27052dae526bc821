"""The argparse types and flags every command shares (one place, so each flag reads and fails the same way), and
the `--json` writer. Every command's registrar imports them from here."""

from __future__ import annotations

import argparse
import json
import math

from .atomic import write_text
from .outputs import check_output_file


def add_json_flag(parser: argparse.ArgumentParser, what: str = "the result") -> None:
    """The one `--json FILE` of every command that can write its result for machines, with the `--overwrite` that
    lets it replace an existing FILE (checked before any work by `check_json_target`)."""
    parser.add_argument("--json", metavar="FILE", help=f"also write {what} as JSON to FILE (a new file)")
    parser.add_argument("--overwrite", action="store_true", help="replace FILE of --json when it exists")


def check_json_target(args: argparse.Namespace) -> None:
    """Refuse, before the command runs, a `--json FILE` that exists (without --overwrite) or cannot be written."""
    if getattr(args, "json", None):
        check_output_file(args.json, getattr(args, "overwrite", False), "--json")


def write_json(path: str | None, result: dict) -> None:
    """Write a result for machines too, when --json asked for it."""
    if path:
        write_text(path, json.dumps(result, indent=1))
        print(f"\nwrote {path}")


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type for counts, sizes and steps: an integer >= 1."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type for seeds, warm-up steps, worker counts and the like: an integer >= 0."""
    return _int_at_least(text, 0)


def int_list(text: str) -> list[int]:
    """argparse type: comma-separated integers >= 1, at least one."""
    values = [positive_int(v) for v in text.split(",") if v.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 1, got {text!r}")
    return values


def choice_list(choices: tuple[str, ...]):
    """argparse type: comma-separated names from `choices`, at least one."""
    def parse(text: str) -> list[str]:
        values = [v.strip() for v in text.split(",") if v.strip()]
        if not values or any(v not in choices for v in values):
            raise argparse.ArgumentTypeError(f"expected comma-separated names from {', '.join(choices)}, got {text!r}")
        return values

    return parse


def float_list(text: str) -> list[float]:
    """argparse type: comma-separated finite numbers, at least one."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated finite numbers, got {text!r}")
    return values


def frame_size(text: str) -> tuple[int, int]:
    """argparse type of frame and latent sizes: '64' -> (64, 64); '150x280' -> (150, 280)."""
    parts = text.lower().split("x")
    try:
        h, w = (int(parts[0]), int(parts[0])) if len(parts) == 1 else (int(parts[0]), int(parts[1]))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size like 64 or 150x280, got {text!r}") from None
    if h < 1 or w < 1 or len(parts) > 2:
        raise argparse.ArgumentTypeError(f"expected a size like 64 or 150x280 (positive), got {text!r}")
    return h, w


def torch_device(text: str) -> str:
    """argparse type of every --device: a torch device that this machine and this torch build have."""
    if text == "cpu":
        return text
    import torch

    try:
        parsed = torch.device(text)
    except RuntimeError:
        parsed = None
    if parsed is None or parsed.type not in ("cpu", "cuda", "mps"):
        raise argparse.ArgumentTypeError(f"expected a torch device such as cpu, cuda, cuda:1 or mps, got {text!r}")
    if parsed.type == "cuda":
        if torch.version.cuda is None and torch.version.hip is None:
            raise argparse.ArgumentTypeError(
                f"{text}: this torch build ({torch.__version__}) has no CUDA; install one built for your CUDA "
                "version from the PyTorch index, e.g. pip install torch --index-url "
                "https://download.pytorch.org/whl/cu124 (see https://pytorch.org/get-started/locally/), or use cpu")
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise argparse.ArgumentTypeError(f"{text}: torch {torch.__version__} has CUDA, but no GPU is visible "
                                             "(check nvidia-smi, the driver and CUDA_VISIBLE_DEVICES), or use cpu")
        if (parsed.index or 0) >= count:
            raise argparse.ArgumentTypeError(f"{text}: only {count} GPU(s) visible (device indices 0 to {count - 1})")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"{text}: MPS is not available here (Apple-silicon Macs only); use cpu")
    return text


def add_progress_flag(parser: argparse.ArgumentParser) -> None:
    """The one --no-progress of every command that reports progress (a bar on a terminal, plain lines in logs)."""
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress output (a bar on a terminal, a line every ~10%% in logs otherwise)")
