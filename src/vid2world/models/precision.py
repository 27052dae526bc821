"""Mixed precision, one context named by the same strings as `train.precision`: the in-memory training loops
and the world model's sampling presets (bf16 autocast around the UNet, the sampler's arithmetic in float32)."""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import warnings

import torch
from torch import nn

PRECISIONS = ("fp32", "bf16")


def autocast(precision: str, device: torch.device | str):
    """bf16 autocast on `device` (CPUs with AVX-512 BF16 run matmuls and convs ~3x faster), or nothing for fp32
    (and for bf16 on a CPU without native bf16: `fitting_precision`)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if fitting_precision(precision, device) == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


@functools.lru_cache(maxsize=None)
def native_bf16(device_type: str) -> bool:
    """Whether bf16 matmuls and convs run natively on this kind of device: always off the CPU; on a CPU, where
    oneDNN has bf16 kernels (AVX-512 BF16 / AMX). An AVX2 CPU emulates them: 25-100x slower than fp32
    measured (docs/performance.md)."""
    if device_type != "cpu":
        return True
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def fitting_precision(precision: str, device: torch.device | str) -> str:
    """`precision`, except bf16 on a CPU without native bf16 becomes fp32 (with a warning, once): presets and
    recipes choose bf16 for speed, which such a CPU does not give. VID2WORLD_BF16=always keeps bf16 anyway (the
    tests do, so every CPU runs the bf16 paths, in their subprocesses too)."""
    if precision == "bf16" and os.environ.get("VID2WORLD_BF16") != "always" \
            and not native_bf16(torch.device(device).type):
        warnings.warn("bf16 asked for on a CPU without native bf16 (AVX-512 BF16 or AMX): running fp32, which is "
                      "many times faster there", RuntimeWarning, stacklevel=2)
        return "fp32"
    return precision


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
