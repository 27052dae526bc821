"""A world model on disk: `config.json`, the backbone's weights (`model.safetensors`) and each other component's
own file, written atomically and read back strictly, every problem named by file and key.

`config.json` holds the backbone's kind (`backbone`, default `dynamicrafter`) and architecture (under `unet` for
DynamiCrafter, as every file before the seam has it; under `architecture` for every other backbone), the codec, the
noise schedule, the sampler's settings, the conditioner and the metadata.
"""

from __future__ import annotations

import inspect
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import torch
from safetensors.torch import save_file
from torch import Tensor, nn

from ..diffusion.schedule import ScheduleConfig
from ..io.atomic import AtomicDirectory, check_replaceable
from ..io.weights import read_weights
from ..models.backbones import backbone_config, build_backbone
from ..models.clip import CLIPVisionConfig
from ..models.codec import CODECS, codec_from_config
from ..models.conditioning import CONDITIONERS, ImageConditioner, conditioner_from_config
from ..models.resampler import ResamplerConfig
from ..models.vae import VAEConfig
from ..models.validation import StateDictError, check_state_dict
from .sampling import SamplerConfig

CONFIG_NAME, WEIGHTS_NAME = "config.json", "model.safetensors"
# components with weights of their own, each in its own file (diffusers-style); the backbone's file stays WEIGHTS_NAME
COMPONENT_FILES = {"codec": "codec.safetensors", "conditioner": "conditioner.safetensors"}
DEFAULT_BACKBONE = "dynamicrafter"
LEGACY_ARCHITECTURE_KEY = "unet"  # DynamiCrafter's architecture key, kept so every saved model stays readable


def architecture_key(kind: str) -> str:
    return LEGACY_ARCHITECTURE_KEY if kind == DEFAULT_BACKBONE else "architecture"


def config_dict(model: Any) -> dict[str, Any]:
    """What `config.json` holds for `model` (a `WorldModel`)."""
    kind = model.backbone.kind
    head = {"format": "vid2world.WorldModel", "version": 1}
    if kind != DEFAULT_BACKBONE:
        head["backbone"] = kind
    return {**head, architecture_key(kind): model.backbone.config.to_dict(),
            "codec": model.codec.config(), "schedule": model.schedule.config.to_dict(),
            "sampler": model.sampler.to_dict(), "fps": model.fps, "concat_first_frame": model.concat_first_frame,
            "conditioner": None if model.conditioner is None else model.conditioner.config(),
            "metadata": model.metadata}


def _component_states(model: Any) -> dict[str, dict[str, Tensor]]:
    """The weights saved beside the backbone's, by component (only components that have any)."""
    states = {name: _cpu_state(getattr(model, name)) for name in COMPONENT_FILES if getattr(model, name) is not None}
    return {name: state for name, state in states.items() if state}


def save_world_model(model: Any, directory: str | os.PathLike, extra_files: Mapping[str, str] | None = None, *,
                     overwrite: bool = False) -> Path:
    """Write `config.json`, `model.safetensors` (the backbone) and the other components' weights into `directory`,
    with `extra_files` (name -> text) beside them; atomically: a temporary sibling, then renamed into place.

    `directory` must be new or empty; an existing world model is replaced only with `overwrite=True`, and any
    other non-empty directory is refused (`check_save_target`)."""
    target = check_save_target(directory, overwrite)
    with AtomicDirectory(target, overwrite=overwrite) as tmp:
        save_file(_cpu_state(model.backbone), str(tmp.path / WEIGHTS_NAME),
                  metadata={"format": f"vid2world.{type(model.backbone).__name__}"})
        for name, component_state in _component_states(model).items():
            save_file(component_state, str(tmp.path / COMPONENT_FILES[name]),
                      metadata={"format": f"vid2world.{name}"})
        (tmp.path / CONFIG_NAME).write_text(json.dumps(config_dict(model), indent=1))
        for name, text in (extra_files or {}).items():
            (tmp.path / name).write_text(text)
    return target


def load_world_model(cls: type, directory: str | os.PathLike, device: str | torch.device = "cpu") -> Any:
    """Load a directory written by `save_world_model` (or `vid2world convert`) as a `cls` (a `WorldModel`)."""
    path = Path(directory)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such directory; expected a world-model directory (written by "
                                "save_pretrained or `vid2world convert`)")
    if not path.is_dir():
        raise ValueError(f"{path}: is a file, not a world-model directory; a checkpoint file becomes one with "
                         f"`vid2world convert --base {path} --preset P --out DIR` (see `vid2world inspect {path}`)")
    config_path, weights_path = path / CONFIG_NAME, path / WEIGHTS_NAME
    for p in (config_path, weights_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: missing; a world-model directory holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    model = build_from_config(cls, config_path, read_config(config_path))
    try:
        model.backbone.load_state_dict(read_weights(weights_path))
    except StateDictError as err:
        raise ValueError(f"{weights_path}: {err}") from None
    except Exception as err:  # safetensors raises its own error types for truncated or foreign files
        if isinstance(err, ValueError):
            raise ValueError(f"{path}: {err}") from None
        raise ValueError(f"{weights_path}: cannot read weights ({err})") from None
    for name, filename in COMPONENT_FILES.items():
        module = getattr(model, name)
        if module is None or not module.state_dict():
            continue
        component_path = path / filename
        if not component_path.is_file():
            raise FileNotFoundError(f"{component_path}: missing; {config_path} has a {name} with weights")
        _load_component(module, component_path)
    return model.eval().to(device)


def build_from_config(cls: type, config_path: Path, config: dict[str, Any]) -> Any:
    """The model `config` (checked by `read_config`) describes, with fresh weights; the networks' own objections
    (channels that do not fit, a codec that refuses its settings) name the file and the key."""
    kind = config.get("backbone") or DEFAULT_BACKBONE
    key = architecture_key(kind)
    backbone = _config_part(config_path, key, lambda: build_backbone(kind, config[key]))
    codec = _config_part(config_path, "codec", lambda: codec_from_config(config["codec"]))
    conditioner = None
    if config.get("conditioner") is not None:
        conditioner = _config_part(config_path, "conditioner",
                                   lambda: conditioner_from_config(config["conditioner"]))
    try:
        return cls(backbone.eval(), codec, ScheduleConfig.from_dict(config["schedule"]),
                   SamplerConfig.from_dict(config["sampler"]), fps=config.get("fps"),
                   concat_first_frame=config.get("concat_first_frame"), conditioner=conditioner,
                   metadata=config.get("metadata"))
    except ValueError as err:
        raise ValueError(f"{config_path}: {err}") from None


def is_world_model_dir(directory: str | os.PathLike) -> bool:
    """Whether `directory` holds a world model (a `config.json` of format `vid2world.WorldModel`)."""
    try:
        return json.loads((Path(directory) / CONFIG_NAME).read_text()).get("format") == "vid2world.WorldModel"
    except (OSError, ValueError, AttributeError):
        return False


# What `from_pretrained` reads from config.json besides "format": per key, what it holds, its JSON type, and
# whether it may be null or left out (a config.json written by save_pretrained has every key).
_OBJECT, _NUMBER, _BOOLEAN = "a JSON object", "a finite number", "true or false"
CONFIG_KEYS: dict[str, tuple[str, str, bool]] = {
    "unet": ("the UNet's architecture", _OBJECT, False),  # "architecture" for backbones other than DynamiCrafter
    "codec": ("the codec's settings", _OBJECT, False),
    "schedule": ("the noise schedule", _OBJECT, False),
    "sampler": ("the sampler's settings", _OBJECT, False),
    "fps": ("the frame-rate condition", _NUMBER, True),
    "concat_first_frame": ("whether the UNet takes the first frame's latent", _BOOLEAN, True),
    "conditioner": ("the conditioner's settings", _OBJECT, True),
    "metadata": ("the model's metadata", _OBJECT, True),
}
_JSON_TYPES = ((dict, "object"), (list, "array"), (str, "string"), (bool, "boolean"),
               ((int, float), "number"))


def read_config(config_path: Path) -> dict[str, Any]:
    """A world model's `config.json`, checked against all that `from_pretrained` reads from it: each key's
    type and each component's settings (parsed, no network built). ValueError naming the file and the key."""
    try:
        config = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{config_path}: not valid JSON ({err})") from None
    if not isinstance(config, dict):
        kind = next((name for types, name in _JSON_TYPES if isinstance(config, types)), "null")
        raise ValueError(f"{config_path}: a JSON {kind}, expected a JSON object (a world model's settings, "
                         "as WorldModel.save_pretrained or `vid2world convert` write them)")
    if config.get("format") != "vid2world.WorldModel":
        raise ValueError(f"{config_path}: key 'format' is {config.get('format')!r}, expected "
                         "'vid2world.WorldModel' (a world-model directory written by `vid2world convert` or "
                         "WorldModel.save_pretrained)")
    backbone = config.get("backbone") or DEFAULT_BACKBONE
    if not isinstance(backbone, str):
        raise ValueError(f"{config_path}: key 'backbone' is {backbone!r}, expected a backbone's name (a string)")
    arch_key = architecture_key(backbone)
    for key, (what, kind, optional) in CONFIG_KEYS.items():
        if key == LEGACY_ARCHITECTURE_KEY and arch_key != key:
            key, what = arch_key, f"the {backbone} backbone's architecture"
        if key not in config and not optional:
            raise ValueError(f"{config_path}: key {key!r} is missing, expected {what} ({kind})")
        value = config.get(key)
        if not (value is None and optional) and not _is_json(value, kind):
            text = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
            raise ValueError(f"{config_path}: key {key!r} is {text}, expected {what} "
                             f"({kind}{' or null' if optional else ''})")
    _config_part(config_path, arch_key, lambda: backbone_config(backbone, config[arch_key]))
    _config_part(config_path, "codec", lambda: _check_codec(config["codec"]))
    _config_part(config_path, "schedule", lambda: ScheduleConfig.from_dict(config["schedule"]))
    _config_part(config_path, "sampler", lambda: SamplerConfig.from_dict(config["sampler"]))
    if config.get("conditioner") is not None:
        _config_part(config_path, "conditioner", lambda: _check_conditioner(config["conditioner"]))
    return config


def _is_json(value: Any, kind: str) -> bool:
    if kind == _OBJECT:
        return isinstance(value, dict)
    if kind == _BOOLEAN:
        return isinstance(value, bool)
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _config_part(config_path: Path, key: str, parse: Callable[[], Any]) -> Any:
    """`parse()` of the settings under `key`, any error it raises as a ValueError naming file and key."""
    try:
        return parse()
    except KeyError as err:
        raise ValueError(f"{config_path}: key {key!r}: missing key {err}") from None
    except (TypeError, ValueError, AttributeError) as err:
        raise ValueError(f"{config_path}: key {key!r}: {err}") from None


def _check_codec(config: Mapping[str, Any]) -> None:
    """A codec's settings, checked without building it (the SD VAE takes seconds and 330 MB)."""
    kind = config.get("kind")
    if kind not in CODECS:
        raise ValueError(f"unknown codec kind {kind!r}; available: {sorted(CODECS)}")
    takes = set(inspect.signature(CODECS[kind]).parameters)
    unexpected = sorted(set(config) - takes - {"kind"})
    if unexpected:
        raise ValueError(f"unexpected settings {unexpected} for codec kind {kind!r}; it takes "
                         f"{sorted(takes)}")
    if isinstance(config.get("vae"), Mapping):  # each codec's VAE architecture has its own config class
        getattr(CODECS[kind], "vae_config", VAEConfig).from_dict(config["vae"])


def _check_conditioner(config: Mapping[str, Any]) -> None:
    """A conditioner's settings, checked without building its CLIP tower."""
    kind = config.get("kind")
    if kind in CONDITIONERS and hasattr(CONDITIONERS[kind], "check_config"):  # one with a tower checks itself
        CONDITIONERS[kind].check_config(config)
        return
    if kind in CONDITIONERS and kind != ImageConditioner.kind:
        conditioner_from_config(config)  # no tower: cheap to build
        return
    if config.get("kind") != ImageConditioner.kind:
        raise ValueError(f"conditioner kind {config.get('kind')!r} is not {ImageConditioner.kind!r}")
    CLIPVisionConfig.from_dict(config["image_encoder"])
    ResamplerConfig.from_dict(config["image_proj"])


def check_save_target(directory: str | os.PathLike, overwrite: bool = False,
                      keep: Iterable[str | os.PathLike] = ()) -> Path:
    """Raise unless `save_pretrained` may write `directory`: new, empty, or (with `overwrite`) a world model; never
    a directory holding a path in `keep` (the input being converted). Returns it as an absolute path."""
    target = check_replaceable(directory, overwrite=True, keep=keep)
    if not target.is_dir() or not any(target.iterdir()):
        return check_replaceable(target)
    if not is_world_model_dir(target):
        raise FileExistsError(f"{target}: not empty and not a world-model directory (no {CONFIG_NAME} of format "
                              "'vid2world.WorldModel'); refusing to replace it: give a new or an empty directory")
    if not overwrite:
        raise FileExistsError(f"{target}: holds a world model already; give a new directory, or pass overwrite=True "
                              "to replace it")
    return target


def _cpu_state(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}


def _load_component(module: nn.Module, path: Path) -> None:
    """Strict load of a component's weights, naming the file and the keys that do not fit."""
    try:
        state = read_weights(path)
    except Exception as err:
        raise ValueError(f"{path}: cannot read weights ({err})") from None
    check_state_dict({k: tuple(v.shape) for k, v in module.state_dict().items()}, state, source=str(path))
    module.load_state_dict(state)
