"""The evaluation report: `write_report(out_dir)` reads `results.json` and the files it names, and writes
`report.md`, a self-contained `report.html` and the per-horizon plots under `plots/`, each atomically.

`vid2world evaluate` calls it at its end; `vid2world report DIR` rebuilds it from the same directory."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ...io.atomic import write_text
from ..results import EvaluationResults
from . import context, scores
from .document import Block, Heading, Media, Paragraph
from .findings import check_results
from .html import render_html
from .markdown import render_markdown
from .plots import PlotConfig, horizon_plots

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
MIME_TYPES = {".mp4": "video/mp4", ".webm": "video/webm", ".gif": "image/gif", ".png": "image/png"}
MIB = 1 << 20


@dataclass(frozen=True)
class ReportConfig:
    """How much video the HTML page may embed: a video over `embed_file_mib`, or one past `embed_total_mib` for the
    whole page, is linked by its relative path instead (and the page says so). Plots are always embedded."""

    embed_file_mib: float = 4.0
    embed_total_mib: float = 32.0
    plots: PlotConfig = field(default_factory=PlotConfig)


class _Files:
    """Reads the files results.json names, embedding each while the page's budget allows."""

    def __init__(self, out_dir: Path, config: ReportConfig) -> None:
        self.out_dir, self.config, self.used = out_dir, config, 0

    def media_type(self, path: str, where: str) -> str:
        """The file's MIME type; raises when it is missing or of a type the page cannot show."""
        file = self.out_dir / path
        mime = MIME_TYPES.get(Path(path).suffix.lower())
        if mime is None:
            raise ValueError(f"{file}: results.json {where} names a file of type {Path(path).suffix!r}; expected "
                             f"one of {sorted(MIME_TYPES)}")
        if not file.is_file():
            raise FileNotFoundError(f"{file}: results.json {where} names this file, which is missing")
        return mime

    def __call__(self, path: str, caption: str, where: str) -> Media:
        file, mime = self.out_dir / path, self.media_type(path, where)
        size = file.stat().st_size
        if mime == "image/png":  # a plot: small, and the page is not self-contained without it
            return Media(path, caption, mime, data=file.read_bytes())
        if size > self.config.embed_file_mib * MIB:
            why = f"{size / MIB:.1f} MiB, over the {self.config.embed_file_mib:g} MiB embedding cap: open {path}"
            return Media(path, caption, mime, why_linked=why)
        if self.used + size > self.config.embed_total_mib * MIB:
            why = f"the page's {self.config.embed_total_mib:g} MiB embedding budget is spent: open {path}"
            return Media(path, caption, mime, why_linked=why)
        self.used += size
        return Media(path, caption, mime, data=file.read_bytes())


def _check_named_files(results: EvaluationResults, files: _Files) -> None:
    """Every video results.json names is there and of a known type, before anything is written."""
    named = [(path, f"sources[{s.name!r}].videos[{i}]") for s in results.sources for i, path in enumerate(s.videos)]
    for path, where in named + ([(results.counterfactual, "counterfactual")] if results.counterfactual else []):
        files.media_type(path, where)


def _introduction(results: EvaluationResults) -> list[Block]:
    name = results.protocol.get("name")
    model = results.model.get("directory") or results.model.get("name")
    text = (f"{results.windows} evaluation windows" + (f" of protocol {name}" if name else "")
            + (f", model {model}" if model else "") + ". Every source was scored by the same code on the same "
            "windows; baselines are what the model must beat.")
    return [Heading("Evaluation report" + (f": {name}" if name else ""), 1), Paragraph(text)]


def report_blocks(results: EvaluationResults, plots: list, files: context.Loader) -> list[Block]:
    """The report's content, in reading order, for both renderers."""
    return (_introduction(results) + scores.verdict(results) + scores.score_table(results) + scores.paired(results)
            + context.curves(plots, files) + context.videos(results, files) + context.counterfactual(results, files)
            + scores.delta_n(results) + scores.action_accuracy(results) + context.metric_conventions(results)
            + context.notes(results) + context.provenance(results))


def write_report(out_dir: str | os.PathLike, config: ReportConfig = ReportConfig()) -> tuple[Path, Path]:
    """Write `report.md`, `report.html` and `plots/*.png` into `out_dir` from its `results.json`; returns the
    markdown and HTML paths. Raises FileNotFoundError (no results.json, a named video missing) or ValueError (a
    malformed or non-finite value, named by its key)."""
    out_dir = Path(out_dir)
    results = EvaluationResults.load(out_dir)
    check_results(results)
    files = _Files(out_dir, config)
    _check_named_files(results, files)
    plots = horizon_plots(results, out_dir, config.plots)
    blocks = report_blocks(results, plots, files)
    title = blocks[0].text if isinstance(blocks[0], Heading) else "Evaluation report"
    md = write_text(out_dir / REPORT_MD, render_markdown(blocks))
    page = write_text(out_dir / REPORT_HTML, render_html(blocks, title))
    return md, page
