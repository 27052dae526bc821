"""The play server under abuse, in its own process (`vid2world play`), bounded in count and time: 8 players at
once send 10,000 malformed, oversized or out-of-range messages and then drop their connections without a goodbye;
the server keeps answering, and its resident memory comes back to within 10% of its baseline."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from .test_eval_run import make_inputs
from .test_play_server import free_port

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
ws_client = pytest.importorskip("websockets.sync.client")

BAD = ["{", "[]", "null", '{"type": 5}', '{"type": "fly"}', '{"type": "action"}', '{"type": "action", "action": "x"}',
       '{"type": "action", "action": [1e9, 0]}', '{"type": "action", "action": [NaN, 0]}',
       '{"type": "control", "op": "jump"}', '{"type": "settings", "steps": 1000}', '{"type": "settings", "guidance": -3}',
       '{"type": "control", "op": "reset", "episode": 123456}', '{"type": "record", "op": "stop"}', "x" * 6000]


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def play_a_little(url: str, frames: int = 3) -> None:
    with ws_client.connect(url, max_size=2 ** 22) as ws:
        got = 0
        while got < frames:
            got += json.loads(ws.recv(timeout=60))["type"] == "frame"


def abuse(url: str, messages: int, abrupt: bool, errors: list[int]) -> None:
    with ws_client.connect(url, max_size=2 ** 22) as ws:
        json.loads(ws.recv(timeout=60))  # hello
        for i in range(messages):
            ws.send(BAD[i % len(BAD)])
        answered = 0
        deadline = time.time() + 30
        while time.time() < deadline and answered < 10:
            answered += json.loads(ws.recv(timeout=30))["type"] == "error"
        errors.append(answered)
        if abrupt:  # no close frame: the TCP connection just ends
            ws.socket.shutdown(socket.SHUT_RDWR)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads resident memory from /proc")
def test_eight_abusive_players_leave_the_server_answering_and_its_memory_where_it_was(tmp_path):
    model, data = make_inputs(tmp_path)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "vid2world", "play", "--model", str(model), "--data", str(data),
                               "--port", str(port), "--max-sessions", "8"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    url = f"ws://127.0.0.1:{port}/ws"
    try:
        deadline = time.time() + 120
        while True:
            try:
                play_a_little(url)
                break
            except OSError:
                assert server.poll() is None and time.time() < deadline, server.stdout.read()
                time.sleep(0.5)

        def round_of_abuse(messages: int) -> list[int]:
            errors: list[int] = []
            players = [threading.Thread(target=abuse, args=(url, messages, i % 2 == 0, errors)) for i in range(8)]
            for p in players:
                p.start()
            for p in players:
                p.join(120)
            return errors

        round_of_abuse(50)  # warm-up: the allocator's pools grow to what 8 players need
        time.sleep(2)
        baseline = rss_kib(server.pid)
        started = time.time()
        errors = round_of_abuse(1250)  # 8 x 1,250 = 10,000 bad messages
        assert time.time() - started < 240
        assert len(errors) == 8 and min(errors) == 10, errors  # every player got answers, not a crash
        with ws_client.connect(url, max_size=2 ** 22) as ws:  # an oversized message closes only its connection
            json.loads(ws.recv(timeout=60))
            ws.send("x" * 70_000)
            with pytest.raises(Exception):
                for _ in range(100):
                    ws.recv(timeout=30)
        play_a_little(url, frames=5)  # the server still plays
        time.sleep(3)
        after = rss_kib(server.pid)
        assert server.poll() is None
        print(f"resident memory: {baseline} KiB before 10,000 bad messages, {after} KiB after")
        assert after <= 1.10 * baseline, f"resident memory {after} KiB after, {baseline} KiB before"
    finally:
        server.terminate()
        server.wait(30)
