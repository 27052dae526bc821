"""The play page in a real browser (Debian's Chromium through Playwright) against the real server and the bundled
ViZDoom model with the real game beside it (a tiny random model where either is missing): keys held change the
frames, the page shows its frame rate, and a recording downloads as an mp4 with the frames it says it holds.

The frame rate the page measured is written, with a screenshot, where VID2WORLD_PLAY_REPORT points (a .json path;
docs/performance.md quotes it); it is never asserted here (wall-clock speed is a benchmark, not a test)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import av
import pytest

import vid2world as v2w
from vid2world.play.game import PlayConfig

from .chromium import ARGS, CHROMIUM, chromium_or_skip
from .test_play_server import running

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")


def bundled_or_tiny(tmp_path):
    try:
        import vizdoom  # noqa: F401
        return v2w.zoo.load("vizdoom-deathmatch"), None, True
    except (ImportError, ValueError):
        from .test_eval_run import make_inputs

        model_dir, data = make_inputs(tmp_path)
        return v2w.WorldModel.from_pretrained(model_dir), data, False


@pytest.fixture
def play_threads():
    """The model's CPU threads as `vid2world play` sets them (`serve`), given back afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(PlayConfig().threads)
    yield
    torch.set_num_threads(threads)


def canvas(page) -> str:
    return page.evaluate("document.getElementById('model').toDataURL()")


def test_the_page_plays_records_and_downloads(tmp_path, play_threads):
    sync_api = chromium_or_skip()
    from vid2world.play.server import create_app

    model, data, real = bundled_or_tiny(tmp_path)
    with running(create_app(model, PlayConfig(), data)) as host, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 760}, accept_downloads=True)
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"http://{host}/", wait_until="load")
            page.wait_for_function("window.play.frames >= 3", timeout=60_000)
            assert page.is_visible("#realview") == real
            page.keyboard.down("KeyW")
            page.keyboard.down("ArrowRight")
            if real:  # W is forward, the right arrow the +12 degree turn bin (the recorder's layout)
                assert page.evaluate("currentAction()") == {"buttons": [1, 0, 0, 0, 0], "turn": 5}
            seen = {canvas(page)}
            start, frames0 = time.time(), page.evaluate("window.play.frames")
            while time.time() - start < 20 and page.evaluate("window.play.frames") < frames0 + 12:
                page.wait_for_timeout(250)
                seen.add(canvas(page))
            elapsed, frames = time.time() - start, page.evaluate("window.play.frames") - frames0
            fps = page.evaluate("window.play.fps")
            assert len(seen) >= 3, "the picture did not change while keys were held"
            page.keyboard.up("ArrowRight")
            page.keyboard.up("KeyW")
            page.click("#record")
            # frames made before the server saw "record start" can still arrive after the click (the outbox's
            # queue, the one being computed and the one being sent): wait past them, then for 4 recorded ones
            in_flight = PlayConfig().queue_frames + 2
            page.wait_for_function(f"window.play.frames >= {page.evaluate('window.play.frames') + 4 + in_flight}",
                                   timeout=60_000)
            page.click("#record")
            page.wait_for_selector("#download:not([hidden])", timeout=60_000)
            recorded = page.evaluate("window.play.lastRecording.frames")
            with page.expect_download() as download:
                page.click("#download")
            video = tmp_path / "session.mp4"
            download.value.save_as(video)
            with av.open(str(video)) as container:
                decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
            assert len(decoded) == recorded >= 4
            assert decoded[0].shape[1] == (128 if real else 16)  # the model beside the game, side by side
            assert not errors and "disconnected" not in page.inner_text("#state")
            report = os.environ.get("VID2WORLD_PLAY_REPORT")
            if report:
                Path(report).parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(Path(report).with_suffix(".png")))
                Path(report).write_text(json.dumps({
                    "model": "vizdoom-deathmatch" if real else "tiny random", "page_fps": fps,
                    "frames": frames, "seconds": round(elapsed, 2), "frames_per_second": frames / elapsed,
                    "side_by_side": real, "model_threads": PlayConfig().threads}, indent=1) + "\n")
        finally:
            browser.close()
