"""One optimiser step and one learning-rate schedule for every training loop of vid2world: the trainer, the
in-memory loop that builds the bundled models, the autoencoder and the inverse-dynamics model (the EMA they keep
is `train/ema.py`'s)."""

from __future__ import annotations

import math
from typing import Callable, Iterable

import torch
from torch import Tensor, nn

from .ema import EMA


def lr_at(step: int, total: int, base: float, warmup: int = 0, decay: bool = True, floor: float = 0.1) -> float:
    """The learning rate at `step` of `total`: a linear warm-up over `warmup` steps, then `base` held (no `decay`)
    or a cosine from `base` down to `floor * base` at `total`."""
    if step < warmup:
        return base * (step + 1) / warmup
    if not decay:
        return base
    progress = (step - warmup) / max(1, total - warmup)
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def optimizer_step(optimizer: torch.optim.Optimizer, params: Iterable[nn.Parameter], grad_clip: float | None = None,
                   ema: EMA | None = None, module: nn.Module | None = None,
                   clip: Callable[..., Tensor] = torch.nn.utils.clip_grad_norm_) -> Tensor | None:
    """After the backward pass: clip the gradients' norm to `grad_clip` (None: no clipping; `clip` is the
    function that does it, accelerate's under several processes), step, clear the gradients, and update `ema`
    from `module`. Returns the norm before clipping (None without clipping); a norm that is NaN or inf raises
    FloatingPointError before anything is updated."""
    norm = None if grad_clip is None else clip(params, grad_clip)
    if norm is not None and not bool(torch.isfinite(norm)):  # one NaN step would turn every weight into NaN
        optimizer.zero_grad(set_to_none=True)
        raise FloatingPointError(f"the gradient's norm is {float(norm)}: the loss's gradient holds NaN or inf; "
                                 "the weights were not updated (check the data, the learning rate, the precision)")
    optimizer.step()
    if optimizer.defaults.get("fused"):  # its kernel updates in place without counting it: count it, so what
        for group in optimizer.param_groups:  # watches the weights' versions (a bf16 sampling copy) sees the step
            for p in group["params"]:
                torch.autograd.graph.increment_version(p)
    optimizer.zero_grad(set_to_none=True)
    if ema is not None:
        ema.update(module)
    return norm
