"""`inspect_checkpoint`: what a checkpoint file or a world-model directory holds, without building any model.

A file: format, layout (DynamiCrafter, released Vid2World, UNet-only), per part the key and parameter counts and
dtypes, which preset each part matches (or the nearest one and what differs), the action head, and keys outside the
parts. A world-model directory (`vid2world convert`'s output): the UNet preset it matches, causal settings, action
space, codec, conditioner, sampler, dtype and parameter counts, read from config.json and the safetensors headers.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any, Mapping

from ..causal.keys import is_official_layout, normalize_keys
from ..models.config import PRESETS
from ..models.embeddings import action_space_of
from ..world.storage import DEFAULT_BACKBONE, architecture_key
from ..world.world_model import COMPONENT_FILES, CONFIG_NAME, WEIGHTS_NAME, check_config
from .convert import preset_differences, split_parts
from .reader import FORMATS_READ, CheckpointError, read_checkpoint
from .registry import PART_LABELS, PRETRAINED

MAX_DIFFERENCES = 6  # listed per part for the nearest preset
WORLD_MODEL_FORMAT = "vid2world world model"
# UNetConfig fields that a conversion or a training run sets, not the preset's architecture
NOT_ARCHITECTURE = ("action_space", "causal", "gradient_checkpointing", "temporal_length")
SAFETENSORS_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
                      "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}


def inspect_checkpoint(path: str | Path, trust_pickle: bool = False) -> dict[str, Any]:
    """A JSON-ready description of the checkpoint file, or of the world-model directory, at `path`."""
    if Path(path).is_dir():
        from ..models.wan.layouts import detect_video_model

        if detect_video_model(path) is not None:
            from .wan import inspect_wan

            return inspect_wan(path)
        if (Path(path) / CONFIG_NAME).is_file():
            return inspect_world_model(path)
        raise CheckpointError(f"{path}: a directory without {CONFIG_NAME}; expected a world-model directory "
                              f"({CONFIG_NAME}, {WEIGHTS_NAME}, ...) or a checkpoint file: {FORMATS_READ}")
    ckpt = read_checkpoint(path, trust_pickle=trust_pickle)
    parts = split_parts(ckpt)
    official = is_official_layout(parts["unet"])
    parts["unet"], official_renames = normalize_keys(parts["unet"])
    other = parts.pop("other", {})
    layout = "vid2world" if official else ("dynamicrafter" if "vae" in parts else "unet-only")
    dtypes = Counter(str(v.dtype).replace("torch.", "") for v in ckpt.state_dict.values())
    info: dict[str, Any] = {
        "path": str(ckpt.path), "format": ckpt.format, "layout": layout,
        "dtype": dtypes.most_common(1)[0][0], "dtypes": dict(dtypes),
        "keys": len(ckpt.state_dict), "parameters": sum(v.numel() for v in ckpt.state_dict.values()),
        "legacy_renamed": len(ckpt.renamed), "official_renamed": len(official_renames),
        "other_keys": sorted(other), "parts": {},
    }
    space, key = action_space_of(parts["unet"])
    info["actions"] = None if space is None else {"kind": space.kind, "width": space.dim, "key": key}
    unet = parts["unet"]
    info["unet_channels"] = {"in": int(unet["input_blocks.0.0.weight"].shape[1]) if "input_blocks.0.0.weight" in unet
                             else None, "out": int(unet["out.2.weight"].shape[0]) if "out.2.weight" in unet else None}
    for part, state in parts.items():
        info["parts"][part] = _describe_part(part, state)
    common = [name for name in PRETRAINED if all(name in p["matches"] for p in info["parts"].values())]
    info["presets"] = common  # dynamicrafter-512 and -1024 share every shape: both match their files
    info["preset"] = common[0] if common else None
    return info


def _describe_part(part: str, state: dict) -> dict[str, Any]:
    differences = preset_differences(part, state)
    exact = [name for name, diffs in differences.items() if not diffs]
    nearest = min(differences, key=lambda name: len(differences[name]))
    return {"keys": len(state), "parameters": sum(v.numel() for v in state.values()),
            "dtypes": sorted({str(v.dtype).replace("torch.", "") for v in state.values()}),
            "preset": exact[0] if exact else None, "matches": exact,
            "nearest": None if exact else nearest, "differences": len(differences[nearest]),
            "examples": differences[nearest][:MAX_DIFFERENCES]}


def inspect_world_model(directory: str | Path) -> dict[str, Any]:
    """A JSON-ready description of a world-model directory (`save_pretrained`'s layout), without loading weights."""
    directory = Path(directory)
    config = _world_model_config(directory)
    files = {"unet": WEIGHTS_NAME, **COMPONENT_FILES}
    parts = {name: _describe_weights(directory / file) for name, file in files.items() if (directory / file).is_file()}
    if "unet" not in parts:
        raise FileNotFoundError(f"{directory / WEIGHTS_NAME}: missing; a world-model directory holds {CONFIG_NAME} "
                                f"and {WEIGHTS_NAME}")
    dtypes: Counter = Counter()
    for part in parts.values():
        dtypes.update(part["dtypes"])
    backbone = config.get("backbone") or DEFAULT_BACKBONE
    unet = config[architecture_key(backbone)]
    space, causal = unet.get("action_space"), unet.get("causal")
    return {"path": str(directory), "format": WORLD_MODEL_FORMAT, "layout": "world-model",
            "dtype": dtypes.most_common(1)[0][0] if dtypes else None, "dtypes": dict(dtypes),
            "parameters": sum(p["parameters"] for p in parts.values()), "parts": parts,
            "backbone": backbone,
            **(_unet_preset(unet) if backbone == DEFAULT_BACKBONE else _wan_preset(unet)),
            "causal": causal,
            "actions": None if space is None else {"kind": space.get("kind"), "width": space.get("dim")},
            "codec": config.get("codec"), "conditioner": config.get("conditioner"), "sampler": config.get("sampler"),
            "schedule": config.get("schedule"), "fps": config.get("fps"),
            "source": (config.get("metadata") or {}).get("source")}


def _world_model_config(directory: Path) -> dict[str, Any]:
    """config.json, checked as `from_pretrained` checks it: inspect describes only models that load."""
    try:
        return check_config(directory / CONFIG_NAME)
    except ValueError as err:
        raise CheckpointError(f"{directory}: not a loadable world model: {err}") from None


def _describe_weights(path: Path) -> dict[str, Any]:
    """Keys, parameters and dtypes of a safetensors file, from its header alone (no tensor is read)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), "pt") as f:
            slices = [f.get_slice(key) for key in f.keys()]
            shapes = [s.get_shape() for s in slices]
            dtypes = Counter(SAFETENSORS_DTYPES.get(s.get_dtype(), s.get_dtype().lower()) for s in slices)
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: unreadable safetensors file ({err})") from err
    return {"file": path.name, "keys": len(shapes), "parameters": sum(math.prod(shape) for shape in shapes),
            "dtypes": dict(dtypes)}


def _unet_preset(unet: Mapping[str, Any]) -> dict[str, Any]:
    """The UNet presets whose architecture the config has, or the nearest one and how it differs."""
    differences = {}
    for name, preset in PRESETS.items():
        want = preset.to_dict()
        # dropout is a training setting, not architecture (a preset's default may be overridden by a run)
        keys = [k for k in want if k in unet and k not in NOT_ARCHITECTURE and "dropout" not in k]
        differences[name] = [f"{k} {unet[k]} (preset: {want[k]})" for k in keys if unet[k] != want[k]]
    matches = sorted(name for name, diffs in differences.items() if not diffs)
    nearest = min(sorted(differences), key=lambda name: len(differences[name]))
    return {"preset": matches[0] if matches else None, "presets": matches,
            "nearest": None if matches else nearest,
            "preset_differences": [] if matches else differences[nearest][:MAX_DIFFERENCES]}


def _wan_preset(architecture: Mapping[str, Any]) -> dict[str, Any]:
    """The Wan presets whose architecture the world model's backbone has."""
    from ..models.wan.config import WAN_PRESETS, WanConfig

    mine = WanConfig.from_dict(architecture).to_diffusers()
    matches = sorted(name for name, preset in WAN_PRESETS.items() if preset.to_diffusers() == mine)
    return {"preset": matches[0] if matches else None, "presets": matches, "nearest": None,
            "preset_differences": []}


def _format_world_model(info: dict[str, Any]) -> str:
    label = "UNet" if info.get("backbone", DEFAULT_BACKBONE) == DEFAULT_BACKBONE else "Wan"
    labels = {**PART_LABELS, "unet": "UNet" if label == "UNet" else "Wan transformer"}
    counts = ", ".join(f"{labels.get(name, name)} {p['parameters']:,}" for name, p in info["parts"].items())
    lines = [f"{info['path']}",
             f"  format {info['format']}, dtype {info['dtype']}, {info['parameters']:,} parameters ({counts})"]
    if info["presets"]:
        lines.append(f"  {label} preset: {', '.join(info['presets'])}")
    elif info["nearest"] is None:
        lines.append(f"  {label} preset: none (a custom architecture)")
    else:
        lines.append(f"  UNet preset: none; nearest {info['nearest']}: " + "; ".join(info["preset_differences"]))
    causal = info["causal"]
    lines.append("  causal: no (full-sequence model)" if causal is None else
                 "  causal: frame-causal attention, KV cache" if label == "Wan" else
                 f"  causal: temporal norm {causal.get('temporal_norm')}, height-causal output conv "
                 f"{'on' if causal.get('out_conv_height_causal') else 'off'}")
    actions = info["actions"]
    lines.append("  actions: none" if actions is None else f"  actions: {actions['kind']}, width {actions['width']}")
    codec = info["codec"] or {}
    lines.append(f"  codec: {codec.get('kind')}" + (f" (scale factor {codec['scale_factor']})"
                                                   if "scale_factor" in codec else ""))
    conditioner = info["conditioner"]
    lines.append(f"  conditioner: {conditioner.get('kind') if conditioner else 'none'}")
    sampler = info["sampler"] or {}
    guidance = sampler.get("guidance") or {}
    lines.append(f"  sampler: {sampler.get('steps')} steps ({sampler.get('spacing')}), eta {sampler.get('eta')}, "
                 f"guidance {guidance.get('scale')}, cache {'on' if sampler.get('cache') else 'off'}")
    source = info["source"]
    if source:
        lines.append(f"  converted from {source.get('path')} ({source.get('kind')}, preset {source.get('preset')})")
    return "\n".join(lines)


def format_inspection(info: dict[str, Any]) -> str:
    """The inspection as a readable report."""
    if info["format"] == WORLD_MODEL_FORMAT:
        return _format_world_model(info)
    if info["format"] == "wan2.1":
        from .wan import format_wan_inspection

        return format_wan_inspection(info)
    lines = [f"{info['path']}",
             f"  format {info['format']}, layout {info['layout']}, dtype {info['dtype']}, {info['keys']} keys, "
             f"{info['parameters']:,} parameters",
             f"  preset: {', '.join(info['presets']) or 'none matches every part (see below)'}"]
    actions = info["actions"]
    lines.append("  actions: none" if actions is None else
                 f"  actions: {actions['kind']}, width {actions['width']} ({actions['key']})")
    ch = info["unet_channels"]
    lines.append(f"  UNet channels: in {ch['in']}, out {ch['out']}")
    for part, p in info["parts"].items():
        fit = ", ".join(p["matches"]) if p["matches"] else \
            f"no preset; nearest {p['nearest']} ({p['differences']} keys differ)"
        lines.append(f"  {PART_LABELS.get(part, part):17s} {p['keys']:5d} keys {p['parameters']:>15,} params "
                     f"{'/'.join(p['dtypes']):9s} preset: {fit}")
        lines += [f"      {d}" for d in p["examples"]]
    if info["other_keys"]:
        lines.append(f"  {len(info['other_keys'])} keys outside the parts (e.g. {', '.join(info['other_keys'][:3])})")
    if info["legacy_renamed"] or info["official_renamed"]:
        lines.append(f"  renamed on load: {info['legacy_renamed']} legacy (framestride_embed), "
                     f"{info['official_renamed']} official causal-conv keys")
    return "\n".join(lines)


__all__ = ["format_inspection", "inspect_checkpoint", "inspect_world_model"]
