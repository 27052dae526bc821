"""The offline demo (`vid2world demo`): the bundled ViZDoom world model against the real game."""

from .run import run_demo

__all__ = ["run_demo"]
