"""The play page's messages: parsed and checked here, before anything acts on them.

Client -> server, JSON text, at most `MAX_MESSAGE_BYTES`:
    {"type": "action", "action": <a member of the action space, JSON>}   the keys held now
    {"type": "control", "op": "pause" | "resume" | "step" | "reset", "seed": int?, "episode": int?}
    {"type": "settings", "steps": int?, "guidance": float?}
    {"type": "record", "op": "start" | "stop"}
Server -> client: {"type": "hello" | "frame" | "recording" | "error" | "busy", ...} (see `server`).

Anything else (not JSON, too long, nested too deeply, an unknown type, a value out of range) is a `ProtocolError`
whose text goes back to the client as {"type": "error"}; the session goes on. `parse` raises nothing else, whatever
the payload (tests/test_play_properties.py).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

MAX_MESSAGE_BYTES = 4096
MAX_STEPS = 50  # denoising steps a player may ask for
GUIDANCE_RANGE = (1.0, 10.0)
CONTROL_OPS = ("pause", "resume", "step", "reset")
RECORD_OPS = ("start", "stop")


class ProtocolError(ValueError):
    """A message the server refuses, with the reason sent back."""


@dataclass(frozen=True)
class Action:
    action: Any  # JSON form; `to_gym` checks it against the space


@dataclass(frozen=True)
class Control:
    op: str
    seed: int | None = None
    episode: int | None = None


@dataclass(frozen=True)
class Settings:
    steps: int | None = None
    guidance: float | None = None


@dataclass(frozen=True)
class Record:
    op: str


Message = Action | Control | Settings | Record


def parse(raw: str | bytes) -> Message:
    """One client message, checked (see module doc)."""
    if not isinstance(raw, (str, bytes)):
        raise ProtocolError(f"message must be text or bytes, got {type(raw).__name__}")
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
    if size > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {size} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        data = json.loads(raw)
    except ValueError:  # UnicodeDecodeError included
        raise ProtocolError("message is not JSON") from None
    except RecursionError:  # '[[[[...]]]]': a few KiB nest deeper than the parser's recursion limit
        raise ProtocolError("message nests too deeply") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError("message must be a JSON object with a string 'type'")
    kind = data["type"]
    if kind == "action":
        if "action" not in data:
            raise ProtocolError("action message needs 'action'")
        return Action(data["action"])
    if kind == "control":
        op = data.get("op")
        if op not in CONTROL_OPS:
            raise ProtocolError(f"control 'op' must be one of {list(CONTROL_OPS)}, got {brief(op)}")
        return Control(op, _optional_int(data, "seed", 0, 2 ** 31 - 1), _optional_int(data, "episode", 0, 10 ** 9))
    if kind == "settings":
        guidance = data.get("guidance")
        if guidance is not None and not (_is_number(guidance) and GUIDANCE_RANGE[0] <= guidance <= GUIDANCE_RANGE[1]):
            raise ProtocolError(f"'guidance' must be a number in {GUIDANCE_RANGE[0]}..{GUIDANCE_RANGE[1]}, "
                                f"got {brief(guidance)}")
        return Settings(_optional_int(data, "steps", 1, MAX_STEPS), None if guidance is None else float(guidance))
    if kind == "record":
        if data.get("op") not in RECORD_OPS:
            raise ProtocolError(f"record 'op' must be one of {list(RECORD_OPS)}, got {brief(data.get('op'))}")
        return Record(data["op"])
    raise ProtocolError(f"unknown message type {brief(kind)}")


def brief(value: Any, limit: int = 60) -> str:
    """`repr(value)` cut to `limit` characters: an error quotes what it refuses without echoing kilobytes back or
    recursing through a deeply nested value."""
    try:
        text = repr(value)
    except RecursionError:
        return f"a {type(value).__name__} nested too deeply"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _optional_int(data: dict[str, Any], key: str, low: int, high: int) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ProtocolError(f"{key!r} must be an integer in {low}..{high}, got {brief(value)}")
    return value


def to_gym(space: Any, value: Any) -> Any:
    """An action's JSON form as a member of the gymnasium `space` (Dict: an object by group; Discrete: an integer;
    MultiBinary and Box: lists). `spaces.to_vector` then checks the values."""
    import gymnasium as gym
    import numpy as np

    if isinstance(space, gym.spaces.Dict):
        if not isinstance(value, dict) or set(value) != set(space.spaces):
            raise ProtocolError(f"action must be an object with keys {sorted(space.spaces)}")
        return {k: to_gym(space[k], v) for k, v in value.items()}
    if isinstance(space, gym.spaces.Discrete):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ProtocolError(f"action must be an integer in 0..{space.n - 1}, got {brief(value)}")
        return value
    if not isinstance(value, list) or len(value) != int(np.prod(space.shape)) or not all(map(_is_number, value)):
        raise ProtocolError(f"action must be a list of {int(np.prod(space.shape))} numbers")
    return np.asarray(value, np.float32)
