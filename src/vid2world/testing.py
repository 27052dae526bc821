"""Stand-ins for tests and benchmarks: seeded random weights for any module, random parts of a registered model in
a real checkpoint's key layout, and the writer of a DynamiCrafter-layout `.ckpt` made of them. Nothing in the
library's runtime imports this module."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from .checkpoints.reader import PARTS
from .checkpoints.registry import ModelSpec
from .diffusion.schedule import NoiseSchedule, dynamic_rescale_table
from .io.atomic import atomic_file
from .models.config import UNetConfig


def randomize_weights(model: nn.Module, seed: int = 0) -> nn.Module:
    """Overwrite every parameter with seeded random values, none zero (the official fixtures' recipe):
    weights ~ N(0, 1)/sqrt(fan_in), norm scales 1 + 0.1 N(0, 1), biases 0.1 N(0, 1). Leaves the global RNG alone."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            module_path = name.rsplit(".", 1)[0]
            module = model.get_submodule(module_path) if module_path != name else model
            if isinstance(module, (nn.GroupNorm, nn.LayerNorm)) and name.endswith("weight"):
                value = 1 + 0.1 * noise
            elif name.endswith("bias") or p.ndim == 0:
                value = 0.1 * noise
            else:
                value = noise / math.sqrt(max(1, p[0].numel()))
            p.copy_(value.to(p.dtype))
    return model


def random_parts(config: ModelSpec, seed: int = 0, parts: tuple[str, ...] | None = None,
                 unet: UNetConfig | None = None) -> dict[str, dict[str, torch.Tensor]]:
    """Seeded random weights for each part (no zeros anywhere, so every path matters): stand-ins for a real
    checkpoint's parts, in exactly its key layout."""
    out = {}
    for i, part in enumerate(parts or config.parts):
        module = randomize_weights(config.build(part, unet), seed=seed + i)
        out[part] = {k: v.detach() for k, v in module.state_dict().items()}
    return out


def write_checkpoint(path: str | Path, parts: dict[str, dict[str, torch.Tensor]],
                     extra: dict[str, torch.Tensor] | None = None) -> Path:
    """Write parts as a Lightning `.ckpt` in DynamiCrafter's layout (`state_dict` with each part under its prefix,
    plus un-prefixed `extra` tensors such as the schedule buffers), atomically."""
    path = Path(path)
    state = {PARTS[part] + k: v for part, sd in parts.items() for k, v in sd.items()}
    state.update(extra or {})
    with atomic_file(path) as tmp:
        torch.save({"state_dict": state, "epoch": 0, "global_step": 0}, tmp)
    return path


def schedule_buffers(config: ModelSpec) -> dict[str, torch.Tensor]:
    """A few of the top-level buffers a LatentDiffusion checkpoint carries (not used by vid2world, but present)."""
    cfg = config.schedule
    schedule = NoiseSchedule(cfg)
    out = {"betas": schedule.betas_float64.float(), "alphas_cumprod": schedule.alphas_cumprod}
    if cfg.dynamic_rescale is not None:  # lvdm registers scale_arr only with dynamic rescale
        out["scale_arr"] = dynamic_rescale_table(cfg.dynamic_rescale, cfg.dynamic_rescale_turning_step,
                                                 cfg.num_train_timesteps)
    return out


__all__ = ["random_parts", "randomize_weights", "schedule_buffers", "write_checkpoint"]
