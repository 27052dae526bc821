"""Stand-ins for tests and benchmarks: seeded random weights for any module, random parts of a registered model in
a real checkpoint's key layout, and the writer of a DynamiCrafter-layout `.ckpt` made of them. Nothing in the
library's runtime imports this module."""

from __future__ import annotations

import math
from pathlib import Path
from typing import List
import warnings

import torch
from torch import nn

from .checkpoints.reader import PARTS
from .checkpoints.registry import ModelSpec
from .diffusion.schedule import NoiseSchedule, dynamic_rescale_table
from .io.atomic import atomic_file
from .metrics import lpips as lpips_metric
from .metrics.inception import FIDInceptionV3
from .metrics.weights import WEIGHT_FILES
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


def _save_state(state: dict[str, torch.Tensor], path: Path) -> Path:
    with atomic_file(path) as tmp:
        torch.save(state, tmp)
    return path


def write_lpips_backbone(directory: str | Path, net: str = "vgg", seed: int = 0) -> Path:
    """A random torchvision `features` state dict (torchvision's names and shapes) for an LPIPS backbone, saved
    under the real file's name in `directory` (the classifier keys, 100+ MB of no use to LPIPS, are left out)."""
    features = randomize_weights(lpips_metric.NETS[net].build(), seed=seed)
    state = {f"features.{k}": v.detach().clone() for k, v in features.state_dict().items()}
    return _save_state(state, Path(directory) / WEIGHT_FILES[lpips_metric.NETS[net].weights])


def write_fid_inception(directory: str | Path, seed: int = 0) -> Path:
    """pytorch-fid's FID Inception state dict with seeded random weights (`randomize_weights`; its keys, its shapes:
    ~91 MiB, no `num_batches_tracked`, as older torch wrote), saved as `pt_inception-2015-12-05-6726825d.pth` in
    `directory`. The batch-norm running statistics stay at 0 mean, unit variance."""
    net = randomize_weights(FIDInceptionV3(), seed=seed)
    state = {k: v.detach().clone() for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    return _save_state(state, Path(directory) / WEIGHT_FILES["fid"])


class I3DStandIn(nn.Module):
    """The call signature of StyleGAN-V's I3D TorchScript, `forward(x, rescale, resize, return_features)` -> [B, 400],
    on a tiny seeded projection of pooled pixels. It keeps what it was given (`shapes`, `flags`, `last_input`) so
    a test can check the convention it was called with."""

    # the types of the lists that start empty, as objects: this file's string annotations are opaque to TorchScript
    __annotations__ = {"shapes": List[List[int]], "flags": List[List[bool]]}

    def __init__(self, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.register_buffer("projection", torch.randn(3 * 2 * 4 * 4, 400, generator=gen) / 4)
        self.shapes = []
        self.flags = []
        self.last_input = torch.zeros(0)

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = False) -> torch.Tensor:
        self.shapes.append(list(x.shape))
        self.flags.append([rescale, resize, return_features])
        self.last_input = x.clone()
        v = x.float()
        if rescale:  # what StyleGAN-V's module does with its [0, 255] input
            v = v / 127.5 - 1
        logits = torch.nn.functional.adaptive_avg_pool3d(v, (2, 4, 4)).flatten(1) @ self.projection
        return logits if return_features else logits.softmax(dim=-1)


def write_i3d_standin(directory: str | Path, seed: int = 0) -> Path:
    """An `I3DStandIn`, scripted and saved with torch.jit.save as `i3d_torchscript.pt` in `directory`."""
    path = Path(directory) / WEIGHT_FILES["fvd"]
    with atomic_file(path) as tmp:
        with warnings.catch_warnings():  # the real detector is TorchScript, so the stand-in must be too
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.save(torch.jit.script(I3DStandIn(seed)), str(tmp))
    return path


__all__ = ["I3DStandIn", "random_parts", "randomize_weights", "schedule_buffers", "write_checkpoint",
           "write_fid_inception", "write_i3d_standin", "write_lpips_backbone"]
