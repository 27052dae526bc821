"""`vid2world play`: its arguments and handler."""

from __future__ import annotations

import argparse

from ..io.args import positive_int, torch_device

PORTS = (1, 65535)


def port(text: str) -> int:
    """argparse type of --port: a TCP port number, checked before the server makes anything."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not PORTS[0] <= value <= PORTS[1]:
        raise argparse.ArgumentTypeError(f"expected a port number in {PORTS[0]}..{PORTS[1]}, got {text!r}")
    return value


def _play(args: argparse.Namespace) -> int:
    from .game import PlayConfig
    from .server import serve

    config = PlayConfig(max_sessions=args.max_sessions, preset=args.preset, side_by_side=not args.no_real,
                        allowed_origins=tuple(args.allow_origin or ()),
                        threads=args.threads or PlayConfig.threads)
    serve(args.model, args.data, config, args.host, args.port, args.device)
    return 0


def register(sub) -> None:
    """The `play` command."""
    p = sub.add_parser("play", help="play inside a world model in the browser (a local server and page)")
    p.add_argument("--model", default="vizdoom-deathmatch",
                   help="a world-model directory or a bundled model's name (default: vizdoom-deathmatch)")
    p.add_argument("--data", default=None, help="a dataset directory whose episodes start the games (default: the "
                                                "model's simulator, when it names one)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=port, default=8765, help="port (default: 8765)")
    p.add_argument("--max-sessions", type=positive_int, default=4, help="players at once (default: 4)")
    p.add_argument("--preset", choices=["fast", "quality"], default="fast",
                   help="sampling preset at the start; the page's sliders change it (default: fast)")
    p.add_argument("--no-real", action="store_true", help="do not run the real simulator beside the model")
    p.add_argument("--allow-origin", action="append", metavar="URL",
                   help="also accept pages from this origin (repeatable; default: the server's own only)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="CPU threads for the model (default: 1: the page and the real game share the cores, and more "
                        "model threads spinning against them play slower on a small machine)")
    p.add_argument("--device", type=torch_device, default="cpu", help="torch device (default: cpu)")
    p.set_defaults(func=_play)
