"""Evaluation: predictions written to disk first, then scored against ground truth and honest baselines
(docs/evaluation.md)."""
