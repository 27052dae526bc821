"""The play protocol's parser over generated payloads (hypothesis): any JSON value, any text, any bytes, and messages
of the right shape with wrong values, either parse into a message the server can act on or raise `ProtocolError`;
never another exception (a RecursionError or TypeError here ended a player's session)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vid2world.play.protocol import (CONTROL_OPS, MAX_MESSAGE_BYTES, MAX_STEPS, RECORD_OPS, Action, Control,
                                     ProtocolError, Record, Settings, parse)

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
keys = st.sampled_from(["type", "action", "op", "seed", "episode", "steps", "guidance"])
types = st.sampled_from(["action", "control", "settings", "record", "hello", ""]) | st.text(max_size=8)
# objects that look like messages: a known type, the keys the parser reads, values of any kind
messages = st.builds(lambda kind, rest: {"type": kind, **rest}, types,
                     st.dictionaries(keys.filter(lambda k: k != "type"),
                                     json_values | st.sampled_from(CONTROL_OPS + RECORD_OPS), max_size=4))


def check(raw) -> None:
    """`raw` parses into a valid message, or is refused with ProtocolError and a short reason."""
    try:
        message = parse(raw)
    except ProtocolError as err:
        assert 0 < len(str(err)) < 300
        return
    assert isinstance(message, (Action, Control, Settings, Record))
    if isinstance(message, Control):
        assert message.op in CONTROL_OPS
        assert message.seed is None or 0 <= message.seed < 2 ** 31
        assert message.episode is None or message.episode >= 0
    elif isinstance(message, Settings):
        assert message.steps is None or 1 <= message.steps <= MAX_STEPS
        assert message.guidance is None or 1.0 <= message.guidance <= 10.0
    elif isinstance(message, Record):
        assert message.op in RECORD_OPS


def dumps(value) -> str:
    return json.dumps(value, allow_nan=True)


@FAST
@given(json_values)
def test_any_json_value_parses_or_is_a_protocol_error(value):
    check(dumps(value))
    check(dumps(value).encode())


@FAST
@given(messages)
def test_message_shaped_objects_with_any_values_parse_or_are_protocol_errors(value):
    check(dumps(value))


@FAST
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_any_text_or_bytes_parses_or_is_a_protocol_error(raw):
    check(raw)


NESTS = [("[", "]"), ('{"a":', "}"), ('{"type": "action", "action": [', "]}")]


@FAST
@given(st.integers(1, 2000), st.sampled_from(NESTS))
def test_nesting_under_the_size_limit_is_a_protocol_error_not_a_recursion_error(depth, nest):
    raw = nest[0] * depth + "0" + nest[1] * depth
    if len(raw) <= MAX_MESSAGE_BYTES:
        check(raw)


def test_a_nested_message_under_4_kib_is_refused_by_name():
    raw = "[" * 2000 + "]" * 2000  # 4,000 bytes, deeper than json's recursion limit
    with pytest.raises(ProtocolError, match="nests too deeply"):
        parse(raw)
    with pytest.raises(ProtocolError, match="nests too deeply"):
        parse(raw.encode())


def action_spaces():
    """The action layouts the page sends: ViZDoom's buttons and turn, a bounded Box, an Atari-style Discrete."""
    from vid2world.data.spec import ActionGroup, ActionSpec
    from vid2world.world.spaces import action_space

    specs = [ActionSpec((ActionGroup("buttons", "multi_hot", ("forward", "attack")),
                         ActionGroup("turn", "one_hot", ("-4", "+0", "+4"), values=(-4.0, 0.0, 4.0)))),
             ActionSpec.continuous(("dx", "dy"), (-1, -1), (1, 1)), ActionSpec.one_hot(("NOOP", "FIRE", "UP"))]
    return [(spec, action_space(spec)) for spec in specs]


@FAST
@given(json_values | st.dictionaries(st.sampled_from(["buttons", "turn"]), json_values, min_size=2))
def test_any_action_value_becomes_a_space_member_or_a_value_error(value):
    from vid2world.play.protocol import to_gym
    from vid2world.world.spaces import to_vector

    for spec, space in action_spaces():
        try:
            vector = to_vector(spec, space, to_gym(space, parse(json.dumps({"type": "action", "action": value},
                                                                            allow_nan=True)).action))
        except ValueError as err:  # ProtocolError is one: the server answers both alike
            assert str(err)
            continue
        assert vector.shape == (spec.dim,) and np.isfinite(vector).all()
