"""The evaluation report: markdown and a self-contained HTML page built from a hand-made results.json, read as
text, parsed as HTML, and opened in a real headless Chromium."""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import asdict
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from vid2world.cli import main
from vid2world.eval.report.write import ReportConfig, write_report
from vid2world.eval.report.markdown import line as md_line, text as md_text
from vid2world.eval.results import EvaluationResults, MetricInfo, SourceScores
from vid2world.io.video import write_video

from .chromium import open_report

NASTY = '<script>alert("x")</script> & </table>'
ROOT = Path(__file__).resolve().parents[1]
HORIZON = 6


def _clip(seed: int, frames: int = 8) -> np.ndarray:
    """A small side-by-side clip (ground truth | prediction): a square moving right, the prediction a bit off."""
    rng = np.random.default_rng(seed)
    video = np.full((frames, 32, 64, 3), 30, np.uint8)
    for t in range(frames):
        video[t, 10:20, 2 + 3 * t: 12 + 3 * t] = (240, 200, 40)
        video[t, 10:20, 34 + 3 * t: 44 + 3 * t] = (240, 160, 40)
    return np.clip(video + rng.integers(0, 8, video.shape), 0, 255).astype(np.uint8)


PAIRED_WIN = {"difference": 1.5, "low": 0.75, "high": 2.25, "wins": 10, "windows": 12}
PAIRED_TIE = {"difference": -0.1111, "low": -0.2, "high": 0.05, "wins": 7, "windows": 12}


def make_results(out: Path, model_psnr: float = 24.0, **changes) -> EvaluationResults:
    """A results directory as `vid2world evaluate` leaves it: videos, a grid, results.json. With the default
    model_psnr (24) the model beats every baseline; below 22.5 it loses to copying the last frame on PSNR."""
    steps = np.arange(HORIZON)
    for name in ("videos/model_0.mp4", "videos/model_1.mp4", "videos/copy_0.mp4", "counterfactual.mp4"):
        write_video(_clip(len(name)), out / name, fps=4)
    results = EvaluationResults(
        protocol={"name": "square-world", "context": 2, "horizon": HORIZON, "stride": 4},
        model={"directory": "runs/square", "parameters": 123456, "action space": {"kind": "continuous", "dim": 2},
               "note": NASTY},
        command=["vid2world", "evaluate", "--model", "runs/square", "--note", NASTY],
        windows=12,
        metrics=[MetricInfo("psnr", True, "dB", "frames in [0, 1], epsilon 1e-8"),
                 MetricInfo("lpips", False, "", "VGG v0.1 heads, frames in [-1, 1]"),
                 MetricInfo("fvd", False, "", skipped="weights file weights/i3d_torchscript.pt not found")],
        sources=[
            SourceScores("model", "model", {"psnr": model_psnr, "lpips": 0.1234},
                         {"psnr": list(model_psnr + 2 - 0.5 * steps), "lpips": list(0.08 + 0.01 * steps)},
                         ["videos/model_0.mp4", "videos/model_1.mp4"]),
            SourceScores("copy last context frame", "baseline", {"psnr": 22.5, "lpips": 0.2345},
                         {"psnr": list(26 - 1.4 * steps), "lpips": list(0.15 + 0.03 * steps)}, ["videos/copy_0.mp4"]),
            SourceScores("model, another episode's actions", "baseline", {"psnr": 20.25, "lpips": 0.3011},
                         {"psnr": list(22 - 0.7 * steps), "lpips": list(0.2 + 0.02 * steps)}),
            SourceScores(NASTY, "baseline", {"psnr": 12.0}, {}),
        ],
        delta_n={"psnr": 8.5, "lpips": 4.2},
        paired={"copy last context frame": {"psnr": dict(PAIRED_WIN), "lpips": dict(PAIRED_TIE)}},
        action_accuracy={"idm": "idm/square", "real": 0.91, "model": 0.74, "chance": 0.25},
        counterfactual="counterfactual.mp4",
        notes=["fvd skipped: weights/i3d_torchscript.pt not found", NASTY])
    for key, value in changes.items():
        setattr(results, key, value)
    results.save(out)
    return results


class _Checker(HTMLParser):
    """Tags opened and closed in order (void elements excepted), and every src/href seen."""

    VOID = {"meta", "img", "br", "hr", "link", "source", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.stack, self.errors, self.urls, self.tags = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.urls += [value for name, value in attrs if name in ("src", "href")]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(f"unexpected </{tag}>")


def test_report_shows_scores_skips_command_and_escapes(tmp_path):
    make_results(tmp_path)
    md_path, html_path = write_report(tmp_path)
    md, page = md_path.read_text(), html_path.read_text()
    for text in (md, page):
        assert "22.5" in text and "0.1234" in text and "20.25" in text  # the table's values
        assert "weights/i3d_torchscript.pt not found" in text  # the skip, with its reason
        assert "vid2world evaluate --model runs/square" in text  # the command line
        assert "beats every baseline" in text and "does not beat" not in text
        assert "+8.50" in text and "74.0 %" in text and "25.0 %" in text  # delta-N, action accuracy, chance
        outside_code = re.sub(r"```.*?```", "", text, flags=re.S)  # a fenced code block shows its text literally
        assert "<script>" not in outside_code and "</table> &" not in outside_code  # never raw outside code
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;/table&gt;" in page
    assert r"\<script\>" in md and "| model | model | **24** | **0.1234** |" in md
    assert "![psnr ↑ per horizon step](plots/psnr.png)" in md and "](videos/model_0.mp4)" in md
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["lpips.png", "psnr.png"]  # no curve for fvd
    checker = _Checker()
    checker.feed(page)
    assert page.startswith("<!DOCTYPE html>") and not checker.errors and not checker.stack
    assert all(not re.match(r"[a-z]+:", u) or u.startswith("data:") for u in checker.urls), checker.urls
    assert checker.tags.count("video") == 4 and "script" not in checker.tags and "link" not in checker.tags
    assert sum(u.startswith("data:image/png;base64,") for u in checker.urls) == 2


def test_report_shows_the_window_by_window_comparison(tmp_path):
    make_results(tmp_path)
    md_path, html_path = write_report(tmp_path)
    for text in (md_path.read_text(), html_path.read_text()):
        assert "Window by window: the model against each baseline" in text and "95% bootstrap interval" in text
        assert "+1.50 (+0.75 to +2.25)" in text and "10 of 12" in text and "the model is better" in text
        assert "-0.111 (-0.200 to +0.050)" in text and "not separated: the interval includes 0" in text
    worse = {**PAIRED_WIN, "difference": -1.5, "low": -2.25, "high": -0.75, "wins": 2}
    make_results(tmp_path, paired={"copy last context frame": {"psnr": worse}})
    md_path, html_path = write_report(tmp_path)
    assert "⚠ the model is worse" in md_path.read_text() and '<td class="num loses">-1.50' in html_path.read_text()
    lower = {"difference": 0.05, "low": 0.02, "high": 0.08, "wins": 1, "windows": 12}  # LPIPS: lower is better
    make_results(tmp_path, paired={"copy last context frame": {"lpips": lower}})
    assert "⚠ the model is worse" in write_report(tmp_path)[0].read_text()
    lower = {**lower, "difference": -0.05, "low": -0.08, "high": -0.02, "wins": 11}
    make_results(tmp_path, paired={"copy last context frame": {"lpips": lower}})
    assert "the model is better" in write_report(tmp_path)[0].read_text()
    make_results(tmp_path, paired={})  # results from before the comparison existed: no section
    assert "Window by window" not in write_report(tmp_path)[0].read_text()


def test_a_model_that_loses_is_shown_as_such(tmp_path):
    make_results(tmp_path, model_psnr=21.0, delta_n={"psnr": -3.0})
    md_path, html_path = write_report(tmp_path)
    for text in (md_path.read_text(), html_path.read_text()):
        assert "does not beat the baselines: it loses or ties 1 of 5 comparisons" in text
        assert "does not beat the baseline “copy last context frame” on psnr: 21 dB vs 22.5 dB" in text
        assert "no better with the ground-truth actions than with random ones" in text  # delta-N of the wrong sign
    assert '<td class="num loses">21 ⚠</td>' in html_path.read_text()
    # lower is better for LPIPS: a model at the baseline's value ties, and a tie does not beat it
    make_results(tmp_path, model_psnr=30.0)
    results = EvaluationResults.load(tmp_path)
    results.sources[0].means["lpips"] = 0.2345
    results.save(tmp_path)
    assert "does not beat the baseline “copy last context frame” on lpips" in write_report(tmp_path)[0].read_text()


def test_report_is_deterministic_and_links_large_videos(tmp_path):
    make_results(tmp_path)
    md, page = write_report(tmp_path)
    first = (md.read_bytes(), page.read_bytes(), (tmp_path / "plots" / "psnr.png").read_bytes())
    md, page = write_report(tmp_path)
    assert (md.read_bytes(), page.read_bytes(), (tmp_path / "plots" / "psnr.png").read_bytes()) == first
    assert b"Software" not in first[2] and b"tIME" not in first[2]
    from PIL import Image

    with Image.open(tmp_path / "plots" / "psnr.png") as plot:  # the fixed size: 6.4 x 3.6 inches at 110 dpi
        assert plot.size == (704, 396) and np.asarray(plot.convert("L")).std() > 10
    small = write_report(tmp_path, ReportConfig(embed_file_mib=1e-6))[1].read_text()
    assert "data:video/mp4" not in small and "over the 1e-06 MiB embedding cap: open videos/model_0.mp4" in small
    assert 'href="videos/model_0.mp4"' in small and "data:image/png" in small  # plots still embedded


def test_markdown_shows_any_string_literally():
    assert md_line("1. first") == r"1\. first" and md_line("# not a heading") == r"\# not a heading"
    assert md_line("- not a list") == r"\- not a list" and md_line("22.5 dB") == "22.5 dB"
    assert md_line("-3.0 dB") == "-3.0 dB" and md_line("#3") == "#3" and md_line("12) x") == r"12\) x"
    assert md_text("idm_accuracy _x_ *y* a|b <i>") == r"idm_accuracy \_x\_ \*y\* a\|b \<i\>"
    assert md_text("two\nlines") == "two lines"  # a table cell stays one line


@pytest.mark.parametrize("change, message", [
    (lambda r: r.sources[0].means.update(psnr=float("nan")), "sources['model'].means['psnr'] is nan"),
    (lambda r: r.sources[1].per_horizon["lpips"].append(float("inf")), "per_horizon['lpips'][6] is inf"),
    (lambda r: r.sources[0].means.update(dreamsim=0.1), "names metric 'dreamsim', which `metrics` does not"),
    (lambda r: r.action_accuracy.update(model=74.0), "action_accuracy['model'] is 74.0; expected a fraction"),
    (lambda r: setattr(r.sources[2], "kind", "oracle"), "kind is 'oracle'; expected one of ['model', 'baseline']"),
    (lambda r: r.paired["copy last context frame"]["psnr"].update(low=float("nan")),
     "paired['copy last context frame']['psnr']['low'] is nan"),
    (lambda r: r.paired.update(oracle={}), "paired names source 'oracle', which `sources` does not hold"),
    (lambda r: r.paired["copy last context frame"]["psnr"].update(wins=13), "wins 13 out of [0, windows]"),
    (lambda r: r.sources[1].per_window.update(psnr=[22.5] * 11), "per_window['psnr'] holds 11 values; expected one"),
    (lambda r: r.sources[1].per_window.update(psnr=[22.5] * 11 + [float("inf")]), "per_window['psnr'][11] is inf"),
    (lambda r: r.sources[0].per_window.update(fid=[1.0] * 12), "per_window names metric 'fid', which `metrics`"),
])
def test_bad_results_are_named(tmp_path, change, message):
    results = make_results(tmp_path)
    change(results)
    (tmp_path / "results.json").write_text(json.dumps(asdict(results)))  # json writes NaN and Infinity
    with pytest.raises(ValueError, match=re.escape(message)):
        write_report(tmp_path)
    assert not (tmp_path / "report.html").exists()


def test_missing_video_and_missing_results_are_named(tmp_path):
    make_results(tmp_path)
    (tmp_path / "videos" / "copy_0.mp4").unlink()
    with pytest.raises(FileNotFoundError, match=r"copy_0.mp4: results.json sources\['copy last context frame'\]"):
        write_report(tmp_path)
    assert not (tmp_path / "plots").exists()  # nothing written before the check
    assert main(["report", str(tmp_path / "nowhere")]) == 2


def test_report_command_rebuilds_the_report(tmp_path, capsys):
    make_results(tmp_path, notes=[], action_accuracy={}, delta_n={}, counterfactual=None)
    assert main(["report", str(tmp_path)]) == 0
    assert str(tmp_path / "report.html") in capsys.readouterr().out
    md = (tmp_path / "report.md").read_text()
    assert "No counterfactual grid was written." in md and "Action accuracy" not in md and "ΔN" not in md


def test_report_opens_in_headless_chromium(tmp_path):
    make_results(tmp_path)
    seen = open_report(write_report(tmp_path)[1], tmp_path / "profile")
    assert seen.errors == []
    assert all(u.startswith(("file:", "data:")) for u in seen.requests), seen.requests  # nothing from a network
    assert seen.plot_width > 100 and seen.video_widths == [64] * 4
    assert not seen.overflows and seen.active_elements == 0
    assert seen.page.std() > 10 and seen.table.std() > 10 and len(np.unique(seen.table)) > 10  # drawn, not blank
    assert seen.table.shape[0] >= 5 * 20 and seen.table.shape[1] > 400  # five rows (header + 4 sources), wide
    assert seen.plot.shape[1] > 300 and seen.plot.std() > 10  # the plot is drawn on screen, at a readable size


def _ensure_chromium(tmp_path: Path, chromium: Path, apt_rc: int) -> tuple[subprocess.CompletedProcess, list[str]]:
    """scripts/ensure_chromium.sh run against a stand-in apt-get that records its calls and exits with apt_rc."""
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    calls = tmp_path / "apt-calls"
    (fake / "apt-get").write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit {apt_rc}\n')
    (fake / "apt-get").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "CHROMIUM": str(chromium), "TMPDIR": str(tmp_path)}
    proc = subprocess.run(["sh", str(ROOT / "scripts" / "ensure_chromium.sh")], env=env, capture_output=True,
                          text=True, timeout=60)
    return proc, calls.read_text().splitlines() if calls.exists() else []


def test_ensure_chromium_installs_only_when_missing_and_never_fails(tmp_path):
    present = tmp_path / "chromium"
    present.write_text("#!/bin/sh\necho Chromium 1.0\n")
    present.chmod(0o755)
    proc, calls = _ensure_chromium(tmp_path, present, apt_rc=0)
    assert proc.returncode == 0 and proc.stdout == "" and calls == []  # there already: nothing to do
    proc, calls = _ensure_chromium(tmp_path, tmp_path / "missing", apt_rc=100)
    assert proc.returncode == 0  # a failed install never fails `make test`
    if os.geteuid() != 0:
        assert calls == [] and "not usable as root" in proc.stdout
        return
    assert calls == ["install -y -q chromium", "update -q"]  # the install failed, then refreshing the lists did
    assert "could not install chromium" in proc.stdout.splitlines()[-1]
    (tmp_path / "apt-calls").unlink()
    proc, calls = _ensure_chromium(tmp_path, tmp_path / "missing", apt_rc=0)
    assert proc.returncode == 0 and calls == ["install -y -q chromium"] and "installed" in proc.stdout
