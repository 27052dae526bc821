"""The pretrained video models vid2world starts from: each part of a DynamiCrafter-layout checkpoint with its
architecture, and the expected key/shape list of every part (built on the meta device, so no weights are needed).

A checkpoint's parts, by state-dict prefix (see `models.checkpoint.PARTS`): the UNet (`model.diffusion_model.`),
the SD VAE (`first_stage_model.`), the OpenCLIP text tower (`cond_stage_model.`) and image tower (`embedder.`), and
the Resampler (`image_proj_model.`). Released Vid2World checkpoints have the same parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..diffusion.schedule import ScheduleConfig
from ..io.atomic import atomic_file
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


def random_parts(config: PretrainedConfig, seed: int = 0, parts: tuple[str, ...] = PART_NAMES,
                 unet: UNetConfig | None = None) -> dict[str, dict[str, torch.Tensor]]:
    """Seeded random weights for each part (no zeros anywhere, so every path matters): stand-ins for a real
    checkpoint's parts, in exactly its key layout."""
    from ..causal.diagnostics import randomize_weights

    out = {}
    for i, part in enumerate(parts):
        module = randomize_weights(config.build(part, unet), seed=seed + i)
        out[part] = {k: v.detach() for k, v in module.state_dict().items()}
    return out


def write_checkpoint(path: str | Path, parts: dict[str, dict[str, torch.Tensor]],
                     extra: dict[str, torch.Tensor] | None = None) -> Path:
    """Write parts as a Lightning `.ckpt` in DynamiCrafter's layout (`state_dict` with each part under its prefix,
    plus un-prefixed `extra` tensors such as the schedule buffers), atomically."""
    from ..models.checkpoint import PARTS

    path = Path(path)
    state = {PARTS[part] + k: v for part, sd in parts.items() for k, v in sd.items()}
    state.update(extra or {})
    with atomic_file(path) as tmp:
        torch.save({"state_dict": state, "epoch": 0, "global_step": 0}, tmp)
    return path


def schedule_buffers(config: PretrainedConfig) -> dict[str, torch.Tensor]:
    """A few of the top-level buffers a LatentDiffusion checkpoint carries (not used by vid2world, but present)."""
    from ..diffusion.schedule import NoiseSchedule, dynamic_rescale_table

    cfg = config.schedule
    schedule = NoiseSchedule(cfg)
    out = {"betas": schedule.betas_float64.float(), "alphas_cumprod": schedule.alphas_cumprod}
    if cfg.dynamic_rescale is not None:  # lvdm registers scale_arr only with dynamic rescale
        out["scale_arr"] = dynamic_rescale_table(cfg.dynamic_rescale, cfg.dynamic_rescale_turning_step,
                                                 cfg.num_train_timesteps)
    return out


__all__ = ["PART_LABELS", "PART_NAMES", "PRETRAINED", "PretrainedConfig", "pretrained_config", "random_parts",
           "schedule_buffers", "write_checkpoint"]
