"""Mixed precision, one context named by the same strings as `train.precision`: the in-memory training loops
and the world model's sampling presets (bf16 autocast around the UNet, the sampler's arithmetic in float32)."""

from __future__ import annotations

import contextlib
import copy

import torch
from torch import nn

PRECISIONS = ("fp32", "bf16")


def autocast(precision: str, device: torch.device | str):
    """bf16 autocast on `device` (CPUs with AVX-512 BF16 run matmuls and convs ~3x faster), or nothing for fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


# the layers whose weights and biases autocast casts to bf16 at every call (norms keep float32 parameters)
CAST_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def autocast_weights(module: nn.Module) -> nn.Module:
    """An eval-mode copy of `module` whose linear and conv weights and biases are already bf16: under bf16 autocast
    it computes exactly what `module` does (autocast rounds the same weights the same way at every call) without
    casting every weight again on every frame. Norm layers keep their float32 parameters."""
    lowered = copy.deepcopy(module).eval()
    for layer in lowered.modules():
        if isinstance(layer, CAST_LAYERS):
            for name in ("weight", "bias"):
                p = getattr(layer, name)
                if p is not None:
                    setattr(layer, name, nn.Parameter(p.detach().to(torch.bfloat16), requires_grad=False))
    return lowered


def weights_version(module: nn.Module) -> tuple[int, ...]:
    """Changes whenever a parameter of `module` is replaced, moved or updated in place (optimizer steps, loading)."""
    return tuple(v for p in module.parameters() for v in (id(p), p.data_ptr(), p._version))
