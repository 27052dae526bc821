"""`TrainConfig`: what `vid2world train CONFIG.yaml [key=value ...]` reads.

One YAML file (OmegaConf) with dotlist overrides on the command line. Every key is checked before anything
runs: an unknown key names the nearest valid keys; a wrongly typed, non-finite or out-of-range value
(config_ranges.RANGES: one range per key) names the key, the value and what it takes; a `${...}`
interpolation that does not resolve names its key. Each error is one line that starts with where the value
came from: the YAML file's path, or `override key=value` (config_sources).
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
from typing import Any, Mapping, Sequence, get_origin

from .config_ranges import ConfigError, first_out_of_range, show
from .config_sources import first_line, items, one_line, origin_of, read_sources


@dataclass
class ModelSection:
    """The network: a preset architecture, optionally started from weights, and how it is made causal."""

    # dynamicrafter-256|512|1024 or tiny: every part of a DynamiCrafter-layout latent model
    # (checkpoints.registry); pixel-tiny or pixel-64: a pixel-space UNet alone (models.config)
    preset: str = "tiny"
    unet: dict[str, Any] = field(default_factory=dict)  # UNetConfig fields that differ from the preset's
    # a world-model directory (ours, e.g. a pretrain run's export) or a DynamiCrafter / Vid2World checkpoint
    # file (converted as `vid2world convert` does); None: random initialisation of every part
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
    action_dropout: float = 0.2  # world-model mode: per-frame chance of masking the action (method.md 5.4)
    image_dropout: float = 0.1  # per-clip chance of zeroing the CLIP image frame (DynamiCrafter: 0.05..0.15)
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
    """The whole training run. `mode`: `pretrain` (a passive non-causal video model, one noise level per clip,
    no actions) or `world-model` (causalize, then Diffusion Forcing with per-frame action dropout)."""

    mode: str = "world-model"
    out: str = "runs/run"
    seed: int = 0
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    train: TrainSection = field(default_factory=TrainSection)
    log: LogSection = field(default_factory=LogSection)

    def __post_init__(self) -> None:
        for key, value in items(self.to_dict()):
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{key}: must be a finite number, got {value}", key)
        bad = first_out_of_range(self.to_dict())  # every key against its range (config_ranges.RANGES)
        if bad:
            raise ConfigError(bad[1], bad[0])
        if self.log.sample_context >= self.data.length:
            raise ConfigError(f"log.sample_context: must be in [1, data.length={self.data.length}), got "
                              f"{self.log.sample_context}", "log.sample_context", ("data.length",))
        if self.data.layout == "resize_pad" and self.data.inner is None:
            raise ConfigError("data.inner: must be [H, W] when data.layout is resize_pad (the size before "
                              "padding, e.g. [275, 512] inside [320, 512]), got null", "data.inner",
                              ("data.layout",))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def check_keys(data: Mapping[str, Any], cls: type = TrainConfig, prefix: str = "") -> None:
    """Raise `ConfigError` for the first key of `data` that `cls` lacks, naming the nearest valid keys,
    or whose value is a section, list or mapping where the key takes another kind."""
    fields = _fields(cls)
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            valid = [f"{prefix}{name}" for name in fields]
            near = difflib.get_close_matches(dotted, valid, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            raise ConfigError(f"unknown config key {dotted!r}{hint} (valid here: {', '.join(valid)})")
        sub = typing.get_type_hints(cls)[key]
        if dataclasses.is_dataclass(sub):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{dotted}: expected a section (keys {', '.join(_fields(sub))}), "
                                  f"got {value!r}", dotted)
            check_keys(value, sub, f"{dotted}.")
        elif isinstance(value, (Mapping, list)) and isinstance(value, Mapping) != (get_origin(sub) is dict):
            # a mapping for a list, or a list for a mapping: OmegaConf's merge raises a bare TypeError
            raise ConfigError(f"{dotted}: expected {_expected(dotted)}, got {show(value)}", dotted)


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read `path` (YAML), apply `key=value` overrides, check every key, type, range and interpolation, and
    return the config. Every error is one `ConfigError` line naming where the value came from, the key and
    what it takes."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    sources = read_sources(path, overrides)  # each alone, so that an error names where its value came from
    merged = OmegaConf.structured(TrainConfig)
    for origin, layer in sources:
        try:
            check_keys(OmegaConf.to_container(layer, resolve=False))
            merged = OmegaConf.merge(merged, layer)
        except ConfigError as err:
            raise ConfigError(f"{origin}: {err}", err.key) from None
        except OmegaConfBaseException as err:  # type mismatches
            raise ConfigError(f"{origin}: {_type_error(err)}", err.full_key) from None
    _check_interpolations(merged, sources)
    try:
        return OmegaConf.to_object(merged)
    except ConfigError as err:  # a value out of range: name the source that set it, if one did
        origin = origin_of(sources, (err.key, *err.related))
        raise ConfigError(f"{origin}: {err}" if origin else str(err), err.key) from None
    except OmegaConfBaseException as err:  # e.g. a value left '???' (OmegaConf's "missing")
        key = err.full_key or None
        origin = origin_of(sources, (key,))
        message = f"{key}: {first_line(err)}" if key else first_line(err)
        raise ConfigError(f"{origin}: {message}" if origin else message, key) from None


def _check_interpolations(merged: Any, sources: Sequence[tuple[str, Any]]) -> None:
    """Resolve every `${...}` of the merged config now, so that one that fails is named with its key and the
    file or override that wrote it (OmegaConf's own error names neither, and for a list no key at all)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import InterpolationValidationError, OmegaConfBaseException

    for key, value in items(OmegaConf.to_container(merged, resolve=False)):
        if not (isinstance(value, str) and "${" in value):
            continue
        expected = _expected(key) or "a value of its type"
        wrong_type = f"interpolation {one_line(value)} does not give {expected}"
        try:
            resolved = OmegaConf.select(merged, re.sub(r"\[(\d+)\]", r".\1", key))
        except InterpolationValidationError:  # resolved, but to a value of another type
            reason = wrong_type
        except OmegaConfBaseException as err:
            reason = f"cannot resolve interpolation {one_line(value)}: {first_line(err)}"
        else:
            hint = (_declared(key) or (None, None))[0]
            if not (_is_container(hint) and isinstance(resolved, (str, int, float, bool))):
                continue
            reason = wrong_type  # OmegaConf lets an escaped `\${` through here and fails later, naming no key
        origin = origin_of(sources, (key,))
        raise ConfigError(f"{origin}: {key}: {reason}" if origin else f"{key}: {reason}", key)


# list fields whose elements have meanings, shown in type errors
_LIST_SHAPES = {"data.size": "[H, W]", "data.inner": "[H, W]", "optim.betas": "[beta1, beta2]"}


def _type_error(err: Exception) -> str:
    """OmegaConf's type error as `key: expected <type in words>, got <value>`."""
    from omegaconf import Node

    key = getattr(err, "full_key", None)
    expected = _expected(key) if key else None
    if expected is None:
        return first_line(err) + (f" (key {key})" if key else "")
    value = getattr(err, "value", None)
    value = value._value() if isinstance(value, Node) else value  # the YAML scalar, not OmegaConf's wrapper
    return f"{key}: expected {expected}, got {show(value)}"


def _declared(dotted: str) -> tuple[Any, Any] | None:
    """(type hint, default) of the key `dotted` (no index); None for a key that TrainConfig does not declare."""
    owner: Any = TrainConfig()
    hint: Any = None
    for part in dotted.split("."):
        if not dataclasses.is_dataclass(owner) or part not in _fields(type(owner)):
            return None
        hint, owner = typing.get_type_hints(type(owner))[part], getattr(owner, part)
    return hint, owner


def _is_container(hint: Any) -> bool:
    """Whether a key of type `hint` holds a list or a mapping (`list[int] | None` does)."""
    return any(get_origin(h) in (list, dict) or h in (list, dict) for h in (hint, *typing.get_args(hint)))


def _expected(dotted: str) -> str | None:
    """The value the key `dotted` takes, in words (an index `[i]` names a list element); None if unknown."""
    base, index = re.fullmatch(r"(.*?)(\[\d+\])?", dotted).groups()
    declared = _declared(base)
    if declared is None:
        return None
    hint, owner = declared
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
