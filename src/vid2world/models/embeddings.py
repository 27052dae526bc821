"""Sinusoidal noise-level embeddings and per-frame action embeddings (pure functions and their MLP builders)."""

from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import Tensor, nn

from .config import ActionSpace


def timestep_embedding(timesteps: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """lvdm's sinusoid: [..., dim] ordered [cos | sin], frequencies exp(-ln(max_period) * i / (dim/2)).

    Accepts any shape ([B] or [B, T]); the embedding is appended as a last axis.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half).to(timesteps.device)
    args = timesteps.float()[..., None] * freqs
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[..., :1])], dim=-1)
    return emb


def mlp(widths: list[int]) -> nn.Sequential:
    """Linear layers with SiLU between them (lvdm's time-embedding MLP shape): keys 0, 2, 4, ..."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        if i:
            layers.append(nn.SiLU())
        layers.append(nn.Linear(a, b))
    return nn.Sequential(*layers)


def build_action_layers(space: ActionSpace, model_channels: int) -> dict[str, nn.Module]:
    """The action modules of the official Vid2World UNet, by attribute name.

    continuous: `action_emb_proj` = Linear(A, C) SiLU Linear(C, 4C) SiLU Linear(4C, 4C);
    multi_hot:  `action_emb_preprocess` = Embedding(A, C) (used as a table: multi-hot @ weight sums the active
                rows), then `action_emb_proj` = Linear(C, 4C) SiLU Linear(4C, 4C).
    Default PyTorch initialisation, as the official code (no zero-init).
    """
    c, e = model_channels, 4 * model_channels
    if space.kind == "multi_hot":
        return {"action_emb_preprocess": nn.Embedding(space.dim, c), "action_emb_proj": mlp([c, e, e])}
    return {"action_emb_proj": mlp([space.dim, c, e, e])}


def action_space_of(state_dict: Mapping[str, Tensor]) -> tuple[ActionSpace | None, str | None]:
    """The action space whose layers a UNet state dict holds, and the key that says so (None, None: no actions).

    The inverse of `build_action_layers`: a table `action_emb_preprocess.weight` [A, C] means multi-hot over A
    entries; otherwise the first MLP layer `action_emb_proj.0.weight` [C, A] means continuous of width A.
    """
    if "action_emb_preprocess.weight" in state_dict:
        key = "action_emb_preprocess.weight"
        return ActionSpace.multi_hot(int(state_dict[key].shape[0])), key
    if "action_emb_proj.0.weight" in state_dict:
        key = "action_emb_proj.0.weight"
        return ActionSpace.continuous(int(state_dict[key].shape[1])), key
    return None, None


def followed_actions(actions_before: Tensor) -> Tensor:
    """The one-frame shift, the one place it is written: actions a_0 .. a_{n-1} [B, n, A] -> the action each of
    n + 1 frames follows [B, n + 1, A] (frame t follows a_{t-1}; frame 0 follows none: zeros)."""
    b, _, a = actions_before.shape
    return torch.cat([actions_before.new_zeros(b, 1, a), actions_before], dim=1)


def shift_actions(actions: Tensor) -> Tensor:
    """Frame t is conditioned on a_{t-1}: shift raw actions [B, T, A] one frame later; frame 0 gets zeros."""
    return followed_actions(actions[:, :-1])
