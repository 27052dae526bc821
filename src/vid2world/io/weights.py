"""Weight files for shipping: float16, or int8 with one float32 scale per output row ("int8-rows").

The bundled models must fit the package's size limit together; int8 halves float16 again. Each weight matrix
(a linear layer's [out, in], a convolution's [out, in, *kernel]) is stored as int8 with one scale per output row,
symmetric (w ~= q * scale, |q| <= 127): a row's largest weight is kept exactly and the rounding error is at most
half a step of that row's own range. Tensors of fewer than `MIN_QUANTIZED` values (biases, norms, embeddings of a
few rows) stay float16. `read_weights` gives back float32 state dicts for either format, so loaders need not know.
"""

from __future__ import annotations

import os

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from .atomic import atomic_file

PRECISIONS = ("float16", "int8-rows")
SCALE_SUFFIX = ".int8_row_scale"
MIN_QUANTIZED = 1024


def quantize_rows(weight: Tensor) -> tuple[Tensor, Tensor]:
    """(int8 values, float32 scale of shape [rows, 1, ...]) with weight ~= values * scale, per output row."""
    w = weight.detach().float()
    peak = w.abs().reshape(w.shape[0], -1).amax(dim=1)
    scale = torch.where(peak > 0, peak / 127.0, torch.ones_like(peak)).reshape(-1, *([1] * (w.dim() - 1)))
    return torch.round(w / scale).clamp(-127, 127).to(torch.int8), scale


def encode_state(state: dict[str, Tensor], precision: str) -> dict[str, Tensor]:
    """The tensors to write for `state` at `precision` (see the module's docstring); non-float tensors as they are."""
    if precision not in PRECISIONS:
        raise ValueError(f"weights precision must be one of {PRECISIONS}, got {precision!r}")
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if not value.is_floating_point():
            out[key] = value
        elif precision == "int8-rows" and value.dim() >= 2 and value.numel() >= MIN_QUANTIZED:
            out[key], out[key + SCALE_SUFFIX] = quantize_rows(value)
        else:
            out[key] = value.detach().to(torch.float16)
    return {k: v.contiguous() for k, v in out.items()}


def decode_state(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """The float32 state dict of tensors written by `encode_state` (float tensors of other files become float32)."""
    state: dict[str, Tensor] = {}
    for key, value in tensors.items():
        if key.endswith(SCALE_SUFFIX):
            continue
        scale = tensors.get(key + SCALE_SUFFIX)
        if scale is not None:
            state[key] = value.float() * scale
        else:
            state[key] = value.float() if value.is_floating_point() else value
    return state


def write_weights(state: dict[str, Tensor], path: str | os.PathLike, precision: str, kind: str) -> None:
    """Write `state` to the safetensors file `path` at `precision` (atomically: `path` may be the file `state` was
    read from). The metadata holds one key: safetensors writes a map of several in a random order, and the same
    weights must make the same bytes (evaluations key their cached predictions on the files' hashes)."""
    tensors = encode_state(state, precision)
    with atomic_file(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": f"vid2world.{kind}"})


def read_weights(path: str | os.PathLike) -> dict[str, Tensor]:
    """A safetensors state dict; one with int8 rows (its scale tensors say so) decoded to float32."""
    tensors = load_file(str(path))
    return decode_state(tensors) if any(k.endswith(SCALE_SUFFIX) for k in tensors) else tensors
