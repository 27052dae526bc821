"""Simulators that install from PyPI and run offline on a CPU, behind one small interface, and the policies that
drive them while recording."""

from .base import Simulator, make_simulator, simulator_ids
from .policies import POLICIES, ExplorePolicy, HoldPolicy, RandomPolicy, make_policy

__all__ = ["POLICIES", "ExplorePolicy", "HoldPolicy", "RandomPolicy", "Simulator", "make_policy", "make_simulator",
           "simulator_ids"]
