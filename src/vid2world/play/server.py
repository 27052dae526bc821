"""`vid2world play`'s server: a static page and one WebSocket per player (FastAPI, run by uvicorn).

Per connection a `Player` runs three tasks: `_receive` (checks every message, `protocol`), `_run` (steps the game
while it is not paused, on the one compute thread all players share: the model's calls go one at a time, as the
cores are few) and `_send` (drains a bounded queue; a slow client loses its oldest frames, never stalls the others).
At most `PlayConfig.max_sessions` players at once, the next one is told "busy"; a disconnect closes the game and
deletes its recordings; the WebSocket refuses pages from other origins (a page elsewhere cannot drive a local model).
Settings (the page's sliders) are applied by a fourth task, `_settle`: the ones that arrive while it waits for the
compute thread merge into one (the latest value of each wins), so dragging a slider costs one change, not dozens.
"""

from __future__ import annotations

import asyncio
import base64
import io
import secrets
import shutil
import sys
import tempfile
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import torch
from fastapi import FastAPI, HTTPException, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, HTMLResponse, Response

from ..world.spaces import to_vector
from .game import Game, PlayConfig
from .protocol import Action, Control, ProtocolError, Record, Settings, parse, to_gym

STATIC = Path(__file__).parent / "static"
NOTICES = 64  # notices waiting for a client that does not read (10,000 bad messages keep only the last 64 answers)


def png_data_url(frame: np.ndarray | None) -> str | None:
    if frame is None:
        return None
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def origin_allowed(headers: Any, allowed: tuple[str, ...]) -> bool:
    """No Origin (a program, not a page), the server's own host, or one of `allowed`."""
    origin = headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == headers.get("host") or origin in allowed


class Server:
    """What all players share: the model, the compute thread, the session count, the recordings directory (made at
    the first recording, so a server that never starts leaves nothing behind)."""

    def __init__(self, model: Any, config: PlayConfig, data: Any = None) -> None:
        self.model, self.config, self.data = model, config, data
        self.compute = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vid2world-play")
        self.active = 0
        self._recordings: Path | None = None

    @property
    def recordings(self) -> Path:
        if self._recordings is None:
            self._recordings = Path(tempfile.mkdtemp(prefix="vid2world-play-"))
        return self._recordings

    def recording(self, name: str) -> Path | None:
        """The finished recording `name` (16 hex digits .mp4), None for any other name or a missing file."""
        if self._recordings is None or not (len(name) == 20 and name.endswith(".mp4")
                                            and all(c in "0123456789abcdef" for c in name[:16])):
            return None
        path = self._recordings / name
        return path if path.is_file() else None

    async def run(self, fn, *args) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.compute, fn, *args)

    def close(self) -> None:
        """Stop the compute thread and delete the recordings; safe to call more than once."""
        self.compute.shutdown(wait=True, cancel_futures=True)
        if self._recordings is not None:
            shutil.rmtree(self._recordings, ignore_errors=True)
            self._recordings = None


class Player:
    def __init__(self, server: Server, ws: WebSocket, game: Game) -> None:
        self.server, self.ws, self.game = server, ws, game
        # frames wait in a short queue (a lagging client loses the oldest); notices (errors, settings, recordings)
        # in their own, sent first, so a flood of frames never pushes out the answer to a message
        self.outbox = {"frame": deque(maxlen=server.config.queue_frames), "notice": deque(maxlen=NOTICES)}
        self.ready = asyncio.Event()
        self.running, self.wake = True, asyncio.Event()
        self.wake.set()
        self.files: list[Path] = []
        self.frames = 0
        self.settings: Settings | None = None  # received, not yet applied (`_settle`)
        self.settings_ready = asyncio.Event()

    def post(self, message: dict[str, Any]) -> None:
        """Queue a message; when the client lags, the oldest waiting one of its kind is dropped."""
        self.outbox["frame" if message["type"] == "frame" else "notice"].append(message)
        self.ready.set()

    async def play(self) -> None:
        self.post({"type": "hello", **self.game.layout()})
        await self._show(await self.server.run(self.game.reset, None, None))
        tasks = [asyncio.create_task(t) for t in (self._receive(), self._run(), self._send(), self._settle())]
        done: set[asyncio.Task] = set()
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        failures = [t.exception() for t in done if not t.cancelled() and t.exception() is not None]
        failures = [e for e in failures if not isinstance(e, WebSocketDisconnect)]
        if failures:  # whatever ended the session, the client gets a close frame that says what
            await self._close(1011, f"the session ended: {type(failures[0]).__name__}: {failures[0]}")

    async def _close(self, code: int, reason: str) -> None:
        print(f"vid2world play: {reason}", file=sys.stderr)
        reason = reason.encode()[:120].decode(errors="ignore")  # a close frame's reason holds at most 123 bytes
        try:
            await self.ws.close(code=code, reason=reason)
        except Exception:  # the connection is gone already: nothing left to tell
            pass

    async def _show(self, result: dict[str, Any]) -> None:
        self.frames += 1
        self.post({"type": "frame", "t": self.frames, "model": png_data_url(result["model"]),
                   "real": png_data_url(result["real"]), "latency_ms": round(result["latency_ms"], 1),
                   "paused": not self.running, "recording": self.game.recording is not None,
                   **({"seed": result["seed"]} if "seed" in result else {})})

    async def _run(self) -> None:
        try:
            while True:
                await self.wake.wait()
                if not self.running:
                    self.wake.clear()
                await self._show(await self.server.run(self.game.step))
        except Exception as err:  # the model or the simulator failed: say so before the session ends
            self.post({"type": "error", "error": f"the game stopped: {type(err).__name__}: {err}"})
            await asyncio.sleep(1.0)  # time for the sender to deliver it
            raise

    async def _send(self) -> None:
        while True:
            box = self.outbox["notice"] or self.outbox["frame"]
            if not box:
                self.ready.clear()
                await self.ready.wait()
                continue
            await self.ws.send_json(box.popleft())

    async def _receive(self) -> None:
        while True:
            raw = await self.ws.receive()
            if raw["type"] == "websocket.disconnect":
                return
            try:
                await self._handle(parse(raw.get("text") if raw.get("text") is not None else raw.get("bytes") or b""))
            except ValueError as err:  # ProtocolError, or a value the env refuses (an out-of-range action)
                self.post({"type": "error", "error": str(err)})

    async def _handle(self, message: Any) -> None:
        game = self.game
        if isinstance(message, Action):
            action = to_gym(game.env.action_space, message.action)
            to_vector(game.env.action_spec, game.env.action_space, action)  # checked now, not at the next step
            game.action = action
        elif isinstance(message, Control):
            await self._control(message)
        elif isinstance(message, Settings):
            waiting = self.settings  # not applied yet: merge, the latest value of each setting wins
            if waiting is not None:
                message = Settings(waiting.steps if message.steps is None else message.steps,
                                   waiting.guidance if message.guidance is None else message.guidance)
            self.settings = message
            self.settings_ready.set()
        elif isinstance(message, Record):
            await self._record(message.op)

    async def _control(self, message: Control) -> None:
        if message.op == "pause":
            self.running = False
        elif message.op == "resume":
            self.running = True
            self.wake.set()
        elif message.op == "step":
            self.running = False
            self.wake.set()
        else:
            episodes = self.game.episodes
            if message.episode is not None and message.episode >= max(episodes, 1):
                raise ProtocolError(f"'episode' must be below {episodes}" if episodes else
                                    "'episode': this server has no dataset (--data DIR)")
            running, self.running = self.running, False  # no step after the new start until the player says so
            try:
                result = await self.server.run(self.game.reset, message.seed, message.episode)
            except Exception:
                self.running = running  # a reset refused leaves the game paused or running, as it was
                if running:
                    self.wake.set()
                raise
            await self._show(result)

    async def _settle(self) -> None:
        """Apply the waiting settings, one change at a time on the compute thread; those that arrive meanwhile
        merge into the next (`_handle`)."""
        env = self.game.env
        while True:
            await self.settings_ready.wait()
            self.settings_ready.clear()
            message, self.settings = self.settings, None
            try:
                await self.server.run(env.set_sampling, message.steps, message.guidance)
            except ValueError as err:
                self.post({"type": "error", "error": str(err)})
                continue
            self.post({"type": "settings", "steps": env.config.steps, "guidance": env.config.guidance})

    async def _record(self, op: str) -> None:
        game = self.game
        if op == "start":
            game.recording = []
            return
        frames, game.recording = game.recording, None
        if not frames:
            raise ProtocolError("record stop: nothing was recorded (send record start first)")
        from ..io.video import write_video

        path = self.server.recordings / f"{secrets.token_hex(8)}.mp4"
        await self.server.run(write_video, np.stack(frames), path, int(game.env.metadata["render_fps"]))
        self.files.append(path)
        self.post({"type": "recording", "url": f"/recordings/{path.name}", "frames": len(frames)})

    def close(self) -> None:
        self.game.close()
        for path in self.files:
            path.unlink(missing_ok=True)


def create_app(model: Any, config: PlayConfig = PlayConfig(), data: Any = None) -> FastAPI:
    """The play server's app: `/` the page, `/ws` a player's WebSocket, `/recordings/NAME.mp4` a finished recording."""
    server = Server(model, config, data)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        server.close()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.server = server

    @app.get("/")
    async def page() -> HTMLResponse:
        return HTMLResponse((STATIC / "index.html").read_text())

    @app.get("/play.js")
    async def script() -> Response:
        return Response((STATIC / "play.js").read_text(), media_type="text/javascript")

    @app.get("/recordings/{name}")
    async def recording(name: str) -> FileResponse:
        path = server.recording(name)
        if path is None:
            raise HTTPException(404, "no such recording")
        return FileResponse(path, media_type="video/mp4", filename=f"vid2world-{name}")

    @app.websocket("/ws")
    async def play(ws: WebSocket) -> None:
        if not origin_allowed(ws.headers, config.allowed_origins):
            await ws.close(code=1008, reason="origin not allowed")
            return
        await ws.accept()
        if server.active >= config.max_sessions:
            await ws.send_json({"type": "busy", "error": f"busy: {server.active} players already (the most this "
                                                         "server allows); try again later"})
            await ws.close(code=1013)
            return
        server.active += 1
        game = player = None
        try:
            game = await server.run(Game, model, config, data)
            player = Player(server, ws, game)
            await player.play()
        except WebSocketDisconnect:
            pass
        finally:
            server.active -= 1
            if player is not None:
                await server.run(player.close)
            elif game is not None:  # the player left while their game was being made
                await server.run(game.close)

    return app


def serve(model_ref: str, data: str | None, config: PlayConfig, host: str, port: int, device: str = "cpu") -> None:
    """Load the model and serve the page until interrupted."""
    import uvicorn

    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"--port: expected a port number in 1..65535, got {port!r}")
    if data is not None and not Path(data).is_dir():
        raise ValueError(f"--data {data}: no such dataset directory")
    from ..world.bundled import load_model

    app = create_app(load_model(model_ref, device, "--model"), config, data)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: binding {host}: anyone who can reach this address can use the model")
    print(f"vid2world play: open http://{host}:{port}/ (Ctrl-C stops)")
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)  # while it serves (given back after: serve may run inside a program)
    try:
        uvicorn.run(app, host=host, port=port, ws_max_size=65536, log_level="warning")
    finally:  # a port taken or refused ends uvicorn before its shutdown hook: the recordings go all the same
        app.state.server.close()
        torch.set_num_threads(threads)
