"""Wan 2.1 I2V's image tokens for a frame: the penultimate block of the OpenCLIP ViT-H/14 image tower.

Wan's release (wan/modules/clip.py) runs the vision tower of `open-clip-xlm-roberta-large-vit-huge-14` to
its 31st of 32 blocks (`use_31_block=True`); diffusers' `WanImageToVideoPipeline.encode_image` takes
transformers' `CLIPVisionModel` `hidden_states[-2]`: the same tensor, [B, 257, 1280]. The tower is OpenCLIP's
ViT-H/14 (width 1280, 32 pre-norm blocks of 16 heads, patch 14, 224 px, exact GELU, `ln_pre`, no patch bias),
with laion/CLIP-ViT-H-14-laion2B-s32B-b79K's weights, kept frozen while the XLM-RoBERTa text side was trained
(LAION's model card); diffusers' converted Wan I2V pipelines ship that model as `image_encoder/`. So
`WanImageEncoder` is vid2world's OpenCLIP tower (`models.clip`, open_clip parameter names) less what the
penultimate tokens never reach: the last block, `ln_post` and `proj`.

Weights load from a diffusers `image_encoder/` folder (transformers names, mapped by
`open_clip_from_transformers`) or from open_clip names (`from_open_clip`: a DynamiCrafter checkpoint's
`embedder.model.`). Pixels: `processor_pixels` (diffusers: CLIPImageProcessor, shortest edge then centre crop)
or `release_pixels` (Wan's own CLIPModel.visual: stretched to 224 x 224); they agree on 224 x 224 frames.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Mapping

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import Tensor, nn

from ..clip import CLIP_MEAN, CLIP_STD, CLIPVisionConfig, _VisionTransformer


def _uint8_frames(frames: Tensor) -> Tensor:
    """[B, 3, H, W] uint8 as is; float in [-1, 1] rounded to uint8 as diffusers makes a PIL image of it."""
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"frames must be [B, 3, H, W], got {list(frames.shape)}")
    if frames.dtype == torch.uint8:
        return frames
    if not frames.is_floating_point():
        raise ValueError(f"frames must be uint8 or float in [-1, 1], got {frames.dtype}")
    return ((frames.double() / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)


def _normalise(x: Tensor) -> Tensor:
    """[0, 1] -> CLIP's mean and std, in float32."""
    mean = torch.tensor(CLIP_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return ((x - mean) / std).float()


def processor_pixels(frames: Tensor, size: int = 224) -> Tensor:
    """CLIPImageProcessor's pixels (its PIL backend: what diffusers' Wan I2V runs without torchvision):
    shortest edge to `size` with PIL's bicubic, centre crop `size` x `size`, /255, CLIP mean and std.

    PIL resizes uint8 in two passes (width, then height), rounding to uint8 after each; so does this, in
    float64 with torch's antialiased bicubic (PIL's filter). PIL's fixed-point weights still move about one
    value in 10^4 by one level. (With torchvision, transformers 5 resizes in one float pass instead.)"""
    x = _uint8_frames(frames).double()
    h, w = x.shape[-2:]
    longer = int(size * max(h, w) / min(h, w))  # transformers truncates
    out_h, out_w = (longer, size) if w <= h else (size, longer)
    for target in ((h, out_w), (out_h, out_w)):
        if tuple(x.shape[-2:]) != target:
            x = F.interpolate(x, size=target, mode="bicubic", antialias=True, align_corners=False)
            x = (x + 0.5).floor().clamp(0, 255)  # PIL rounds half up, then clips
    top, left = (out_h - size) // 2, (out_w - size) // 2
    return _normalise(x[..., top:top + size, left:left + size] / 255)


def release_pixels(frames: Tensor, size: int = 224) -> Tensor:
    """Wan release's `CLIPModel.visual` pixels: frames in [-1, 1] stretched to `size` x `size` (bicubic, no
    antialiasing, no crop), mapped to [0, 1], CLIP mean and std. uint8 frames are first mapped to [-1, 1]."""
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"frames must be [B, 3, H, W], got {list(frames.shape)}")
    x = frames.float() / 127.5 - 1 if frames.dtype == torch.uint8 else frames.float()
    x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False)
    return _normalise(x * 0.5 + 0.5)


PREPROCESS = {"diffusers": processor_pixels, "release": release_pixels}


class WanImageEncoder(nn.Module):
    """The OpenCLIP vision tower up to its penultimate block; state-dict keys `visual.*` (open_clip names)."""

    def __init__(self, config: CLIPVisionConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or CLIPVisionConfig()
        if c.layers < 2:
            raise ValueError(f"the tower needs >= 2 layers for a penultimate output, got {c.layers}")
        self.visual = _VisionTransformer(dataclasses.replace(c, layers=c.layers - 1))
        del self.visual.ln_post, self.visual.proj

    def forward(self, pixels: Tensor) -> Tensor:
        """CLIP-normalised pixels [B, 3, S, S] -> the penultimate block's tokens [B, 1 + (S/patch)^2, width]
        (transformers' CLIPVisionModel `hidden_states[-2]`)."""
        c, v = self.config, self.visual
        if pixels.ndim != 4 or tuple(pixels.shape[1:]) != (3, c.image_size, c.image_size):
            raise ValueError(f"pixels must be [B, 3, {c.image_size}, {c.image_size}], "
                             f"got {list(pixels.shape)}")
        x = v.conv1(pixels.to(v.conv1.weight.dtype)).flatten(2).transpose(1, 2)
        cls = v.class_embedding.expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + v.positional_embedding
        return v.transformer(v.ln_pre(x))

    def encode(self, frames: Tensor, preprocess: str = "diffusers") -> Tensor:
        """Frames [B, 3, H, W] (uint8, or float in [-1, 1]) -> image tokens; pixels as `preprocess` says."""
        if preprocess not in PREPROCESS:
            raise ValueError(f"preprocess must be one of {sorted(PREPROCESS)}, got {preprocess!r}")
        return self(PREPROCESS[preprocess](frames, self.config.image_size))

    def load_open_clip(self, state: Mapping[str, Tensor], prefix: str = "", source: str = "state dict"
                       ) -> None:
        """Load the `{prefix}visual.*` tensors of an open_clip state dict (others, the last block, `ln_post`
        and `proj` ignored); ValueError naming `source` and a key that is missing or has the wrong shape."""
        own = self.state_dict()
        for key, expected in own.items():
            name = f"{prefix}{key}"
            if name not in state:
                raise ValueError(f"{source}: no {name!r} (an OpenCLIP vision tower with {self.config.layers} "
                                 f"layers of width {self.config.width})")
            if tuple(state[name].shape) != tuple(expected.shape):
                raise ValueError(f"{source}: {name!r} has shape {list(state[name].shape)}, "
                                 f"expected {list(expected.shape)}")
        self.load_state_dict({k: state[f"{prefix}{k}"] for k in own}, strict=True)

    @classmethod
    def from_open_clip(cls, state: Mapping[str, Tensor], config: CLIPVisionConfig | None = None,
                       prefix: str = "", source: str = "state dict") -> "WanImageEncoder":
        """From open_clip names, e.g. prefix `embedder.model.` for a DynamiCrafter checkpoint's tower."""
        encoder = cls(config)
        encoder.load_open_clip(state, prefix, source)
        return encoder

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> "WanImageEncoder":
        """From a transformers CLIPVisionModel(WithProjection) folder: a diffusers Wan I2V `image_encoder/`,
        or the pipeline folder holding it (config.json + model.safetensors, or shards and their index)."""
        root = Path(directory)
        folder = root / "image_encoder" if (root / "image_encoder" / "config.json").is_file() else root
        config = config_from_transformers(_read_json(folder / "config.json"), str(folder / "config.json"))
        state = open_clip_from_transformers(_read_weights(folder), config.layers - 1, str(folder))
        return cls.from_open_clip(state, config, source=str(folder))


def config_from_transformers(config: Mapping, source: str = "config.json") -> CLIPVisionConfig:
    """A transformers CLIP vision config (or a full CLIP config's `vision_config`) as `CLIPVisionConfig`;
    ValueError naming `source` for one this tower cannot run (another activation, LayerNorm eps, channels)."""
    c = config.get("vision_config", config) if config.get("model_type") == "clip" else config
    if c.get("model_type", "clip_vision_model") != "clip_vision_model":
        raise ValueError(f"{source}: model_type {c.get('model_type')!r}, expected 'clip_vision_model'")
    # what open_clip's ViT-H/14 runs, against transformers' defaults where the file leaves one out
    for key, expected, default in (("hidden_act", "gelu", "quick_gelu"), ("layer_norm_eps", 1e-5, 1e-5),
                                   ("num_channels", 3, 3)):
        if c.get(key, default) != expected:
            raise ValueError(f"{source}: {key} is {c.get(key, default)!r}; this OpenCLIP tower runs only "
                             f"{expected!r}")
    try:
        width, hidden = int(c["hidden_size"]), int(c["intermediate_size"])
        config = CLIPVisionConfig(image_size=int(c["image_size"]), patch_size=int(c["patch_size"]),
                                  width=width, heads=int(c["num_attention_heads"]),
                                  layers=int(c["num_hidden_layers"]), mlp_ratio=hidden / width,
                                  embed_dim=int(c.get("projection_dim", 1024)))
    except KeyError as err:
        raise ValueError(f"{source}: no {err.args[0]!r} (a transformers CLIP vision config)") from err
    if int(width * config.mlp_ratio) != hidden:  # the blocks size their MLP as int(width * mlp_ratio)
        raise ValueError(f"{source}: intermediate_size {hidden} is not a float multiple of width {width}")
    return config


def open_clip_from_transformers(state: Mapping[str, Tensor], layers: int, source: str = "state dict"
                                ) -> dict[str, Tensor]:
    """transformers CLIPVisionModel tensors -> open_clip `visual.*` names for the first `layers` blocks; q/k/v
    packed into `in_proj_*` in that order (nn.MultiheadAttention's layout). Names with `vision_model.` (saved
    by CLIPVisionModelWithProjection, or by transformers 4) or without (CLIPVisionModel in transformers 5)."""
    p = "vision_model." if "vision_model.embeddings.class_embedding" in state else ""
    top = {"embeddings.class_embedding": "class_embedding",
           "embeddings.patch_embedding.weight": "conv1.weight",
           "embeddings.position_embedding.weight": "positional_embedding",
           "pre_layrnorm.weight": "ln_pre.weight", "pre_layrnorm.bias": "ln_pre.bias"}
    block = {"self_attn.out_proj": "attn.out_proj", "layer_norm1": "ln_1", "layer_norm2": "ln_2",
             "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}

    def get(name: str) -> Tensor:
        if p + name not in state:
            raise ValueError(f"{source}: no {p + name!r} (a transformers CLIP vision model with "
                             f">= {layers + 1} layers)")
        return state[p + name]

    out = {f"visual.{new}": get(old) for old, new in top.items()}
    for i in range(layers):
        src, dst = f"encoder.layers.{i}.", f"visual.transformer.resblocks.{i}."
        for kind in ("weight", "bias"):
            qkv = [get(f"{src}self_attn.{q}_proj.{kind}") for q in "qkv"]
            out[f"{dst}attn.in_proj_{kind}"] = torch.cat(qkv)
            out.update({f"{dst}{new}.{kind}": get(f"{src}{old}.{kind}") for old, new in block.items()})
    return out


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: no readable config ({err})") from err


def _read_weights(folder: Path) -> dict[str, Tensor]:
    """model.safetensors, or the shards model.safetensors.index.json names."""
    single, index = folder / "model.safetensors", folder / "model.safetensors.index.json"
    if single.is_file():
        return load_file(str(single))
    if index.is_file():
        files = sorted(set(_read_json(index).get("weight_map", {}).values()))
        return {k: v for name in files for k, v in load_file(str(folder / name)).items()}
    raise ValueError(f"{folder}: no model.safetensors or model.safetensors.index.json (CLIP vision "
                     "weights)")


__all__ = ["WanImageEncoder", "config_from_transformers", "open_clip_from_transformers", "processor_pixels",
           "release_pixels", "PREPROCESS"]
