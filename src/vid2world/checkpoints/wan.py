"""Wan 2.1 into vid2world: `load_video_model` (any backbone's pretrained file or directory, kind detected) and
`convert_wan` (a Wan transformer + its VAE + a prompt -> a causal world-model directory).

A Wan world model conditions on one fixed prompt: its UMT5 features are computed once here (from a text-encoder
directory, or read from a saved tensor file) and kept in the world model as a `PromptConditioner`; the 5.7B-parameter
text encoder is never loaded at run time. An image-to-video one keeps them in a `WanImageConditioner`,
beside the CLIP image tower its anchor frame's tokens come from (the pipeline's image_encoder/ or
--image-encoder). Sampling is rectified flow (`ScheduleConfig(prediction="flow")`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..causal.keys import is_official_layout, normalize_keys, strip_prefix
from ..causal.wan import WAN_TEMPORAL_COMPRESSION, causalize_wan
from ..diffusion.schedule import ScheduleConfig
from ..models.backbone import Backbone
from ..models.conditioning import PromptConditioner, WanImageConditioner
from ..models.config import ActionSpace
from ..models.wan.codec import WanCodec, load_wan_vae
from ..models.wan.config import WanConfig
from ..models.wan.image import WanImageEncoder
from ..models.wan.layouts import detect_video_model, read_wan_transformer
from ..models.wan.text import PromptFeatures
from ..models.wan.transformer import WanTransformer
from ..world.world_model import SamplerConfig, WorldModel, check_save_target
from .reader import CheckpointError

WAN_SCHEDULE = ScheduleConfig(prediction="flow", zero_terminal_snr=False, dynamic_rescale=None)
WAN_BACKBONE = WanTransformer.kind
WAN_SAMPLE_SHIFT = 5.0  # Wan's sampling timestep shift (its generate.py default; 3 is suggested for 480p)


def load_wan_transformer(path: str | Path) -> WanTransformer:
    """A Wan transformer from its directory (diffusers or Wan's own layout, whole or sharded), weights float32."""
    config, state, _ = read_wan_transformer(path)
    with torch.device("meta"):
        model = WanTransformer(WanConfig.from_diffusers(config))
    model.load_state_dict({k: v.float() for k, v in state.items()}, assign=True)
    return model.eval()


def load_video_model(path: str | Path, trust_pickle: bool = False) -> Backbone:
    """The pretrained video model at `path`: a Wan transformer directory (diffusers or Wan layout) or a
    DynamiCrafter checkpoint / UNet-only file (.ckpt, .pt, .safetensors). Its kind is detected; anything else is
    refused with a one-line error naming the path."""
    from .convert import assigned_unet, fitted_unet_config, nearest_preset_hint, part_differences, split_parts
    from .reader import read_checkpoint
    from .registry import PRETRAINED

    path = Path(path)
    if path.is_dir():
        if detect_video_model(path) == WAN_BACKBONE:
            return load_wan_transformer(path)
        raise CheckpointError(f"{path}: a directory holding no video model vid2world knows; expected a Wan 2.1 "
                              "transformer (config.json + diffusion_pytorch_model*.safetensors, diffusers or Wan "
                              "layout) or a diffusers pipeline around one")
    unet_sd = split_parts(read_checkpoint(path, trust_pickle=trust_pickle))["unet"]
    if is_official_layout(unet_sd):
        raise CheckpointError(f"{path}: a released Vid2World checkpoint (causal already): convert it with "
                              "`vid2world convert --official`")
    sd, _ = normalize_keys(strip_prefix(unet_sd))
    for spec in PRETRAINED.values():
        config = fitted_unet_config(spec.unet, sd)
        if not part_differences(spec, "unet", sd, config):
            return assigned_unet(config, sd).eval()
    raise CheckpointError(f"{path}: its UNet fits no DynamiCrafter preset{nearest_preset_hint('unet', sd)}")


@dataclass(frozen=True)
class WanConversion:
    """What `convert_wan` makes of a Wan checkpoint (the Wan flags of `vid2world convert`)."""

    action_space: ActionSpace | None = None  # one VIDEO frame's; grouped 4 per latent frame
    vae: str | None = None  # Wan2.1_VAE.pth, a diffusers vae/ folder; None: the pipeline directory's vae/
    prompt: str = ""  # the world model's fixed prompt, encoded once by `text_encoder`
    text_encoder: str | None = None  # UMT5 directory; None: the pipeline directory's text_encoder/
    prompt_features: str | None = None  # a saved `prompt_embeds` tensor file instead of an encoder
    image_encoder: str | None = None  # I2V: a CLIPVisionModel folder; None: the pipeline's image_encoder/
    seed: int = 0


def _prompt(base: Path, options: WanConversion) -> PromptFeatures:
    if options.prompt_features is not None:
        return PromptFeatures.from_file(options.prompt_features)
    encoder = options.text_encoder or (base if (base / "text_encoder").is_dir() else None)
    if encoder is None:
        raise CheckpointError(f"{base}: no text encoder for the world model's prompt; give --prompt-features FILE "
                              "(saved UMT5 features) or --text-encoder DIR (a UMT5 encoder with its tokenizer)")
    return PromptFeatures.from_encoder(encoder, options.prompt)


def _image_encoder(base: Path, options: WanConversion, image_dim: int) -> tuple[Path, WanImageEncoder]:
    """The CLIP tower of an image-to-video conversion: --image-encoder, or the pipeline's image_encoder/."""
    path = Path(options.image_encoder) if options.image_encoder else base / "image_encoder"
    if not (path / "config.json").is_file() and not (path / "image_encoder" / "config.json").is_file():
        raise CheckpointError(f"{base}: an image-to-video Wan transformer needs its CLIP image encoder; give "
                              "--image-encoder DIR (a transformers CLIPVisionModel folder, the pipeline's "
                              f"image_encoder/), none at {path}")
    try:
        encoder = WanImageEncoder.from_pretrained(path)
    except ValueError as err:
        raise CheckpointError(str(err)) from None
    if encoder.config.width != image_dim:
        raise CheckpointError(f"{path}: CLIP tokens of width {encoder.config.width}, the transformer's "
                              f"image_dim is {image_dim}")
    return path, encoder.eval()


def convert_wan(path: str | Path, options: WanConversion = WanConversion()) -> tuple[WorldModel, dict[str, Any]]:
    """A causal Wan world model (nothing written) and a report of what was read."""
    base = Path(path)
    transformer = load_wan_transformer(base)
    if transformer.config.pos_embed_seq_len is not None:
        raise CheckpointError(f"{base}: a first-last-frame Wan transformer (pos_embed_seq_len "
                              f"{transformer.config.pos_embed_seq_len}); a world model has no last frame: "
                              "convert a text-to-video or image-to-video checkpoint")
    vae_path = options.vae or (base if (base / "vae").is_dir() else None)
    if vae_path is None:
        raise CheckpointError(f"{base}: no VAE; give --vae (Wan2.1_VAE.pth or a diffusers vae/ folder)")
    codec = WanCodec(load_wan_vae(vae_path))
    features = _prompt(base, options)
    tokens, width = features.embeds.shape
    image_path = None
    if transformer.config.image_to_video:
        image_path, encoder = _image_encoder(base, options, transformer.config.image_dim)
        conditioner: PromptConditioner = WanImageConditioner(tokens, width, encoder)
    else:
        conditioner = PromptConditioner(tokens, width)
    conditioner.set_prompt(features.embeds)
    causal, report = causalize_wan(transformer, options.action_space,
                                   temporal_compression=codec.temporal_compression, seed=options.seed)
    sampler = SamplerConfig(steps=50, spacing="trailing", eta=0.0, history_level="clean", final_alpha_one=True,
                            shift=WAN_SAMPLE_SHIFT)
    metadata = {"source": {"path": str(base), "kind": WAN_BACKBONE, "prompt": features.prompt or options.prompt}}
    model = WorldModel(causal, codec, WAN_SCHEDULE, sampler, conditioner=conditioner, metadata=metadata)
    image = {} if image_path is None else {"image_encoder": str(image_path)}
    return model.eval(), {"path": str(base), "backbone": WAN_BACKBONE, "vae": str(vae_path), **image,
                          "prompt_tokens": features.length, "causalization": report.to_dict()}


def convert_wan_directory(path: str | Path, out: str | Path, options: WanConversion = WanConversion(),
                          overwrite: bool = False) -> dict[str, Any]:
    """`convert_wan`, then the world model saved to `out` atomically with `conversion.json` beside it."""
    check_save_target(out, overwrite, keep=[path])
    model, report = convert_wan(path, options)
    model.save_pretrained(out, extra_files={"conversion.json": json.dumps(report, indent=1)}, overwrite=overwrite)
    return report


def inspect_wan(path: str | Path) -> dict[str, Any]:
    """A JSON-ready description of a Wan transformer or pipeline directory, from its configs and the weight files'
    headers alone (no tensor is read): layout, architecture preset, parameters, the pipeline's other parts."""
    import math

    from ..models.wan.config import WAN_PRESETS
    from ..models.wan.layouts import read_wan_config, transformer_directory, weight_headers

    base = Path(path)
    folder = transformer_directory(base)
    layout, config = read_wan_config(folder / "config.json")
    headers = weight_headers(folder)
    shapes = [shape for keys in headers.values() for shape in keys.values()]
    arch = WanConfig.from_diffusers(config)
    presets = sorted(name for name, preset in WAN_PRESETS.items() if preset.to_diffusers() == arch.to_diffusers())
    pipeline = {part: (base / part).is_dir() for part in ("vae", "text_encoder", "tokenizer", "image_encoder")}
    return {"path": str(base), "format": WAN_BACKBONE, "layout": layout, "presets": presets,
            "task": "image-to-video" if arch.image_to_video else "text-to-video",
            "files": sorted(p.name for p in headers), "keys": len(shapes),
            "parameters": sum(math.prod(s) for s in shapes),
            "architecture": {"layers": arch.num_layers, "heads": arch.num_attention_heads,
                             "width": arch.inner_dim, "ffn": arch.ffn_dim, "in_channels": arch.in_channels,
                             "text_dim": arch.text_dim, "image_dim": arch.image_dim},
            "pipeline_parts": pipeline if (base / "model_index.json").is_file() else None}


def format_wan_inspection(info: dict[str, Any]) -> str:
    a = info["architecture"]
    lines = [info["path"],
             f"  Wan 2.1 transformer ({info['task']}), {info['layout']} layout, {len(info['files'])} weight "
             f"file(s), {info['keys']} keys, {info['parameters']:,} parameters",
             f"  preset: {', '.join(info['presets']) or 'none (a custom architecture)'}",
             f"  {a['layers']} blocks of width {a['width']} ({a['heads']} heads), ffn {a['ffn']}, "
             f"{a['in_channels']} latent channels in, text features {a['text_dim']} wide"
             + (f", CLIP image tokens {a['image_dim']} wide" if a["image_dim"] else "")]
    if info["pipeline_parts"] is not None:
        have = [name for name, present in info["pipeline_parts"].items() if present]
        lines.append(f"  pipeline parts beside it: {', '.join(have) or 'none'}")
    lines.append("  convert: vid2world convert --base DIR --action-dim A --out WORLD_MODEL"
                 + ("" if (info["pipeline_parts"] or {}).get("vae") else " --vae Wan2.1_VAE.pth")
                 + ("" if (info["pipeline_parts"] or {}).get("text_encoder") else " --prompt-features FILE")
                 + ("" if info["task"] == "text-to-video"
                    or (info["pipeline_parts"] or {}).get("image_encoder") else " --image-encoder DIR"))
    return "\n".join(lines)
