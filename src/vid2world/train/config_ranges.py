"""The range of every `TrainConfig` key, in one table: which values of its type make sense.

OmegaConf checks each key's type (an integer, a list of numbers); `RANGES` says which of those values a run
can use, so that a negative learning rate, a zero logging interval or a 0x0 frame is refused when the config
is loaded, naming the key, and not by torch or a ZeroDivisionError after the first step.
`TrainConfig.__post_init__` applies the table; tests/test_config_properties.py draws keys and values at random
against it. Ranges that depend on two keys (`log.sample_context` < `data.length`, `data.inner` for
`data.layout: resize_pad`) are `TrainConfig`'s.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..causal.transfer import TRANSFER_MODES
from ..checkpoints.registry import MODELS
from ..data.transforms import LAYOUTS
from ..models.config import TEMPORAL_NORM_MODES, UNetConfig

MODES = ("pretrain", "world-model")
PRECISIONS = ("fp32", "bf16", "fp16")


class ConfigError(ValueError):
    """A training config that cannot run; the message names the key (`key`, where one is at fault; `related`:
    keys whose values put it out of range, e.g. `data.length` for `log.sample_context`)."""

    def __init__(self, message: str, key: str | None = None, related: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.key = key
        self.related = tuple(related)


@dataclass(frozen=True)
class Range:
    """What one key accepts: `accepts(value)`, and `expected` in words ("must be {expected}, got ...")."""

    expected: str
    accepts: Callable[[Any], bool]

    def message(self, key: str, value: Any) -> str:
        return f"{key}: must be {self.expected}, got {show(value)}"


def show(value: Any) -> str:
    """A value as the YAML the user wrote would spell it (null, true), strings quoted."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return repr(value) if isinstance(value, str) else str(value)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def at_least(low: int | float) -> Range:
    return Range(f">= {low}", lambda v: _number(v) and v >= low)


def above(low: int | float) -> Range:
    return Range(f"> {low}", lambda v: _number(v) and v > low)


def within(low: int | float, high: int | float, text: str | None = None) -> Range:
    """[low, high): `high` excluded."""
    return Range(text or f"in [{low}, {high})", lambda v: _number(v) and low <= v < high)


def one_of(choices: Iterable[str]) -> Range:
    allowed = tuple(choices)
    return Range(f"one of {list(allowed)}", lambda v: isinstance(v, str) and v in allowed)


def pair(names: str, each: Range) -> Range:
    """A list of two values, each in `each` (e.g. [H, W])."""
    return Range(f"{names} with each {each.expected}",
                 lambda v: isinstance(v, list) and len(v) == 2 and all(each.accepts(x) for x in v))


def or_null(inner: Range, meaning: str) -> Range:
    return Range(f"{inner.expected} or null ({meaning})", lambda v: v is None or inner.accepts(v))


def matching(pattern: str, text: str) -> Range:
    return Range(text, lambda v: isinstance(v, str) and re.fullmatch(pattern, v) is not None)


def mapping_of(keys: Iterable[str], what: str) -> Range:
    allowed = frozenset(keys)
    return Range(f"a mapping of {what} ({', '.join(sorted(allowed))})",
                 lambda v: isinstance(v, Mapping) and all(isinstance(k, str) and k in allowed for k in v))


BOOLEAN = Range("true or false", lambda v: isinstance(v, bool))
TEXT = Range("a string", lambda v: isinstance(v, str))
NON_EMPTY = Range("a non-empty string", lambda v: isinstance(v, str) and v.strip() != "")
COUNT = at_least(1)
PROBABILITY = within(0, 1)  # dropout: 1 would drop every action or image
# UNet fields a run may override; the action space and the causal settings come from the run itself
UNET_FIELDS = [f.name for f in dataclasses.fields(UNetConfig) if f.name not in ("action_space", "causal")]

RANGES: dict[str, Range] = {
    "mode": one_of(MODES),
    "out": NON_EMPTY,
    "seed": within(0, 2**64, "an integer in [0, 2**64)"),  # torch.manual_seed's range
    "model.preset": one_of(sorted(MODELS)),
    "model.unet": mapping_of(UNET_FIELDS, "UNet fields"),
    "model.init": or_null(NON_EMPTY, "random initialisation"),
    "model.transfer": one_of(TRANSFER_MODES),
    "model.norm": one_of(TEMPORAL_NORM_MODES),
    "model.action_space": or_null(matching(r"(continuous|discrete):0*[1-9]\d*", "'continuous:A' or "
                                           "'discrete:K' with A, K >= 1"), "the dataset's own"),
    "model.gradient_checkpointing": BOOLEAN,
    "data.path": TEXT,  # empty: refused when training starts, which is when a dataset is needed
    "data.split": NON_EMPTY,
    "data.length": COUNT,
    "data.size": pair("[H, W]", COUNT),
    "data.layout": one_of(LAYOUTS),
    "data.inner": or_null(pair("[H, W]", COUNT), "no resize before padding"),
    "data.frame_skip": COUNT,
    "data.augment": BOOLEAN,
    "data.workers": at_least(0),
    "optim.lr": above(0),
    "optim.weight_decay": at_least(0),
    "optim.betas": pair("[beta1, beta2]", within(0, 1)),  # torch's Adam refuses others
    "optim.warmup_steps": at_least(0),
    # 0 would scale every gradient to zero (no clipping at all: a large value, e.g. 1e9)
    "optim.grad_clip": above(0),
    "optim.ema_decay": or_null(Range("in (0, 1)", lambda v: _number(v) and 0 < v < 1), "no EMA"),
    "train.steps": COUNT,
    "train.batch_size": COUNT,
    "train.grad_accum": COUNT,
    "train.precision": one_of(PRECISIONS),
    "train.action_dropout": PROBABILITY,
    "train.image_dropout": PROBABILITY,
    "train.distributed": one_of(("ddp", "fsdp")),
    "log.every": COUNT,
    "log.sample_every": at_least(0),  # 0: never
    "log.sample_steps": COUNT,
    "log.sample_context": COUNT,  # and < data.length
    "log.save_every": COUNT,
    "log.keep_last": COUNT,
    "log.tensorboard": BOOLEAN,
}


def value_at(data: Mapping[str, Any], dotted: str) -> Any:
    """`data["a"]["b"]` for the key `a.b`."""
    for part in dotted.split("."):
        data = data[part]
    return data


def first_out_of_range(data: Mapping[str, Any]) -> tuple[str, str] | None:
    """(key, message) of the first key of `data` (a `TrainConfig` as a dict) out of its range, or None."""
    for key, allowed in RANGES.items():
        value = value_at(data, key)
        if not allowed.accepts(value):
            return key, allowed.message(key, value)
    return None
