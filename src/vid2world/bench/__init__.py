"""Benchmarks (`vid2world bench ...`): each module holds one measurement and registers its own sub-commands."""

from __future__ import annotations


def register(sub) -> None:
    """The `bench` command: one sub-command per measurement, in the order `vid2world bench --help` lists them."""
    from . import causal, convert, drift, loader, play, rollout, train

    bench = sub.add_parser("bench", help="measurements, as tables and JSON")
    bench_sub = bench.add_subparsers(dest="bench", required=True)
    for module in (causal, rollout, play, drift, convert, train, loader):
        module.register(bench_sub)
