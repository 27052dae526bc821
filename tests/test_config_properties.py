"""Property: whatever a user writes for any training config key, `load_config` either accepts it, inside the
key's declared range (`vid2world.train.config_ranges.RANGES`), or raises one `ConfigError` line that names the
key. Never another exception, and never a value out of range that training would trip over later."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from vid2world.train.config import ConfigError, load_config
from vid2world.train.config_ranges import RANGES, value_at

KEYS = sorted(RANGES)
# strings a user (or a typo) could plausibly write: OmegaConf's special forms, numbers as text, valid choices
WORDS = ["", " ", "???", "${seed}", "${nope}", "${out}", "${data.size}", "${oc.env:V2W_NO_SUCH_VARIABLE}",
         "a${", "\\${seed}", "null", "~", "1e-4", "-1", "0", "nan", ".inf", "[0, 0]", "{a: 1}", "true", "yes",
         "pretrain", "world-model", "resize_pad", "fsdp", "bf16", "shift", "causal", "discrete:51",
         "continuous:0", "tiny", "pixel-tiny", "runs/x", "dropout"]
small = st.one_of(st.integers(min_value=-3, max_value=40), st.floats(min_value=-2, max_value=2))  # the edges
scalars = st.one_of(small, st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10),
                    st.sampled_from(WORDS))
unet_keys = st.sampled_from(["dropout", "norm_groups", "nope", "causal"])
values = st.one_of(small, scalars, st.lists(st.one_of(small, scalars), max_size=3),
                   st.dictionaries(unet_keys, scalars, max_size=2))
# (key, value, given on the command line rather than in the file)
drawn_settings = st.lists(st.tuples(st.sampled_from(KEYS), values, st.booleans()), min_size=1, max_size=3)


def _override_text(value) -> str:
    """The value as a user would type it after `key=`: a string as it is, the rest as JSON (YAML flow)."""
    return value if isinstance(value, str) else json.dumps(value)


def _as_file(drawn) -> dict:
    nested: dict = {}
    for key, value, on_command_line in drawn:
        if not on_command_line:
            *parents, leaf = key.split(".")
            section = nested
            for part in parents:
                section = section.setdefault(part, {})
            section[leaf] = value
    return nested


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn_settings)
def test_any_value_for_any_key_is_accepted_in_range_or_named(drawn):
    overrides = [f"{key}={_override_text(value)}" for key, value, on_command_line in drawn if on_command_line]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run.yaml"
        path.write_text(yaml.safe_dump(_as_file(drawn)))
        try:
            config = load_config(path, overrides)
        except ConfigError as err:  # any other exception fails the test
            message = str(err)
            assert "\n" not in message, message
            assert any(key in message for key, _, _ in drawn), (message, drawn)
            event("refused")
            return
    event("accepted")
    for key in KEYS:  # every value, drawn or default, is inside its key's range
        value = value_at(config.to_dict(), key)
        assert RANGES[key].accepts(value), (key, value, drawn)
        assert not (isinstance(value, float) and not math.isfinite(value)), (key, value)
