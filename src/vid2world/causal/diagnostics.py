"""Measurements of a causalization: how much the future leaks, how much of the original model survives.

- `future_leak`: perturb frames t+1.. (inputs, noise levels, actions) and report the largest change of each frame's
  output. A strictly causal model changes no frame <= t.
- `feature_similarity`: the paper's representation-preservation measure (Table 6): mean cosine similarity between
  the original and the causalized model's features on the same clean clip, actions dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import torch
from torch import Tensor

from ..models.unet import VideoUNet


def smooth_video(batch: int, channels: int, frames: int, height: int, width: int, seed: int = 0) -> Tensor:
    """Random drifting sinusoids: a clip that varies smoothly in space and time (a stand-in for natural video)."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(frames, dtype=torch.float32)[:, None, None]
    y = torch.linspace(0, 1, height)[None, :, None]
    x = torch.linspace(0, 1, width)[None, None, :]
    out = torch.zeros(batch, channels, frames, height, width)
    for b in range(batch):
        for c in range(channels):
            for _ in range(3):
                fy, fx, speed, phase = (torch.rand(4, generator=gen) * torch.tensor([4.0, 4.0, 0.6, 6.28])).tolist()
                out[b, c] += torch.sin(6.28 * (fy * y + fx * x) + speed * t + phase) / 3
    return out


@dataclass
class ProbeInputs:
    """One forward call's arguments."""

    x: Tensor
    timesteps: Tensor
    context: Tensor | None = None
    actions: Tensor | None = None

    @classmethod
    def random(cls, model: VideoUNet, batch: int = 2, frames: int = 6, size: int = 8, seed: int = 0,
               smooth: bool = True, timesteps: Tensor | None = None) -> "ProbeInputs":
        cfg = model.config
        gen = torch.Generator().manual_seed(seed)
        x = smooth_video(batch, cfg.in_channels, frames, size, size, seed) if smooth else \
            torch.randn(batch, cfg.in_channels, frames, size, size, generator=gen)
        if timesteps is None:
            timesteps = torch.randint(0, 1000, (batch, frames), generator=gen)
        context = None
        if cfg.context_dim is not None:
            tokens = cfg.text_context_len + cfg.image_tokens_per_frame * frames
            context = torch.randn(batch, tokens, cfg.context_dim, generator=gen)
        actions = None
        if cfg.action_space is not None:
            actions = torch.randn(batch, frames, cfg.action_space.dim, generator=gen)
            if cfg.action_space.kind == "multi_hot":
                actions = (actions > 0.5).float()
        return cls(x, timesteps, context, actions)

    def to(self, device: torch.device | str) -> "ProbeInputs":
        move = lambda v: None if v is None else v.to(device)  # noqa: E731
        return ProbeInputs(move(self.x), move(self.timesteps), move(self.context), move(self.actions))

    def run(self, model: VideoUNet) -> Tensor:
        with torch.no_grad():
            return model(self.x, self.timesteps, self.context, actions=self.actions)

    def perturb_after(self, t: int, seed: int = 1) -> "ProbeInputs":
        """Fresh values for every frame after t: inputs, noise levels and actions."""
        gen = torch.Generator().manual_seed(seed)
        x, ts = self.x.clone(), self.timesteps.clone()
        x[:, :, t + 1:] = (torch.randn(x[:, :, t + 1:].shape, generator=gen) * 2).to(x.device)
        if ts.ndim == 2:
            ts[:, t + 1:] = torch.randint(0, 1000, ts[:, t + 1:].shape, generator=gen).to(ts.device)
        actions = None
        if self.actions is not None:
            actions = self.actions.clone()
            fresh = torch.randn(actions[:, t + 1:].shape, generator=gen).abs().round()
            actions[:, t + 1:] = fresh.to(actions.device)
        return ProbeInputs(x, ts, self.context, actions)


def future_leak(model: VideoUNet, inputs: ProbeInputs, t: int) -> Tensor:
    """Largest absolute change of each frame's output [T] when every frame after t is perturbed."""
    base = inputs.run(model)
    changed = inputs.perturb_after(t).run(model)
    return (changed - base).abs().amax(dim=(0, 1, 3, 4))


def _per_frame(features: Tensor) -> Tensor:
    """[B, C, T, H, W] or [(B T), C, H, W] -> one row per frame."""
    if features.ndim == 5:
        features = features.permute(0, 2, 1, 3, 4).flatten(0, 1)
    return features.flatten(1).double()


def mean_cosine(a: Tensor, b: Tensor) -> float:
    """Mean over frames of the cosine similarity between the two feature maps of each frame."""
    return torch.nn.functional.cosine_similarity(_per_frame(a), _per_frame(b), dim=-1).mean().item()


def capture(model: VideoUNet, inputs: ProbeInputs, taps: Iterable[str]) -> dict[str, Tensor]:
    """Outputs of the named submodules (plus "output", the UNet's output) on one forward pass."""
    grabbed: dict[str, Tensor] = {}
    hooks = [model.get_submodule(name).register_forward_hook(
        lambda _m, _i, out, name=name: grabbed.__setitem__(name, out.detach())) for name in taps]
    try:
        grabbed["output"] = inputs.run(model)
    finally:
        for h in hooks:
            h.remove()
    return grabbed


DEFAULT_TAPS = ("input_blocks.1.0", "middle_block")


def feature_similarity(original: VideoUNet, causal: VideoUNet, inputs: ProbeInputs,
                       taps: Iterable[str] = DEFAULT_TAPS) -> dict[str, float]:
    """Mean per-frame cosine similarity of features at each tap (and at the output), original vs causal.

    Follows the paper's protocol where it can: clean input at noise level 0, actions dropped.
    """
    clean = ProbeInputs(inputs.x, torch.zeros_like(inputs.timesteps), inputs.context, None)
    a = capture(original, clean, taps)
    b = capture(causal, clean, taps)
    return {name: mean_cosine(a[name], b[name]) for name in a}
