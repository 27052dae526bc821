"""Data: datasets and generators of observations and actions."""

from .synthetic import SquareWorld

__all__ = ["SquareWorld"]
