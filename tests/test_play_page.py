"""The play page's own manners, in headless Chromium against the real server and a tiny model: a dragged slider
sends a few settings messages with its latest value, not one per position; a reset the server refuses leaves the
page playing. (tests/test_play_browser.py plays a whole game; this one is quicker.)"""

from __future__ import annotations

import pytest

from vid2world.play.game import PlayConfig
from vid2world.play.protocol import Settings

from .chromium import ARGS, CHROMIUM, chromium_or_skip
from .test_play_server import running, tiny  # noqa: F401 (a fixture)

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_dragged_slider_sends_its_latest_value_and_a_refused_reset_keeps_playing(tiny, monkeypatch):  # noqa: F811
    sync_api = chromium_or_skip()
    from vid2world.play import server as play_server

    received = []
    parse = play_server.parse

    def counting(raw):
        message = parse(raw)
        received.append(message)
        return message

    monkeypatch.setattr(play_server, "parse", counting)
    model, data = tiny
    with running(play_server.create_app(model, PlayConfig(), data)) as host, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"http://{host}/", wait_until="load")
            page.wait_for_function("window.play.frames >= 2", timeout=60_000)
            # a drag: the slider passes every position from 1 to 20 within a few milliseconds
            page.evaluate("""() => { const s = document.getElementById('steps');
                for (let v = 1; v <= 20; v++) { s.value = v; s.dispatchEvent(new Event('input')); } }""")
            page.wait_for_timeout(1000)
            settings = [m for m in received if isinstance(m, Settings)]
            assert 1 <= len(settings) <= 3, settings  # was 20, one per position
            assert settings[-1].steps == 20
            page.fill("#episode", "99")  # the tiny dataset has 8 episodes: the server refuses the reset
            page.click("#reset")
            page.wait_for_function("document.getElementById('message').textContent.includes('must be below 8')",
                                   timeout=30_000)
            frames = page.evaluate("window.play.frames")
            page.wait_for_function(f"window.play.frames >= {frames + 3}", timeout=60_000)  # still playing
            assert page.evaluate("window.play.paused") is False
            assert page.inner_text("#pause") == "pause" and page.inner_text("#state") == "playing"
            assert not errors
        finally:
            browser.close()
