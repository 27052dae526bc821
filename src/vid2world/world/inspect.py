"""`inspect_checkpoint`: what a checkpoint file holds, without building any model.

Format, layout (DynamiCrafter, released Vid2World, UNet-only), per part the key and parameter counts and dtypes,
which preset each part matches (or the nearest one and what differs), the action head, and keys outside the parts.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from ..causal.keys import is_official_layout, normalize_keys
from ..models.checkpoint import read_checkpoint
from ..models.embeddings import action_space_of
from .convert import preset_differences, split_parts
from .pretrained import PART_LABELS, PRETRAINED

MAX_DIFFERENCES = 6  # listed per part for the nearest preset


def inspect_checkpoint(path: str | Path, trust_pickle: bool = False) -> dict[str, Any]:
    """A JSON-ready description of the checkpoint at `path`."""
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


def format_inspection(info: dict[str, Any]) -> str:
    """The inspection as a readable report."""
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


__all__ = ["format_inspection", "inspect_checkpoint"]
