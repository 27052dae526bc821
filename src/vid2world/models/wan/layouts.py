"""Reading a Wan 2.1 transformer from a directory, in diffusers' layout or the Wan release's own.

A directory holds config.json and the weights as `<stem>.safetensors`, or as shards listed by
`<stem>.safetensors.index.json`; the stem is `diffusion_pytorch_model` (diffusers, Wan-AI's releases) or
`model` (some SkyReels-V2 releases). A diffusers pipeline directory (model_index.json) is read through its
transformer/.
Names, shapes and the index are checked from the safetensors headers before any tensor is read, so a 14B
checkpoint that does not fit fails in a moment, naming the file and the key.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Mapping

import torch
from torch import Tensor

from ..validation import check_state_dict
from .wan_keys import (diffusers_to_original_key, expected_shapes, normalized_diffusers_config,
                       original_config_to_diffusers, original_to_diffusers_key)

WAN21 = "wan2.1"
# diffusers class -> config keys it adds that change no weight (runtime settings) and are dropped
DIFFUSERS_CLASSES = {"WanTransformer3DModel": (),
                     "SkyReelsV2Transformer3DModel": ("num_frame_per_block", "inject_sample_info")}
ORIGINAL_CLASS = "WanModel"
WEIGHT_STEMS = ("diffusion_pytorch_model", "model")
# Early diffusers I2V conversions stored a q-norm for image tokens that the model never had; diffusers' own
# loader drops it (`_keys_to_ignore_on_load_unexpected`), and so do we.
_IGNORED_KEY = re.compile(r"blocks\.\d+\.attn2\.norm_added_q\.weight")
_WAN22_LATENT_CHANNELS = 48  # Wan 2.2's VAE: a transformer reading 48 channels is not Wan 2.1's


def read_wan_transformer(path: str | Path) -> tuple[dict[str, object], dict[str, Tensor], str]:
    """(config in diffusers' form, state dict in diffusers' names, layout 'diffusers' | 'original') of the
    Wan transformer at `path`: its directory, or a diffusers pipeline directory. Every key and shape is
    checked before a tensor is read."""
    directory = transformer_directory(path)
    layout, config = read_wan_config(directory / "config.json")
    keys = _renamed_keys(directory, layout)
    shapes = {new: torch.empty(shape, device="meta") for new, (_, _, shape) in keys.items()}
    check_wan_state_dict(config, shapes, source=str(directory))
    return config, _load(keys), layout


def detect_video_model(path: str | Path) -> str | None:
    """'wan2.1' when `path` is a directory holding a Wan 2.1 transformer (either layout) or a diffusers
    pipeline around one, else None. Reads config.json / model_index.json only, never weights; never raises."""
    try:
        if Path(path, "model_index.json").is_file():
            index = _read_json(Path(path, "model_index.json"))
            if index.get("transformer_2") or index.get("expand_timesteps"):
                return None  # Wan 2.2: two experts, or the 5B's per-token timesteps
        _, config = read_wan_config(transformer_directory(path) / "config.json")
    except (ValueError, OSError):
        return None
    return None if config["in_channels"] == _WAN22_LATENT_CHANNELS else WAN21


def transformer_directory(path: str | Path) -> Path:
    """The directory holding the transformer's config.json: `path` itself, or a pipeline's transformer/."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path}: not a directory; expected a Wan transformer or a diffusers pipeline "
                         "directory")
    if (path / "model_index.json").is_file():
        entry = _read_json(path / "model_index.json").get("transformer")
        if not (isinstance(entry, list) and len(entry) == 2 and entry[1] in DIFFUSERS_CLASSES):
            raise ValueError(f"{path / 'model_index.json'}: transformer is {entry!r}, expected "
                             f"['diffusers', one of {sorted(DIFFUSERS_CLASSES)}]")
        path = path / "transformer"
    if not (path / "config.json").is_file():
        raise ValueError(f"{path}: no config.json; expected a Wan transformer directory (config.json and "
                         "diffusion_pytorch_model*.safetensors) or a pipeline directory (model_index.json)")
    return path


def read_wan_config(path: Path) -> tuple[str, dict[str, object]]:
    """('diffusers' | 'original', the config in diffusers' form) of a transformer's config.json."""
    raw = _read_json(path)
    name = raw.get("_class_name")
    if name in DIFFUSERS_CLASSES:
        if raw.get("inject_sample_info"):
            raise ValueError(f"{path}: inject_sample_info=true (SkyReels-V2 diffusion forcing) adds fps "
                             "embeddings that a Wan 2.1 transformer does not have")
        return "diffusers", normalized_diffusers_config(raw, str(path), DIFFUSERS_CLASSES[name])
    if name == ORIGINAL_CLASS or (name is None and "model_type" in raw and "dim" in raw):
        return "original", original_config_to_diffusers(raw, str(path))
    raise ValueError(f"{path}: _class_name {name!r} is not a Wan 2.1 transformer; expected one of "
                     f"{sorted(DIFFUSERS_CLASSES) + [ORIGINAL_CLASS]}")


def check_wan_state_dict(config: Mapping[str, object], state: Mapping[str, Tensor],
                         source: str = "state dict") -> None:
    """Refuse (StateDictError, naming each key) a state dict in diffusers' names with a key missing, extra or
    of the wrong shape for WanTransformer3DModel(**config)."""
    check_state_dict(expected_shapes(config), state, source=source)


def weight_headers(directory: Path) -> dict[Path, dict[str, tuple[int, ...]]]:
    """{safetensors file: {key: shape}} of `directory`; the index, if any, checked against the files."""
    found = [(Path(directory, f"{stem}.safetensors"), Path(directory, f"{stem}.safetensors.index.json"))
             for stem in WEIGHT_STEMS]
    present = [(single, index) for single, index in found if single.is_file() or index.is_file()]
    if len(present) != 1 or all(p.is_file() for p in present[0]):
        names = [p.name for pair in present for p in pair if p.is_file()]
        raise ValueError(f"{directory}: expected exactly one of diffusion_pytorch_model.safetensors or "
                         "diffusion_pytorch_model.safetensors.index.json (or model.*), "
                         f"found {names or 'none'}")
    single, index = present[0]
    if single.is_file():
        return {single: _header_shapes(single)}
    return _indexed_files(index)


def _indexed_files(index: Path) -> dict[Path, dict[str, tuple[int, ...]]]:
    weight_map = _read_json(index).get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise ValueError(f"{index}: no weight_map (key -> shard file) in the index")
    listed: dict[str, list[str]] = {}
    for key, name in weight_map.items():
        listed.setdefault(name, []).append(key)
    files: dict[Path, dict[str, tuple[int, ...]]] = {}
    for name, keys in listed.items():
        shard = index.parent / name
        if not shard.is_file():
            raise ValueError(f"{shard}: listed in {index.name} (key {keys[0]!r}) but missing")
        files[shard] = _header_shapes(shard)
        absent = sorted(set(keys) - set(files[shard]))
        if absent:
            raise ValueError(f"{shard}: key {absent[0]!r} is listed for this file in {index.name} "
                             "but not in it")
        unlisted = [k for k in files[shard] if weight_map.get(k) != name]
        if unlisted:
            key = unlisted[0]
            where = f"listed for {weight_map[key]}" if key in weight_map else "not listed"
            raise ValueError(f"{shard}: key {key!r} is {where} in {index.name} "
                             "(a duplicate or a stray tensor)")
    return files


def _renamed_keys(directory: Path, layout: str) -> dict[str, tuple[Path, str, tuple[int, ...]]]:
    """{diffusers name: (file, stored name, shape)}, refusing unmapped and duplicate keys by file and key."""
    out: dict[str, tuple[Path, str, tuple[int, ...]]] = {}
    for file, shapes in weight_headers(directory).items():
        for key, shape in shapes.items():
            new = _diffusers_name(file, key, layout)
            if _IGNORED_KEY.fullmatch(new):
                continue
            if new in out:
                raise ValueError(f"{file}: key {key!r} duplicates {out[new][1]!r} in {out[new][0]} "
                                 f"(both are {new!r} in diffusers' names)")
            out[new] = (file, key, shape)
    return out


def _diffusers_name(file: Path, key: str, layout: str) -> str:
    """`key` in diffusers' names; a key named as in the other layout than config.json's is refused by name."""
    if layout == "original":
        try:
            return original_to_diffusers_key(key)
        except ValueError as err:
            if not _names_a_parameter(key, "diffusers"):
                raise ValueError(f"{file}: {err}") from None
            found, described = "diffusers' name", f"the Wan release layout ({ORIGINAL_CLASS})"
    elif _names_a_parameter(key, "diffusers") or not _names_a_parameter(key, "original"):
        return key  # a key of neither layout: the shape check names it as unexpected
    else:
        found, described = "the Wan release's name", "diffusers' layout"
    raise ValueError(f"{file}: key {key!r} is {found}, but config.json describes {described}; "
                     "the config and the weights disagree")


def _names_a_parameter(key: str, layout: str) -> bool:
    convert = diffusers_to_original_key if layout == "diffusers" else original_to_diffusers_key
    try:
        convert(key)
    except ValueError:
        return False
    return True


def _header_shapes(file: Path) -> dict[str, tuple[int, ...]]:
    """{key: shape} from a safetensors file's header, without reading a tensor."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(file), framework="pt") as f:
            return {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{file}: unreadable safetensors file ({err})") from err


def _load(keys: Mapping[str, tuple[Path, str, tuple[int, ...]]]) -> dict[str, Tensor]:
    from safetensors import safe_open

    by_file: dict[Path, list[tuple[str, str]]] = {}
    for new, (file, key, _) in keys.items():
        by_file.setdefault(file, []).append((new, key))
    state: dict[str, Tensor] = {}
    for file, pairs in by_file.items():
        with safe_open(str(file), framework="pt") as f:
            state.update((new, f.get_tensor(key)) for new, key in pairs)
    return state


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: unreadable JSON ({err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: holds a {type(data).__name__}, expected a JSON object")
    return data
