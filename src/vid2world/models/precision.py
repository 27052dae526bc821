"""Mixed precision, one context named by the same strings as `train.precision`: the in-memory training loops
and the world model's sampling presets (bf16 autocast around the UNet, the sampler's arithmetic in float32)."""

from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("fp32", "bf16")


def autocast(precision: str, device: torch.device | str):
    """bf16 autocast on `device` (CPUs with AVX-512 BF16 run matmuls and convs ~3x faster), or nothing for fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
