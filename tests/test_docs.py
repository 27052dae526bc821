"""Docs that point at tests stay true: every test docs/reliability.md names exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def named_tests(text: str) -> list[tuple[str, str | None]]:
    """(file, test) pairs from `test_x.py::test_y`, `::test_z` (same file as the last named) and bare `test_x.py`."""
    pairs, current = [], None
    for token in re.findall(r"`([^`]*)`", text):
        for part in token.split(", "):
            match = re.fullmatch(r"(test_\w+\.py)?(?:::(test_\w+))?", part.strip())
            if not match or not (match.group(1) or match.group(2)):
                continue
            current = match.group(1) or current
            pairs.append((current, match.group(2)))
    return pairs


def test_every_test_named_in_reliability_md_exists():
    pairs = named_tests((ROOT / "docs" / "reliability.md").read_text())
    assert len(pairs) > 30  # the parser found the tables
    missing = []
    for file, name in pairs:
        path = ROOT / "tests" / file
        if not path.is_file() or (name and name not in defined_tests(path)):
            missing.append(f"{file}::{name}" if name else file)
    assert not missing, f"docs/reliability.md names tests that do not exist: {missing}"
