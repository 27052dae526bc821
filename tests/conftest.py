"""Shared test helpers: where the official fixtures live, and small model builders."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


FIXTURES = REPO / "tests" / "fixtures" / "official"  # the official code's reference tensors, in every clone


def fixtures_dir() -> Path | None:
    """$VID2WORLD_FIXTURES when set (another copy of the official fixtures), else the repository's own."""
    env = os.environ.get("VID2WORLD_FIXTURES")
    candidate = Path(env) if env else FIXTURES
    return candidate if candidate.is_dir() else None


@pytest.fixture(scope="session")
def official() -> Path:
    path = fixtures_dir()
    if path is None:
        pytest.fail(f"official fixtures not found at {os.environ.get('VID2WORLD_FIXTURES') or FIXTURES}: "
                    "they are part of the repository (tests/fixtures/official); VID2WORLD_FIXTURES overrides")
    return path


def load_json(path: Path) -> dict:
    with open(path) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def one_thread():
    """For modules of tiny models (`pytestmark = pytest.mark.usefixtures("one_thread")`): their ops take
    microseconds, so extra threads only add start-up, and on a loaded shared machine the pool's waits cost 10x."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _threads_given_back():
    """Every test leaves torch's thread count as it found it: one that kept 1 thread (a server's setting, say)
    made every later test run on one core of two, and the suite 1.6x slower."""
    import torch

    threads = torch.get_num_threads()
    yield
    left = torch.get_num_threads()
    torch.set_num_threads(threads)
    assert left == threads, f"the test left torch at {left} thread(s), not the {threads} it found"


@pytest.fixture(autouse=True)
def _bf16_as_if_native(monkeypatch):
    """bf16 paths are tested on every CPU: where a CPU has no native bf16, vid2world runs fp32 instead
    (`fitting_precision`), which would leave them untested there. Tests of that fallback unset it."""
    monkeypatch.setenv("VID2WORLD_BF16", "always")  # inherited by the subprocesses tests start
