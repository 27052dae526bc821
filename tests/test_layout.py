"""The package layout follows one dependency order (docs/architecture.md): every import in src/vid2world, parsed.

    io  <-  {models, diffusion, data}  <-  causal  <-  world  <-  train  <-  {eval, play, decide}
    metrics beside the chain: reads only io; eval scores with it
    checkpoints beside the chain: reads models/diffusion/causal/world/io; train may read it
    bench, demo, zoo, cli, testing, the package's __init__ on top: nothing in the chain imports them
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "vid2world"
TOP = {"bench", "demo", "zoo", "cli", "testing", "__init__", "__main__"}

_BASE = {"io"}
_PEERS = _BASE | {"models", "diffusion", "data"}
_CAUSAL = _PEERS | {"causal"}
_WORLD = _CAUSAL | {"world"}
_TRAIN = _WORLD | {"checkpoints", "train"}
# What each package may import besides itself. Peers of one rank import each other only where stated.
MAY_IMPORT: dict[str, set[str]] = {
    "io": set(),
    "models": _BASE,
    "diffusion": _BASE,
    "data": _BASE | {"models"},  # data.spec describes actions as models.config.ActionSpace: one action type
    "causal": _PEERS,
    "world": _CAUSAL,
    "checkpoints": _BASE | {"models", "diffusion", "causal", "world"},
    "train": _TRAIN,
    "metrics": _BASE,  # pure scoring functions and their networks: nothing of the runtime
    "eval": _TRAIN | {"metrics"},
    "play": _TRAIN,
    "decide": _TRAIN,  # policies, outcome heads and policy evaluation: on top of the runtime, beside eval and play
}


def _module_parts(path: Path) -> list[str]:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def imported_modules(source: str, parts: list[str], is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in `source`, relative ones resolved, those inside functions too."""
    package = parts if is_package else parts[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            # `from .. import train` imports the package `train`: name each alias as a module
            names = [module] if node.module else [f"{module}.{alias.name}" for alias in node.names]
            found += [(node.lineno, name) for name in names]
    return found


def unit_of(module: str) -> str | None:
    """The layout unit a vid2world module belongs to (`vid2world.world.session` -> `world`), None outside."""
    parts = module.split(".")
    if parts[0] != "vid2world":
        return None
    return "__init__" if len(parts) == 1 else parts[1]


def violations(source: str, path: Path) -> list[str]:
    parts = _module_parts(path)
    unit = unit_of(".".join(parts))
    if unit in TOP:
        return []
    if unit not in MAY_IMPORT:
        return [f"{path}: package {unit!r} has no place in the layout (add it to MAY_IMPORT and docs/architecture.md)"]
    out = []
    for line, module in imported_modules(source, parts, path.name == "__init__.py"):
        target = unit_of(module)
        if target is not None and target != unit and target not in MAY_IMPORT[unit]:
            out.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {unit} imports {module} ({target}); "
                       f"{unit} may import only {sorted(MAY_IMPORT[unit]) or 'nothing of vid2world'}")
    return out


def test_every_import_follows_the_layout():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 50  # the walk found the package
    problems = [p for f in files for p in violations(f.read_text(), f)]
    assert not problems, "imports against the layout:\n" + "\n".join(problems)


@pytest.mark.parametrize("where, source", [
    ("world/session.py", "from ..train import trainer"),  # upward, relative
    ("world/session.py", "def f():\n    from vid2world.checkpoints.reader import read_checkpoint"),  # inside a function
    ("world/__init__.py", "from ..bench import rollout"),  # a package's __init__, to the top
    ("models/unet.py", "from .. import data"),  # a peer, named as an alias
    ("io/atomic.py", "import vid2world.models.config"),  # io imports nothing of vid2world
    ("train/config.py", "from ..testing import randomize_weights"),  # test helpers stay out of the library
    ("causal/keys.py", "from .. import __version__"),  # the top-level package is on top
    ("novel/thing.py", "import os"),  # a new package must be placed
    ("metrics/pixel.py", "from ..world.frames import to_uint8"),  # metrics know nothing of the runtime
])
def test_upward_imports_are_caught(where, source):
    assert violations(source, PACKAGE / where)


@pytest.mark.parametrize("where, source", [
    ("train/build.py", "from ..checkpoints.convert import convert_checkpoint"),
    ("checkpoints/convert.py", "from ..world.world_model import WorldModel"),
    ("bench/rollout.py", "from ..testing import randomize_weights"),
    ("world/session.py", "from .frames import to_uint8\nimport torch"),
])
def test_downward_imports_pass(where, source):
    assert violations(source, PACKAGE / where) == []
