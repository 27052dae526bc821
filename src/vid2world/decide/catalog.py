"""Policies by name, as `policy-eval` and `plan` take them on the command line (`POLICY_HELP`)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..data.spec import ActionSpec
from .policies import ConstantPolicy, EpsilonPolicy, HeldScriptedPolicy, RandomPolicy, import_policy
from .scripted import BoxingChaser, PushTPusher

POLICY_HELP = ("random | noop | scripted (the simulator's recording player) | chase (Atari Boxing: walks to the "
               "opponent and punches) | push (Push-T: reads the disc and the block off the frame and pushes "
               "the block towards the target) | NAME@EPS (NAME with a random action instead, with probability EPS) | "
               "sb3:FILE.zip (a stable-baselines3 model, e.g. from policy-train) | import:module:attribute (your "
               "function of frames [B, H, W, 3] uint8 to actions [B, A], or an object with act/reset)")


def noop_label(spec: ActionSpec) -> list[str]:
    """The labels of doing nothing: NOOP (or a zero turn) in each one-hot group, nothing pressed elsewhere."""
    labels = []
    for group in spec.groups:
        if group.kind == "one_hot":
            still = [label for label in group.labels if label.upper() in ("NOOP", "+0", "0", "NONE")]
            labels.append(still[0] if still else group.labels[0])
    return labels


def make_policy(word: str, spec: ActionSpec, scripted_action: Callable[[np.random.Generator], np.ndarray] | None
                = None) -> Any:
    """The policy a command-line word names (see `POLICY_HELP`); `scripted_action` is the simulator's (for
    `scripted`)."""
    if word.startswith("sb3:"):
        from .sb3_policy import SB3Policy

        return SB3Policy(word[4:], spec)
    if word.startswith("import:"):
        return import_policy(word[len("import:"):])
    base, sep, eps = word.partition("@")
    if sep:
        try:
            epsilon = float(eps)
        except ValueError:
            raise ValueError(f"policy {word!r}: expected NAME@EPS with EPS a number in [0, 1]") from None
        return EpsilonPolicy(make_policy(base, spec, scripted_action), spec, epsilon)
    if base == "random":
        return RandomPolicy(spec)
    if base == "noop":
        return ConstantPolicy(spec, noop_label(spec), "noop")
    if base == "chase":
        return BoxingChaser(spec)
    if base == "push":
        return PushTPusher(spec)
    if base == "scripted":
        if scripted_action is None:
            raise ValueError("policy scripted: needs the simulator (its scripted actions); give --env")
        return HeldScriptedPolicy(scripted_action)
    raise ValueError(f"unknown policy {word!r}: expected {POLICY_HELP}")
