"""Training: objectives live in `vid2world.diffusion`; loops live here."""

from .simple import FitConfig, fit_world_model

__all__ = ["FitConfig", "fit_world_model"]
