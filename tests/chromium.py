"""A page opened in Debian's headless Chromium through Playwright, and what a test needs to judge it: console
messages, requests, the text, screenshots of the whole page, the score table and the first plot. Skips only when
Chromium or Playwright is missing (`make test` installs Chromium when it can)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass
class Seen:
    messages: list[tuple[str, str]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    text: str = ""
    video_widths: list[int] = field(default_factory=list)
    overflows: bool = True
    active_elements: int = -1  # script, link, iframe, object
    page: np.ndarray | None = None  # grey screenshots
    table: np.ndarray | None = None
    plot: np.ndarray | None = None
    plot_width: int = 0

    @property
    def errors(self) -> list[tuple[str, str]]:
        return [m for m in self.messages if m[0] in ("error", "pageerror", "dialog")]


def chromium_or_skip():
    sync_api = pytest.importorskip("playwright.sync_api", reason="python playwright is not installed")
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} not found: `make test` installs Debian's chromium (apt-get install chromium)")
    return sync_api


def _grey(png: bytes) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), np.float32)


def open_report(page_path: Path, profile: Path) -> Seen:
    """Open `page_path` (a report.html) and record what Chromium shows and says."""
    sync_api, seen = chromium_or_skip(), Seen()
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(str(profile), executable_path=str(CHROMIUM), args=ARGS,
                                                        headless=True, viewport={"width": 1200, "height": 900})
        try:
            page = browser.new_page()
            page.on("console", lambda m: seen.messages.append((m.type, m.text)))
            page.on("pageerror", lambda e: seen.messages.append(("pageerror", str(e))))
            page.on("request", lambda r: seen.requests.append(r.url))
            page.on("dialog", lambda d: (seen.messages.append(("dialog", d.message)), d.dismiss()))  # a script ran
            page.goto(page_path.as_uri(), wait_until="load")
            table, plot = page.locator("table.scores"), page.locator(".gallery.plots img").first
            assert table.is_visible() and plot.is_visible()
            seen.plot_width = plot.evaluate("img => img.complete && img.naturalWidth")
            page.wait_for_function("[...document.querySelectorAll('video')].every(v => v.readyState >= 2)",
                                   timeout=10_000)
            seen.video_widths = page.evaluate("[...document.querySelectorAll('video')].map(v => v.videoWidth)")
            seen.overflows = not page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            seen.active_elements = page.evaluate("document.querySelectorAll('script, link, iframe, object').length")
            seen.text = page.inner_text("body")
            seen.page = _grey(page.screenshot(full_page=True))
            seen.table = _grey(page.screenshot(clip=table.bounding_box()))
            seen.plot = _grey(plot.screenshot())
        finally:
            browser.close()
    return seen
