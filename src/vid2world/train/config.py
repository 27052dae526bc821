"""`TrainConfig`: what `vid2world train CONFIG.yaml [key=value ...]` reads.

One YAML file (OmegaConf) with dotlist overrides on the command line. Every key is checked against the dataclasses
below before anything runs: an unknown key is an error that names the nearest valid keys, a wrongly typed or
non-finite value is an error that names the key and the expected type; each error names where the value came from
(the YAML file, or the override `key=value`).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

MODES = ("pretrain", "world-model")
PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass
class ModelSection:
    """The network: a preset architecture, optionally started from weights, and how it is made causal."""

    # dynamicrafter-256|512|1024 or tiny: every part of a DynamiCrafter-layout latent model (checkpoints.registry);
    # pixel-tiny or pixel-64: a pixel-space UNet alone (models.config)
    preset: str = "tiny"
    unet: dict[str, Any] = field(default_factory=dict)  # UNetConfig fields that differ from the preset's
    # a world-model directory (ours, e.g. a pretrain run's export) or a DynamiCrafter / Vid2World checkpoint file
    # (converted as `vid2world convert` does); None: random initialisation of every part
    init: str | None = None
    transfer: str = "extrapolative"  # world-model mode: the causal weight transfer
    norm: str = "frame"  # world-model mode: the temporal GroupNorm mode
    action_space: str | None = None  # "continuous:A" | "discrete:K"; None: the dataset's own
    gradient_checkpointing: bool = False


@dataclass
class DataSection:
    """Clips from a vid2world dataset directory (docs/data.md)."""

    path: str = ""
    split: str = "train"
    length: int = 16  # frames per clip
    size: list[int] = field(default_factory=lambda: [64, 64])  # H, W after the layout
    layout: str = "resize"  # resize | shorter_side_pad | resize_pad | square_crop_pad
    inner: list[int] | None = None  # resize_pad: [H, W] before padding (CS:GO: [275, 512] inside [320, 512])
    frame_skip: int = 1
    augment: bool = True
    workers: int = 2


@dataclass
class OptimSection:
    lr: float = 1e-4
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_steps: int = 0
    grad_clip: float = 0.5
    ema_decay: float | None = None  # None: no EMA


@dataclass
class TrainSection:
    steps: int = 1000
    batch_size: int = 2  # clips per process per micro-step
    grad_accum: int = 1
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast; fp16 with a gradient scaler)
    action_dropout: float = 0.2  # world-model mode: per-frame probability of masking the action (method.md 5.4)
    image_dropout: float = 0.1  # per-clip probability of zeroing the CLIP image frame (DynamiCrafter: 0.05..0.15)
    distributed: str = "ddp"  # ddp | fsdp (when launched with several processes)


@dataclass
class LogSection:
    every: int = 10  # steps between logged scalars
    sample_every: int = 0  # steps between sample rollouts (0: never)
    sample_steps: int = 20  # DDIM steps per sampled frame
    sample_context: int = 2  # ground-truth frames a sample rollout starts from
    save_every: int = 100  # steps between checkpoints
    keep_last: int = 3  # checkpoints kept
    tensorboard: bool = True


@dataclass
class TrainConfig:
    """The whole training run. `mode`: `pretrain` (a passive, non-causal video model, one noise level per clip, no
    actions) or `world-model` (causalize, then Diffusion Forcing with per-frame action dropout)."""

    mode: str = "world-model"
    out: str = "runs/run"
    seed: int = 0
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    train: TrainSection = field(default_factory=TrainSection)
    log: LogSection = field(default_factory=LogSection)

    def __post_init__(self) -> None:
        for key, value in _numbers(self.to_dict()):
            if not math.isfinite(value):
                raise ConfigError(f"{key}: must be a finite number, got {value}", key)
        checks = [("mode", self.mode, MODES), ("train.precision", self.train.precision, PRECISIONS),
                  ("train.distributed", self.train.distributed, ("ddp", "fsdp"))]
        for key, value, allowed in checks:
            if value not in allowed:
                raise ConfigError(f"{key}: {value!r} is not one of {list(allowed)}", key)
        positive = {"train.steps": self.train.steps, "train.batch_size": self.train.batch_size,
                    "train.grad_accum": self.train.grad_accum, "data.length": self.data.length,
                    "log.keep_last": self.log.keep_last}
        for key, value in positive.items():
            if value < 1:
                raise ConfigError(f"{key}: must be >= 1, got {value}", key)
        for key in ("action_dropout", "image_dropout"):
            value = getattr(self.train, key)
            if not 0 <= value < 1:
                raise ConfigError(f"train.{key}: must be in [0, 1), got {value}", f"train.{key}")
        if not 1 <= self.log.sample_context < self.data.length:
            raise ConfigError(f"log.sample_context: must be in [1, data.length={self.data.length}), got "
                              f"{self.log.sample_context}", "log.sample_context")
        if len(self.data.size) != 2:
            raise ConfigError(f"data.size: expected [H, W], got {self.data.size}", "data.size")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class ConfigError(ValueError):
    """A training config that cannot run; the message names the key (`key`, where one is at fault)."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


def _numbers(data: Any, prefix: str = "") -> typing.Iterator[tuple[str, float]]:
    """(dotted key, value) of every float in nested dicts and lists (bools and ints cannot be NaN)."""
    items = data.items() if isinstance(data, Mapping) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        dotted = f"{prefix}[{key}]" if isinstance(data, list) else f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, float):
            yield dotted, value
        else:
            yield from _numbers(value, dotted)


def _fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def check_keys(data: Mapping[str, Any], cls: type = TrainConfig, prefix: str = "") -> None:
    """Raise `ConfigError` for the first key of `data` that `cls` does not have, naming the nearest valid keys."""
    fields = _fields(cls)
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            valid = [f"{prefix}{name}" for name in fields]
            near = difflib.get_close_matches(dotted, valid, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            raise ConfigError(f"unknown config key {dotted!r}{hint} (valid here: {', '.join(valid)})")
        sub = fields[key].type
        if isinstance(sub, str):
            sub = globals().get(sub)
        if dataclasses.is_dataclass(sub):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{dotted}: expected a section (keys {', '.join(_fields(sub))}), got {value!r}",
                                  dotted)
            check_keys(value, sub, f"{dotted}.")


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read `path` (YAML), apply `key=value` overrides, check every key and type, return the config."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    sources = []  # (origin, layer): the file, then each override alone, so that an error names where it came from
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such config file")
        try:
            sources.append((str(path), OmegaConf.load(path)))
        except Exception as err:  # YAML syntax errors come in several types
            raise ConfigError(f"{path}: not valid YAML ({err})") from None
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value, e.g. train.steps=100")
        try:
            sources.append((f"override {item}", OmegaConf.from_dotlist([item])))
        except OmegaConfBaseException as err:
            raise ConfigError(f"override {item}: {str(err).splitlines()[0]}") from None
    merged = OmegaConf.structured(TrainConfig)
    for origin, layer in sources:
        try:
            check_keys(OmegaConf.to_container(layer, resolve=False))
            merged = OmegaConf.merge(merged, layer)
        except ConfigError as err:
            raise ConfigError(f"{origin}: {err}", err.key) from None
        except OmegaConfBaseException as err:  # type mismatches
            raise ConfigError(f"{origin}: {_type_error(err)}", err.full_key) from None
    try:
        return OmegaConf.to_object(merged)
    except ConfigError as err:  # a value out of range: name the source that set it, if one did
        origin = next((o for o, layer in reversed(sources) if err.key and _sets(layer, err.key)), None)
        raise ConfigError(f"{origin}: {err}" if origin else str(err), err.key) from None


def _sets(layer: Any, dotted: str) -> bool:
    """Whether an OmegaConf layer sets the key `dotted` (e.g. `optim.lr`, `optim.betas[1]`)."""
    from omegaconf import OmegaConf

    return OmegaConf.select(layer, re.sub(r"\[(\d+)\]", r".\1", dotted), default=_MISSING) is not _MISSING


_MISSING = object()
# list fields whose elements have meanings, shown in type errors
_LIST_SHAPES = {"data.size": "[H, W]", "data.inner": "[H, W]", "optim.betas": "[beta1, beta2]"}


def _type_error(err: Exception) -> str:
    """OmegaConf's type error as `key: expected <type in words>, got <value>`."""
    from omegaconf import Node

    key = getattr(err, "full_key", None)
    expected = _expected(key) if key else None
    if expected is None:
        return f"{str(err).splitlines()[0]}" + (f" (key {key})" if key else "")
    value = getattr(err, "value", None)
    value = value._value() if isinstance(value, Node) else value  # the YAML scalar, not OmegaConf's wrapper
    return f"{key}: expected {expected}, got {value!r}"


def _expected(dotted: str) -> str | None:
    """The value the key `dotted` takes, in words (an index `[i]` names a list element); None where unknown."""
    base, index = re.fullmatch(r"(.*?)(\[\d+\])?", dotted).groups()
    owner: Any = TrainConfig()
    hint: Any = None
    for part in base.split("."):
        if not dataclasses.is_dataclass(owner) or part not in _fields(type(owner)):
            return None
        hint, owner = typing.get_type_hints(type(owner))[part], getattr(owner, part)
    if index:
        return _describe(typing.get_args(hint)[0])
    described = _describe(hint)
    if base in _LIST_SHAPES:
        described = described.replace("a list", f"a list {_LIST_SHAPES[base]}", 1)
    return described + (f" (e.g. {json.dumps(owner)})" if isinstance(owner, list) else "")


def _describe(hint: Any) -> str:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if len(args) < len(typing.get_args(hint)):  # X | None
        return " or ".join(_describe(a) for a in args) + " or null"
    origin = typing.get_origin(hint)
    if origin is list:
        return f"a list of {_describe(args[0]).split(' ', 1)[1]}s"
    if origin is dict or hint is dict:
        return "a mapping of keys to values"
    if dataclasses.is_dataclass(hint):
        return f"a section (keys {', '.join(_fields(hint))})"
    return {int: "an integer", float: "a number", str: "a string", bool: "a boolean (true or false)"}.get(
        hint, getattr(hint, "__name__", str(hint)))


def save_config(config: TrainConfig, path: str | Path) -> Path:
    """Write the resolved config as YAML (atomically), so a run records exactly what it ran with."""
    from omegaconf import OmegaConf

    from ..io.atomic import write_text

    path = Path(path)
    write_text(path, OmegaConf.to_yaml(OmegaConf.structured(config)))
    return path
