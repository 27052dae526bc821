"""Exponential moving average of a module's trainable weights: ema <- decay * ema + (1 - decay) * weight."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import Tensor, nn


def ema_update(shadow: dict[str, Tensor], params: dict[str, Tensor], decay: float) -> None:
    """In place, for every name: shadow = decay * shadow + (1 - decay) * param (float32 shadows)."""
    with torch.no_grad():
        for name, value in params.items():
            shadow[name].lerp_(value.detach().to(shadow[name].dtype), 1.0 - decay)


class EMA:
    """Shadow copies of `module`'s trainable parameters, updated after every optimiser step."""

    def __init__(self, module: nn.Module, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"optim.ema_decay: must be in (0, 1), got {decay}")
        self.decay = decay
        self.shadow = {n: p.detach().float().clone() for n, p in module.named_parameters() if p.requires_grad}

    def update(self, module: nn.Module) -> None:
        ema_update(self.shadow, {n: p for n, p in module.named_parameters() if n in self.shadow}, self.decay)

    def state_dict(self) -> dict[str, Tensor]:
        return {n: t.clone() for n, t in self.shadow.items()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        if set(state) != set(self.shadow):
            missing, extra = sorted(set(self.shadow) - set(state)), sorted(set(state) - set(self.shadow))
            raise ValueError(f"EMA state does not fit the model: missing {missing[:3]}, unexpected {extra[:3]}")
        for name, value in state.items():
            self.shadow[name].copy_(value)

    def copy_to(self, module: nn.Module) -> None:
        """Write the EMA weights into `module`'s parameters (for good: `applied` for a while)."""
        params = dict(module.named_parameters())
        with torch.no_grad():
            for n, value in self.shadow.items():
                params[n].copy_(value)

    @contextmanager
    def applied(self, module: nn.Module) -> Iterator[nn.Module]:
        """Temporarily swap the EMA weights into `module` (for samples and export)."""
        params = dict(module.named_parameters())
        saved = {n: params[n].detach().clone() for n in self.shadow}
        self.copy_to(module)
        try:
            yield module
        finally:
            with torch.no_grad():
                for n, value in saved.items():
                    params[n].copy_(value)
