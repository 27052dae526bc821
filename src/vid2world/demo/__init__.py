"""The offline demo (`vid2world demo`): the square world trained, rolled out and shown, plus the causal study."""

from .run import run_demo

__all__ = ["run_demo"]
