"""`vid2world report DIR`: rebuild an evaluation's report from its results.json (after editing notes, or with
another embedding cap), without scoring anything again."""

from __future__ import annotations

import argparse


def _report(args: argparse.Namespace) -> int:
    from .write import ReportConfig, write_report

    md, page = write_report(args.dir, ReportConfig(embed_file_mib=args.embed_mib))
    print(f"wrote {md}\nwrote {page}")
    return 0


def _mib(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a size in MiB >= 0, got {text!r}")
    return value


def register(sub) -> None:
    """The `report` command."""
    report = sub.add_parser("report", help="rebuild an evaluation's report.md and report.html from results.json")
    report.add_argument("dir", help="the output directory of `vid2world evaluate` (holds results.json)")
    report.add_argument("--embed-mib", type=_mib, default=4.0,
                        help="videos up to this size are embedded in report.html, larger ones linked "
                             "(default: 4; 0 links every video)")
    report.set_defaults(func=_report)
