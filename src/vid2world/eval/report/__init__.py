"""The evaluation report from `results.json` (docs/evaluation.md, "The report"): `write.py` (`write_report`),
`findings.py` (checks and model-vs-baseline comparisons), `scores.py` and `context.py` (the sections),
`document.py` (plain blocks), `markdown.py` and `html.py` (the two renderers), `style.py` (inline CSS),
`plots.py` (per-horizon curves), `cli.py` (`vid2world report DIR`)."""

from .write import ReportConfig, write_report

__all__ = ["ReportConfig", "write_report"]
