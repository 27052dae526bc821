"""Shared test helpers: where the official fixtures live, and small model builders."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def fixtures_dir() -> Path | None:
    """$VID2WORLD_FIXTURES, else ../shared/fixtures/official beside the checkout."""
    env = os.environ.get("VID2WORLD_FIXTURES")
    for candidate in ([Path(env)] if env else []) + [REPO.parent / "shared" / "fixtures" / "official"]:
        if candidate.is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def official() -> Path:
    path = fixtures_dir()
    if path is None:
        pytest.skip("official fixtures not found: set VID2WORLD_FIXTURES or place shared/fixtures/official "
                    "beside the checkout")
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
