"""`convert_checkpoint`: a pretrained video model's checkpoint -> a `WorldModel` directory, in one call.

Three kinds of input:
- a DynamiCrafter `model.ckpt` (every part): the UNet is causalized with the chosen weight transfer and norm mode and
  gets action layers; the VAE becomes the codec; the CLIP image tower and Resampler become the conditioner, and the
  text tower is run once on the empty prompt and then dropped;
- a released Vid2World checkpoint (`official=True`): the same parts, the UNet already causal (no transfer), its
  official quirks kept (clip norm, height-causal output conv) so outputs match the official code;
- a UNet-only state dict (VideoUNet keys, with or without `model.diffusion_model.`): pixel-space models.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor

from ..causal.convert import causalize
from ..causal.keys import OFFICIAL_CONV_KEY, is_official_layout, normalize_keys, strip_prefix
from ..diffusion.schedule import ScheduleConfig
from ..models.codec import IdentityCodec, LatentCodec
from ..models.conditioning import ImageConditioner
from ..models.config import TEMPORAL_NORM_MODES, ActionSpace, CausalConfig, UNetConfig
from ..models.embeddings import action_space_of
from ..models.unet import VideoUNet
from ..models.validation import state_dict_differences
from ..world.world_model import SamplerConfig, WorldModel, check_save_target
from .reader import PARTS, Checkpoint, CheckpointError, read_checkpoint
from .registry import PART_LABELS, PRETRAINED, ModelSpec, model_spec

ACTION_KEYS = ("action_emb_proj.", "action_emb_preprocess.")


@dataclass(frozen=True)
class ConvertOptions:
    """What `convert_checkpoint` makes of a checkpoint (the flags of `vid2world convert`)."""

    preset: str = "dynamicrafter-512"
    transfer: str = "extrapolative"  # ignored for official checkpoints (already transferred)
    norm: str | None = None  # temporal norm; None: "frame" (base models) or "clip" (official checkpoints)
    action_space: ActionSpace | None = None  # None: the checkpoint's own (official), or no actions
    official: bool = False
    out_conv_height_causal: bool | None = None  # None: True for official checkpoints, False otherwise
    fps: int = 3  # Vid2World's frame-rate condition for every dataset
    seed: int = 0  # initialisation of new action layers
    trust_pickle: bool = False
    unet_config: UNetConfig | None = None  # the UNet's architecture when it is no preset's (UNet-only files)
    schedule: ScheduleConfig | None = None  # None: the preset's

    def __post_init__(self) -> None:
        if self.preset not in PRETRAINED:
            raise ValueError(f"unknown preset {self.preset!r}; available: {sorted(PRETRAINED)}")
        if self.norm is not None and self.norm not in TEMPORAL_NORM_MODES:
            raise ValueError(f"norm must be one of {TEMPORAL_NORM_MODES}, got {self.norm!r}")


@dataclass
class ConversionReport:
    source: str
    format: str
    kind: str  # "dynamicrafter" | "vid2world" | "unet"
    preset: str
    parts: dict[str, int] = field(default_factory=dict)  # part -> number of keys converted
    ignored: list[str] = field(default_factory=list)  # keys not used (schedule buffers and the like)
    renamed: dict[str, str] = field(default_factory=dict)
    causalization: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        parts = ", ".join(f"{PART_LABELS.get(p, p)} {n} keys" for p, n in self.parts.items())
        lines = [f"{self.source}: {self.kind} checkpoint ({self.format}), preset {self.preset}: {parts}"]
        if self.causalization:
            c = self.causalization
            lines.append(f"causalized: transfer={c['transfer']} temporal_norm={c['temporal_norm']}, "
                         f"{len(c['transferred'])} kernels transferred, {len(c['new'])} new keys")
        if self.ignored:
            lines.append(f"ignored {len(self.ignored)} keys outside the parts (e.g. {self.ignored[0]})")
        return "\n".join(lines)


def convert_checkpoint(path: str | Path, options: ConvertOptions = ConvertOptions()
                       ) -> tuple[WorldModel, ConversionReport]:
    """Read `path` and build the world model it describes (nothing is written)."""
    ckpt = read_checkpoint(path, trust_pickle=options.trust_pickle)
    parts = split_parts(ckpt)
    preset = model_spec(options.preset)
    unet_sd, kind = parts.pop("unet"), "unet"
    official = is_official_layout(unet_sd)
    if official and not options.official:
        key = next(k for k in unet_sd if OFFICIAL_CONV_KEY.search(k))
        raise CheckpointError(f"{ckpt.path}: a released Vid2World checkpoint (key {_full('unet', key)!r} is a causal "
                              "conv): convert it with --official (official=True); it needs no weight transfer")
    if options.official and not official:
        raise CheckpointError(f"{ckpt.path}: not a released Vid2World checkpoint (no '.conv3d.' causal-conv keys); "
                              "convert DynamiCrafter checkpoints without --official")
    if "vae" in parts or "image_proj" in parts:
        kind = "vid2world" if official else "dynamicrafter"
    unet, report_c, renamed = _convert_unet(ckpt.path, unet_sd, preset, options, official)
    report = ConversionReport(str(ckpt.path), ckpt.format, kind, options.preset,
                              parts={"unet": len(unet_sd)}, ignored=sorted(parts.pop("other", {})),
                              renamed={**ckpt.renamed, **renamed},
                              causalization=None if report_c is None else report_c.to_dict())
    codec, conditioner = _convert_conditioning(ckpt.path, parts, preset, unet.config, report)
    sampler = SamplerConfig(cache=unet.config.strictly_causal)
    metadata = {"source": {"path": str(ckpt.path), "format": ckpt.format, "kind": kind, "preset": options.preset},
                "conversion": {k: v for k, v in report.to_dict().items() if k not in ("renamed", "ignored")}}
    model = WorldModel(unet.eval(), codec, options.schedule or preset.schedule, sampler, fps=options.fps, conditioner=conditioner,
                       metadata=metadata)
    return model.eval(), report


def convert(path: str | Path, out: str | Path, options: ConvertOptions = ConvertOptions(),
            overwrite: bool = False) -> ConversionReport:
    """`convert_checkpoint`, then save the world model to `out` atomically, with `conversion.json` beside it.

    `out` is checked before the (long) conversion: it must be new or empty, or a world model to replace with
    `overwrite`, and never a directory that holds the input file."""
    check_save_target(out, overwrite, keep=[path])
    model, report = convert_checkpoint(path, options)
    model.save_pretrained(out, extra_files={"conversion.json": json.dumps(report.to_dict(), indent=1)},
                          overwrite=overwrite)
    return report


# ---- parts -------------------------------------------------------------------------------------------------------
def load_unet_config(path: str | Path) -> tuple[UNetConfig, ScheduleConfig | None]:
    """A UNet architecture from JSON: a `UNetConfig` dict, or a world-model `config.json` (its `unet`, and its
    `schedule` too)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read a UNet config ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object (a UNetConfig, or a world-model config.json)")
    schedule = ScheduleConfig.from_dict(data["schedule"]) if "schedule" in data else None
    try:
        return UNetConfig.from_dict(data.get("unet", data)), schedule
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: not a UNet config ({err})") from None


def split_parts(ckpt: Checkpoint) -> dict[str, dict[str, Tensor]]:
    """`ckpt.parts()`, with a bare UNet state dict (no prefixes) taken as the UNet."""
    parts = ckpt.parts()
    if "unet" not in parts:
        bare = parts.get("other", {})
        if "time_embed.0.weight" not in bare:
            raise CheckpointError(f"{ckpt.path}: no UNet weights: expected keys under {PARTS['unet']!r} (a "
                                  "DynamiCrafter / Vid2World checkpoint) or bare VideoUNet keys such as "
                                  "'time_embed.0.weight'")
        parts["unet"] = parts.pop("other")
    return parts


def _full(part: str, key: str) -> str:
    return PARTS.get(part, "") + key


def _check_part(path: Path, part: str, state: Mapping[str, Tensor], expected: Mapping[str, tuple[int, ...]],
                preset: str) -> None:
    """Raise naming the file, the first offending key, and the preset the part looks like."""
    missing, unexpected, wrong = state_dict_differences(expected, state)
    if not (missing or unexpected or wrong):
        return
    against = f"preset {preset!r}" if preset in PRETRAINED else preset
    if wrong:
        k, found, want = wrong[0]
        first = f"key {_full(part, k)!r} has shape {list(found)}, {against} expects {list(want)}"
    elif missing:
        first = f"key {_full(part, missing[0])!r} is missing"
    else:
        first = f"key {_full(part, unexpected[0])!r} is not part of {against}"
    counts = f"{len(missing)} missing, {len(unexpected)} unexpected, {len(wrong)} mis-shaped"
    hint = nearest_preset_hint(part, state, exclude=preset)
    raise CheckpointError(f"{path}: the {PART_LABELS[part]} does not fit {against}: {first} ({counts}){hint}")


def part_differences(config: ModelSpec, part: str, state: Mapping[str, Tensor],
                     unet: UNetConfig | None = None) -> list[str]:
    """How `state` differs from `part` of `config`, one line per key (empty: an exact fit)."""
    missing, unexpected, wrong = state_dict_differences(config.shapes(part, unet), state)
    return ([f"missing {k}" for k in missing] + [f"unexpected {k}" for k in unexpected]
            + [f"{k}: {list(found)} vs {list(want)}" for k, found, want in wrong])


def preset_differences(part: str, state: Mapping[str, Tensor]) -> dict[str, list[str]]:
    """For every preset, how `state` differs from its `part` (an empty list: an exact fit). A UNet is compared
    with its channels and action layers taken from the file (`fitted_unet_config`)."""
    return {name: part_differences(config, part, state,
                                   fitted_unet_config(config.unet, state) if part == "unet" else None)
            for name, config in PRETRAINED.items()}


def fitted_unet_config(config: UNetConfig, state: Mapping[str, Tensor]) -> UNetConfig:
    """`config` with what a UNet state dict fixes outside the architecture: input/output channels (pixel or latent,
    with or without the first-frame concat) and the action layers."""
    space = action_space_of(state)[0]
    if space and config.action_space and (space.kind, space.dim) == (config.action_space.kind, config.action_space.dim):
        space = config.action_space  # keeps the config's action names
    changes: dict[str, Any] = {"action_space": space}
    if "input_blocks.0.0.weight" in state:
        changes["in_channels"] = int(state["input_blocks.0.0.weight"].shape[1])
    if "out.2.weight" in state:
        changes["out_channels"] = int(state["out.2.weight"].shape[0])
    return config.replace(**changes)


def nearest_preset_hint(part: str, state: Mapping[str, Tensor], exclude: str | None = None) -> str:
    """'; it looks like preset X' (or the nearest one and how far), for error messages."""
    best, name = min((len(diffs), name) for name, diffs in preset_differences(part, state).items())
    if name == exclude:
        return ""
    return f"; it looks like preset {name!r}" if best == 0 else f"; the nearest preset is {name!r} ({best} keys differ)"


def _convert_unet(path: Path, unet_sd: dict[str, Tensor], preset: ModelSpec, options: ConvertOptions,
                  official: bool):
    file_space, action_key = action_space_of(unet_sd)
    wanted = options.action_space
    if file_space is not None and wanted is not None and (wanted.kind, wanted.dim) != (file_space.kind, file_space.dim):
        raise CheckpointError(f"{path}: key {_full('unet', action_key)!r} holds a {file_space.kind} action head of "
                              f"width {file_space.dim} ({list(unet_sd[action_key].shape)}), but the action space "
                              f"asked for is {wanted.kind} of width {wanted.dim}")
    architecture = options.unet_config or preset.unet
    name = "the given UNet config" if options.unet_config else options.preset
    sd, renamed = normalize_keys(strip_prefix(unet_sd))  # official causal-conv names too; values untouched
    config = fitted_unet_config(architecture, sd)
    if official:  # causal already, trained with the official quirks
        config = config.replace(causal=CausalConfig(options.norm or "clip", out_conv_height_causal=True
                                                    if options.out_conv_height_causal is None
                                                    else options.out_conv_height_causal))
    _check_part(path, "unet", sd, preset.shapes("unet", config), name)
    unet = assigned_unet(config, sd)
    if config.causal is not None:  # official, or a causal VideoUNet already (e.g. one we trained): no transfer
        return unet, None, renamed
    causal, report = causalize(unet, options.transfer, options.norm or "frame",
                               None if file_space is not None else wanted,
                               out_conv_height_causal=bool(options.out_conv_height_causal), seed=options.seed)
    return causal, report, renamed


def assigned_unet(config: UNetConfig, state: Mapping[str, Tensor]) -> VideoUNet:
    """A VideoUNet holding `state`'s tensors themselves (float32), not copies: a full-size UNet is 5.8 GB, and the
    checkpoint's tensors are memory-mapped already. VideoUNet has no buffers, so nothing is left on the meta device."""
    with torch.device("meta"):
        unet = VideoUNet(config)
    unet.load_state_dict({k: v.float() for k, v in state.items()}, assign=True)
    return unet


def _convert_conditioning(path: Path, parts: dict[str, dict[str, Tensor]], preset: ModelSpec,
                          unet: UNetConfig, report: ConversionReport):
    """The codec (VAE or pixels) and the conditioner (CLIP image tower + Resampler + cached empty prompt)."""
    if unet.out_channels == 3:  # RGB out: a pixel-space model
        extra = sorted(p for p in parts if p in PART_LABELS)
        if extra:
            raise CheckpointError(f"{path}: a pixel-space UNet (out_channels 3) with {extra} parts; expected a "
                                  "latent UNet for a full checkpoint")
        return IdentityCodec(unet.out_channels), None
    needed = ["vae"] + (["text_encoder", "image_encoder", "image_proj"] if unet.context_dim else [])
    for part in needed:
        if part not in parts:
            raise CheckpointError(f"{path}: the {PART_LABELS[part]} is missing (no keys under {PARTS[part]!r}); a "
                                  f"latent UNet with out_channels {unet.out_channels} needs it. Give the full "
                                  "checkpoint, or a UNet-only file for a pixel-space model")
        _check_part(path, part, parts[part], preset.shapes(part), report.preset)
        report.parts[part] = len(parts[part])
    codec = LatentCodec(preset.vae, scale_factor=preset.scale_factor)
    codec.vae.load_state_dict(parts["vae"])
    if not unet.context_dim:
        return codec, None
    text_encoder = preset.build("text_encoder")
    text_encoder.load_state_dict(parts["text_encoder"])
    conditioner = ImageConditioner(preset.image_encoder, preset.image_proj, preset.text_encoder.context_length)
    conditioner.image_encoder.load_state_dict(parts["image_encoder"])
    conditioner.image_proj.load_state_dict(parts["image_proj"])
    with torch.no_grad():
        conditioner.set_text(text_encoder.eval().encode_empty(1))
    return codec, conditioner


__all__ = ["ConversionReport", "ConvertOptions", "convert", "convert_checkpoint", "fitted_unet_config", "load_unet_config",
           "nearest_preset_hint", "part_differences", "preset_differences", "split_parts"]
