"""The one model registry: a name -> every part of that model (`ModelSpec`), so a name means one model everywhere
(`vid2world train` `model.preset`, `convert --preset`, the benchmarks, the tests' stand-in checkpoints).

Each spec's UNet is the `models.config` UNet preset of the same name (`UNetConfig.preset(name)`); the spec adds the
codec (the SD VAE and its latent scale, or pixel space), the conditioning encoders, the noise schedule, the
frame-rate condition and the sampler a fresh world model starts with. The DynamiCrafter-layout ones (`PRETRAINED`)
are the checkpoints `convert` reads. A checkpoint's parts, by state-dict prefix (see `checkpoints.reader.PARTS`): the
UNet (`model.diffusion_model.`), the SD VAE (`first_stage_model.`), the OpenCLIP text tower (`cond_stage_model.`)
and image tower (`embedder.`), and the Resampler (`image_proj_model.`). Released Vid2World checkpoints have the same
parts. Expected key/shape lists are built on the meta device, so no weights are needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import torch
from torch import nn

from ..diffusion.schedule import ScheduleConfig
from ..models.clip import CLIPTextConfig, CLIPVisionConfig, OpenCLIPImageEncoder, OpenCLIPTextEncoder
from ..models.codec import IdentityCodec, LatentCodec
from ..models.conditioning import ImageConditioner
from ..models.config import UNetConfig
from ..models.resampler import Resampler, ResamplerConfig
from ..models.unet import VideoUNet
from ..models.vae import AutoencoderKL, VAEConfig
from ..world.world_model import SamplerConfig, WorldModel

PART_NAMES = ("unet", "vae", "text_encoder", "image_encoder", "image_proj")
PART_LABELS = {"unet": "UNet", "vae": "VAE", "text_encoder": "CLIP text tower", "image_encoder": "CLIP image tower",
               "image_proj": "Resampler"}


@dataclass(frozen=True)
class ModelSpec:
    """One named model: its UNet, codec (`vae`; None: pixel space), conditioning encoders (None: no cross-attention
    context), how it was trained (schedule, latent scale, fps) and the sampler its world models start with."""

    unet: UNetConfig
    vae: VAEConfig | None = None
    text_encoder: CLIPTextConfig | None = None
    image_encoder: CLIPVisionConfig | None = None
    image_proj: ResamplerConfig | None = None
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    scale_factor: float = 0.18215  # the release configs' value (method.md 2.1)
    fps: int | None = None  # the frame-rate condition of its world models; None: the UNet's default
    sampler: SamplerConfig = field(default_factory=SamplerConfig)

    @property
    def parts(self) -> tuple[str, ...]:
        """The parts this model has, in checkpoint order."""
        return tuple(part for part in PART_NAMES if part == "unet" or getattr(self, part) is not None)

    def build(self, part: str, unet: UNetConfig | None = None) -> nn.Module:
        """A freshly initialised module for `part` (under `torch.device("meta")` to get shapes only)."""
        if part == "unet":
            return VideoUNet(unet or self.unet)
        builders = {"vae": AutoencoderKL, "text_encoder": OpenCLIPTextEncoder, "image_encoder": OpenCLIPImageEncoder,
                    "image_proj": Resampler}
        if part not in builders or getattr(self, part) is None:
            raise ValueError(f"unknown part {part!r}; this model's parts: {self.parts}")
        return builders[part](getattr(self, part))

    def shapes(self, part: str, unet: UNetConfig | None = None) -> dict[str, tuple[int, ...]]:
        """Every state-dict key of `part` (without its checkpoint prefix) with its shape."""
        return _shapes(self, part, unet)

    def world_model(self, unet: UNetConfig | None = None) -> WorldModel:
        """A world model of this spec with freshly initialised weights (`unet`: this spec's UNet with changes, such
        as the causal settings and action space of a run). The empty prompt's text tokens are random stand-ins."""
        net = VideoUNet(unet or self.unet)
        codec = (LatentCodec(self.vae, scale_factor=self.scale_factor) if self.vae
                 else IdentityCodec(net.config.out_channels))
        conditioner = None
        if net.config.context_dim and self.image_encoder and self.image_proj and self.text_encoder:
            conditioner = ImageConditioner(self.image_encoder, self.image_proj, self.text_encoder.context_length)
            with torch.no_grad():
                conditioner.set_text(torch.randn(conditioner.empty_text.shape) * 0.5)
        sampler = replace(self.sampler, cache=net.config.strictly_causal)  # an exact cache needs a causal UNet
        return WorldModel(net, codec, self.schedule, sampler, fps=self.fps, conditioner=conditioner)


@lru_cache(maxsize=64)
def _shapes(config: ModelSpec, part: str, unet: UNetConfig | None) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        module = config.build(part, unet)
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


_SD = ScheduleConfig()  # v-prediction, zero terminal SNR, dynamic rescale 0.7 (the 512/1024 configs, Vid2World)
_EPS = ScheduleConfig(zero_terminal_snr=False, prediction="eps", dynamic_rescale=None)  # inference_256_v1.0.yaml


def _dynamicrafter(name: str, schedule: ScheduleConfig, vae: str = "sd", clip: str = "vit-h-14",
                   resampler: str = "dynamicrafter") -> ModelSpec:
    """A DynamiCrafter-layout latent model: the UNet preset `name`, the SD VAE, OpenCLIP towers and Resampler."""
    return ModelSpec(UNetConfig.preset(name), VAEConfig.preset(vae), CLIPTextConfig.preset(clip),
                     CLIPVisionConfig.preset(clip), ResamplerConfig.preset(resampler), schedule=schedule, fps=3)


MODELS: dict[str, ModelSpec] = {
    "dynamicrafter-256": _dynamicrafter("dynamicrafter-256", _EPS),
    "dynamicrafter-512": _dynamicrafter("dynamicrafter-512", _SD),
    "dynamicrafter-1024": _dynamicrafter("dynamicrafter-1024", _SD),
    # Every part at toy size, same layout: what the tests write as a stand-in for model.ckpt.
    "tiny": _dynamicrafter("tiny", _SD, vae="tiny", clip="tiny", resampler="tiny"),
    # Pixel-space models for our own small simulators: the UNet alone, RGB in and out.
    "pixel-tiny": ModelSpec(UNetConfig.preset("pixel-tiny")),
    "pixel-64": ModelSpec(UNetConfig.preset("pixel-64")),
    # Latent-space UNet of the bundled models (docs/zoo.md): its codec is their own autoencoder, saved with the model.
    "latent-small": ModelSpec(UNetConfig.preset("latent-small")),
}
# The registry's DynamiCrafter-layout models: the checkpoints `convert` reads and `testing.write_checkpoint` writes.
PRETRAINED: dict[str, ModelSpec] = {name: spec for name, spec in MODELS.items() if spec.vae is not None}


def model_spec(name: str, **unet_overrides: Any) -> ModelSpec:
    """The named model (`dynamicrafter-256|512|1024`, `tiny`, `pixel-tiny`, `pixel-64`), optionally with UNet fields
    changed."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; available: {sorted(MODELS)}")
    spec = MODELS[name]
    return replace(spec, unet=spec.unet.replace(**unet_overrides)) if unet_overrides else spec


__all__ = ["MODELS", "ModelSpec", "PART_LABELS", "PART_NAMES", "PRETRAINED", "model_spec"]
