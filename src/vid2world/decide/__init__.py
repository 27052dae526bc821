"""Decisions with a world model: policies, outcome heads, policy evaluation (docs/decisions.md)."""
