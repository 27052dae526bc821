"""Every public name and command of the interface (shared/reference/interface.md) is where it says, or is listed
here as planned with the issue that brings it. The names are written out here too, and the reference is parsed and
must agree with this list: the shared one beside the checkout when present, else the copy in tests/fixtures (kept
equal to the shared one by a test, so every clone runs the check)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import vid2world as v2w
from vid2world import metrics
from vid2world.cli import build_parser

SHARED_INTERFACE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "interface.md"
INTERFACE_COPY = Path(__file__).resolve().parent / "fixtures" / "interface.md"
INTERFACE = SHARED_INTERFACE if SHARED_INTERFACE.exists() else INTERFACE_COPY

NAMES = {  # what users' scripts reach as v2w.X / metrics.X, with an attribute each promises
    "UNetConfig": "preset", "VideoUNet": "forward", "causalize": None, "ActionSpace": "multi_hot",
    "transfer_kernel": None, "WorldModel": "from_pretrained", "RolloutSession": "reset", "write_video": None,
    "SamplerConfig": None, "CausalConfig": None, "zoo": "load", "WorldModelEnv": "step",
    "load_video_model": None, "Backbone": "predict",  # issue 30: any backbone (docs/backbones.md)
}
ADDITIONS = Path(__file__).resolve().parents[1] / "docs" / "backbones.md"  # issue 30's interface additions
METRICS = ("psnr", "ssim", "frechet_distance")
PLANNED_NAMES: dict[str, int] = {}
PLANNED_COMMANDS: dict[str, int] = {}
COMMANDS = ("demo", "convert", "inspect", "train", "rollout", "evaluate", "idm train", "data record", "data convert",
            "data info", "data preview", "bench rollout", "bench train", "zoo build", "zoo list", "play", "compare",
            "report", "zoo ablate", "distill", "policy-eval")


def _subcommands(parser) -> dict:
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            return action.choices
    return {}


def _has_command(words: list[str]) -> bool:
    parser = build_parser()
    for word in words:
        choices = _subcommands(parser)
        if word not in choices:
            return False
        parser = choices[word]
    return True


@pytest.mark.parametrize("name", sorted(NAMES))
def test_public_names_import_from_the_package(name):
    obj = getattr(v2w, name)
    if NAMES[name]:
        assert callable(getattr(obj, NAMES[name]))


def test_world_model_methods_of_the_interface():
    for method in ("rollout", "session", "save_pretrained", "from_pretrained"):
        assert callable(getattr(v2w.WorldModel, method))
    for method in ("step", "reset"):
        assert callable(getattr(v2w.RolloutSession, method))
    assert all(callable(getattr(metrics, name)) for name in METRICS)


@pytest.mark.parametrize("command", COMMANDS)
def test_commands_of_the_interface_exist(command):
    assert _has_command(command.split())


def test_planned_names_are_not_claimed_yet_or_are_done():
    # When an issue lands its name, it must move from PLANNED to NAMES: a stale entry fails here.
    assert not [n for n in PLANNED_NAMES if hasattr(v2w, n)]
    assert not [c for c in PLANNED_COMMANDS if _has_command([c])]


def test_the_repository_copy_of_the_reference_is_current():
    assert INTERFACE_COPY.exists()
    if SHARED_INTERFACE.exists():  # a developer's checkout: the copy a public clone reads must not go stale
        assert INTERFACE_COPY.read_text() == SHARED_INTERFACE.read_text(), (
            f"copy {SHARED_INTERFACE} to {INTERFACE_COPY}")


def test_this_list_covers_the_reference():
    text = INTERFACE.read_text()
    named = set(re.findall(r"\bv2w\.([A-Za-z_]\w*)", text))
    missing = named - set(NAMES) - set(PLANNED_NAMES)
    assert not missing, f"interface.md names v2w.{sorted(missing)}: add them to NAMES or PLANNED_NAMES"
    assert set(re.findall(r"\bmetrics\.([a-z_]\w*)\(", text)) <= set(METRICS)
    for row in re.findall(r"`vid2world ([^`]*)`", text):
        words = [w for w in row.split() if re.fullmatch(r"[a-z][a-z-]*", w)]
        words = words[:2] if words and words[0] in ("data", "bench", "idm", "zoo") else words[:1]
        command = " ".join(words)
        assert command in COMMANDS or words[0] in PLANNED_COMMANDS or command == "bench cache", row


def test_the_backbone_additions_resolve():
    # issue 30 adds names to the interface; they are written in docs/backbones.md (the shared reference is
    # read-only) and every v2w.X and vid2world command named there must exist
    text = ADDITIONS.read_text()
    block = text[text.index("## Interface additions"):text.index("## Wan 2.1 in vid2world")]
    named = set(re.findall(r"\bv2w\.([A-Za-z_]\w*)", block))
    assert {"load_video_model", "causalize", "Backbone", "WorldModel", "ActionSpace"} <= named
    assert named <= set(NAMES) | {"ActionSpace"}
    for name in named:
        assert getattr(v2w, name) is not None
    for command in set(re.findall(r"`vid2world (convert|inspect)", block)):
        assert _has_command([command])
    convert = _subcommands(build_parser())["convert"]
    flags = {option for action in convert._actions for option in action.option_strings}
    assert {"--backbone", "--vae", "--prompt", "--text-encoder", "--prompt-features"} <= flags
