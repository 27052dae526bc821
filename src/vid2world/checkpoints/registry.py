"""The pretrained video models vid2world starts from: each part of a DynamiCrafter-layout checkpoint with its
architecture, and the expected key/shape list of every part (built on the meta device, so no weights are needed).

A checkpoint's parts, by state-dict prefix (see `models.checkpoint.PARTS`): the UNet (`model.diffusion_model.`),
the SD VAE (`first_stage_model.`), the OpenCLIP text tower (`cond_stage_model.`) and image tower (`embedder.`), and
the Resampler (`image_proj_model.`). Released Vid2World checkpoints have the same parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import torch
from torch import nn

from ..diffusion.schedule import ScheduleConfig
from ..models.clip import CLIPTextConfig, CLIPVisionConfig, OpenCLIPImageEncoder, OpenCLIPTextEncoder
from ..models.config import UNetConfig
from ..models.resampler import Resampler, ResamplerConfig
from ..models.unet import VideoUNet
from ..models.vae import AutoencoderKL, VAEConfig

PART_NAMES = ("unet", "vae", "text_encoder", "image_encoder", "image_proj")
PART_LABELS = {"unet": "UNet", "vae": "VAE", "text_encoder": "CLIP text tower", "image_encoder": "CLIP image tower",
               "image_proj": "Resampler"}


@dataclass(frozen=True)
class PretrainedConfig:
    """Every part of a DynamiCrafter-layout model, plus how it was trained (schedule, latent scale, fps)."""

    unet: UNetConfig
    vae: VAEConfig = field(default_factory=lambda: VAEConfig.preset("sd"))
    text_encoder: CLIPTextConfig = field(default_factory=lambda: CLIPTextConfig.preset("vit-h-14"))
    image_encoder: CLIPVisionConfig = field(default_factory=lambda: CLIPVisionConfig.preset("vit-h-14"))
    image_proj: ResamplerConfig = field(default_factory=lambda: ResamplerConfig.preset("dynamicrafter"))
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    scale_factor: float = 0.18215  # the release configs' value (method.md 2.1)

    def build(self, part: str, unet: UNetConfig | None = None) -> nn.Module:
        """A freshly initialised module for `part` (under `torch.device("meta")` to get shapes only)."""
        if part == "unet":
            return VideoUNet(unet or self.unet)
        builders = {"vae": lambda: AutoencoderKL(self.vae), "text_encoder": lambda: OpenCLIPTextEncoder(self.text_encoder),
                    "image_encoder": lambda: OpenCLIPImageEncoder(self.image_encoder),
                    "image_proj": lambda: Resampler(self.image_proj)}
        if part not in builders:
            raise ValueError(f"unknown part {part!r}; parts: {PART_NAMES}")
        return builders[part]()

    def shapes(self, part: str, unet: UNetConfig | None = None) -> dict[str, tuple[int, ...]]:
        """Every state-dict key of `part` (without its checkpoint prefix) with its shape."""
        return _shapes(self, part, unet)


@lru_cache(maxsize=64)
def _shapes(config: PretrainedConfig, part: str, unet: UNetConfig | None) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        module = config.build(part, unet)
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


_SD = ScheduleConfig()  # v-prediction, zero terminal SNR, dynamic rescale 0.7 (the 512/1024 configs, Vid2World)
_EPS = ScheduleConfig(zero_terminal_snr=False, prediction="eps", dynamic_rescale=None)  # inference_256_v1.0.yaml

PRETRAINED: dict[str, PretrainedConfig] = {
    "dynamicrafter-256": PretrainedConfig(UNetConfig.preset("dynamicrafter-256"), schedule=_EPS),
    "dynamicrafter-512": PretrainedConfig(UNetConfig.preset("dynamicrafter-512"), schedule=_SD),
    "dynamicrafter-1024": PretrainedConfig(UNetConfig.preset("dynamicrafter-1024"), schedule=_SD),
    # Every part at toy size, same layout: what the tests write as a stand-in for model.ckpt.
    "tiny": PretrainedConfig(UNetConfig.preset("tiny"), vae=VAEConfig.preset("tiny"),
                             text_encoder=CLIPTextConfig.preset("tiny"), image_encoder=CLIPVisionConfig.preset("tiny"),
                             image_proj=ResamplerConfig.preset("tiny"), schedule=_SD),
}


def pretrained_config(name: str, **unet_overrides: Any) -> PretrainedConfig:
    """The named pretrained layout (`dynamicrafter-256|512|1024`, `tiny`), optionally with UNet fields changed."""
    if name not in PRETRAINED:
        raise ValueError(f"unknown preset {name!r}; available: {sorted(PRETRAINED)}")
    config = PRETRAINED[name]
    return replace(config, unet=config.unet.replace(**unet_overrides)) if unet_overrides else config


__all__ = ["PART_LABELS", "PART_NAMES", "PRETRAINED", "PretrainedConfig", "pretrained_config"]
