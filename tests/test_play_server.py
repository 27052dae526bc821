"""`vid2world play`'s server over real loopback WebSockets (uvicorn in a thread, the `websockets` client): a player
gets the layout and frames, pauses, steps, resets, changes the sampling and records an mp4; bad messages get an
error and the game goes on; other origins are refused; one player beyond the limit is told the server is busy."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from contextlib import contextmanager

import av
import numpy as np
import pytest

import vid2world as v2w
from vid2world.play.game import PlayConfig
from vid2world.play.protocol import ProtocolError, parse

from .test_eval_run import make_inputs

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
ws_client = pytest.importorskip("websockets.sync.client")
pytestmark = pytest.mark.usefixtures("one_thread")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running(app):
    """The app served by uvicorn on a free loopback port, in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws_max_size=65536))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        assert time.time() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    model_dir, data = make_inputs(tmp_path_factory.mktemp("play"))
    return v2w.WorldModel.from_pretrained(model_dir), data


def receive(ws, kind: str, timeout: float = 30.0) -> dict:
    """The next message of `kind`, skipping others."""
    deadline = time.time() + timeout
    while True:
        message = json.loads(ws.recv(timeout=max(0.1, deadline - time.time())))
        if message["type"] == kind:
            return message


def test_protocol_names_what_is_wrong():
    for raw, expected in [("{", "not JSON"), ("[]", "JSON object"), ('{"type": "fly"}', "unknown message type"),
                          ('{"type": "control", "op": "jump"}', "'op' must be one of"),
                          ('{"type": "settings", "steps": 0}', "'steps' must be an integer in 1..50"),
                          ('{"type": "settings", "guidance": NaN}', "'guidance' must be a number"),
                          ('{"type": "control", "op": "reset", "seed": -1}', "'seed' must be"),
                          ("x" * 5000, "exceeds 4096")]:
        with pytest.raises(ProtocolError, match=expected):
            parse(raw)
    assert parse('{"type": "control", "op": "reset", "seed": 3}').seed == 3


def test_a_player_plays_pauses_steps_resets_and_records(tiny):
    from vid2world.play.server import create_app

    model, data = tiny
    with running(create_app(model, PlayConfig(), data)) as host, ws_client.connect(f"ws://{host}/ws") as ws:
        hello = receive(ws, "hello")
        assert hello["frame_size"] == [16, 16] and hello["episodes"] == 8 and not hello["side_by_side"]
        assert [g["kind"] for g in hello["groups"]] == ["continuous"] and hello["noop"] == [0.0, 0.0]
        first = receive(ws, "frame")
        ws.send(json.dumps({"type": "action", "action": [0.5, -0.5]}))
        later = [receive(ws, "frame") for _ in range(3)]
        assert later[-1]["t"] > first["t"] and later[-1]["model"].startswith("data:image/png;base64,")
        ws.send(json.dumps({"type": "action", "action": [5.0, 0.0]}))  # outside the Box: refused, play goes on
        assert "outside" in receive(ws, "error")["error"]
        ws.send(json.dumps({"type": "settings", "steps": 3, "guidance": 1.5}))
        assert receive(ws, "settings") == {"type": "settings", "steps": 3, "guidance": 1.5}
        ws.send(json.dumps({"type": "control", "op": "reset", "seed": 4, "episode": 2}))
        reset = receive(ws, "frame")
        while "seed" not in reset:
            reset = receive(ws, "frame")
        assert reset["seed"] == 4 and reset["paused"]
        ws.send(json.dumps({"type": "record", "op": "start"}))
        ws.send(json.dumps({"type": "control", "op": "step"}))
        stepped = receive(ws, "frame")
        ws.send(json.dumps({"type": "control", "op": "step"}))
        assert receive(ws, "frame")["t"] == stepped["t"] + 1
        ws.send(json.dumps({"type": "record", "op": "stop"}))
        recording = receive(ws, "recording")
        assert recording["frames"] == 2
        with urllib.request.urlopen(f"http://{host}{recording['url']}") as response:
            video = response.read()
        with av.open(__import__("io").BytesIO(video)) as container:
            assert sum(1 for _ in container.decode(video=0)) == 2
        ws.send(json.dumps({"type": "control", "op": "reset", "episode": 99}))
        assert "'episode' must be below 8" in receive(ws, "error")["error"]


def test_other_origins_are_refused_and_the_limit_says_busy(tiny):
    from vid2world.play.server import create_app

    model, data = tiny
    with running(create_app(model, PlayConfig(max_sessions=1), data)) as host:
        with pytest.raises(Exception, match="403"):
            ws_client.connect(f"ws://{host}/ws", origin="http://elsewhere.example").close()
        with ws_client.connect(f"ws://{host}/ws", origin=f"http://{host}") as first:
            receive(first, "frame")
            with ws_client.connect(f"ws://{host}/ws") as second:
                assert "busy" in receive(second, "busy")["error"]
        deadline = time.time() + 10  # the first player left: its place frees
        while True:
            with ws_client.connect(f"ws://{host}/ws") as again:
                message = json.loads(again.recv(timeout=30))
            if message["type"] == "hello" or time.time() > deadline:
                break
            time.sleep(0.2)
        assert message["type"] == "hello"


# ---- edges: a message nested past the parser's limit, a refused reset, a dragged slider, bad flags -----------------
def frames_after(ws, count: int, timeout: float = 30.0) -> list[dict]:
    return [receive(ws, "frame", timeout) for _ in range(count)]


def quiet(ws, frames: int | None = None, seconds: float = 1.5) -> None:
    """Wait until no frame has come for `seconds`; `frames`: how many may come before that."""
    seen = 0
    while True:
        try:
            seen += receive(ws, "frame", timeout=seconds)["type"] == "frame"
        except TimeoutError:
            break
    assert frames is None or seen == frames, f"{seen} frames came, expected {frames}"


def test_a_deeply_nested_message_is_answered_and_the_game_goes_on(tiny):
    from vid2world.play.server import create_app

    model, data = tiny
    with running(create_app(model, PlayConfig(), data)) as host, ws_client.connect(f"ws://{host}/ws") as ws:
        receive(ws, "frame")
        ws.send("[" * 2000 + "]" * 2000)  # 4,000 bytes: ended the session with no close frame (RecursionError)
        assert "nests too deeply" in receive(ws, "error")["error"]
        ws.send('{"type": "action", "action": ' + "[" * 1500 + "]" * 1500 + "}")
        assert "error" in receive(ws, "error")
        first, *_, last = frames_after(ws, 3)
        assert last["t"] > first["t"]


def test_a_session_that_fails_ends_with_a_close_frame_that_says_why(tiny, monkeypatch):
    from websockets.exceptions import ConnectionClosed

    from vid2world.play import server as play_server

    def broken(raw):
        raise RuntimeError("a bug in the parser")

    monkeypatch.setattr(play_server, "parse", broken)
    model, data = tiny
    with running(play_server.create_app(model, PlayConfig(), data)) as host, \
            ws_client.connect(f"ws://{host}/ws") as ws:
        receive(ws, "frame")
        ws.send("{}")
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(100):
                ws.recv(timeout=30)
    assert closed.value.rcvd.code == 1011
    assert closed.value.rcvd.reason == "the session ended: RuntimeError: a bug in the parser"


def test_a_refused_reset_leaves_the_game_running_or_paused_as_it_was(tiny):
    from vid2world.play.server import create_app

    model, data = tiny
    with running(create_app(model, PlayConfig(), data)) as host, ws_client.connect(f"ws://{host}/ws") as ws:
        receive(ws, "frame")
        ws.send(json.dumps({"type": "control", "op": "reset", "episode": 99}))
        assert "'episode' must be below 8" in receive(ws, "error")["error"]
        later = frames_after(ws, 4, timeout=20)  # the game went on (it stopped: the refused reset had paused it)
        assert not later[-1]["paused"] and later[-1]["t"] > later[0]["t"]
        ws.send(json.dumps({"type": "control", "op": "pause"}))
        quiet(ws)  # the frames already made or queued arrive, then none
        ws.send(json.dumps({"type": "control", "op": "reset", "episode": 99}))
        receive(ws, "error")
        ws.send(json.dumps({"type": "control", "op": "step"}))  # still paused: one step, one frame
        assert receive(ws, "frame")["paused"]
        quiet(ws, frames=0)


def test_settings_that_arrive_while_one_is_applied_merge_the_latest_wins(tiny, monkeypatch):
    """Dragging the steps slider from 3 to 50 sent 47 messages, each waiting its turn on the compute thread; the
    player was dropped. Now the waiting ones merge, each setting's latest value wins."""
    from vid2world.play.server import create_app
    from vid2world.world.env import WorldModelEnv

    applied = []
    set_sampling = WorldModelEnv.set_sampling

    def slow(self, steps=None, guidance=None):
        applied.append((steps, guidance))
        time.sleep(0.05)  # a frame's worth of compute
        set_sampling(self, steps, guidance)

    monkeypatch.setattr(WorldModelEnv, "set_sampling", slow)
    model, data = tiny
    with running(create_app(model, PlayConfig(), data)) as host, ws_client.connect(f"ws://{host}/ws") as ws:
        receive(ws, "frame")
        for steps in range(4, 51):
            ws.send(json.dumps({"type": "settings", "steps": steps}))
            if steps == 20:
                ws.send(json.dumps({"type": "settings", "guidance": 2.0}))
        answer = receive(ws, "settings")
        while answer["steps"] != 50:
            answer = receive(ws, "settings")
        assert answer == {"type": "settings", "steps": 50, "guidance": 2.0}
        assert len(applied) <= 5, applied
        receive(ws, "frame")  # still playing


def test_play_refuses_a_bad_port_before_making_anything(tmp_path, monkeypatch, capsys):
    import tempfile

    from vid2world.cli import main

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for port in ("-1", "99999", "http"):
        with pytest.raises(SystemExit) as exit_:
            main(["play", "--port", port])
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert exit_.value.code == 2 and last.endswith(f"argument --port: expected a port number in 1..65535, got "
                                                       f"'{port}'"), last
    assert not list(tmp_path.iterdir())


def test_play_leaves_no_temporary_directory_on_any_exit(tiny, tmp_path, monkeypatch):
    """A port out of range (OverflowError in bind) left /tmp/vid2world-play-*; so may any end of the server that
    skips its shutdown hook."""
    import tempfile

    import uvicorn

    from vid2world.play.server import serve
    from vid2world.world import bundled

    model, data = tiny
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(bundled, "load_model", lambda *args, **kwargs: model)
    with pytest.raises(ValueError, match=r"^--port: expected a port number in 1\.\.65535, got 99999$"):
        serve("tiny", str(data), PlayConfig(), "127.0.0.1", 99999)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(SystemExit):  # uvicorn's own exit when it cannot bind
            serve("tiny", str(data), PlayConfig(), "127.0.0.1", taken.getsockname()[1])

    def dies_with_a_recording(app, **kwargs):
        (app.state.server.recordings / "0123456789abcdef.mp4").write_bytes(b"")
        raise OSError("the server died")

    monkeypatch.setattr(uvicorn, "run", dies_with_a_recording)
    with pytest.raises(OSError, match="the server died"):
        serve("tiny", str(data), PlayConfig(), "127.0.0.1", free_port())
    assert not list(tmp_path.iterdir())


def test_play_says_a_model_path_does_not_exist_and_lists_bundled_names(tmp_path, capsys):
    from vid2world.cli import main

    missing = tmp_path / "no" / "such"
    for ref, expected in [(str(missing), f"--model {missing}: no such directory"),
                          ("no-such-model", "--model 'no-such-model': no such directory, nor a bundled model's name; "
                                            f"bundled: {v2w.zoo.names()}")]:
        assert main(["play", "--model", ref]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        assert err.strip().splitlines()[-1].startswith(f"vid2world play: error: {expected}"), err
