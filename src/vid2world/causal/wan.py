"""Causalizing a video DiT (Wan 2.1): no kernel to transfer, since a DiT mixes frames in attention alone.

The causal model differs from the passive one in its config only (frame-causal attention masks, one noise level
per latent frame through the AdaLN modulation, a KV cache for rollouts), plus action layers when an action space is
given: an MLP over the group of video-frame actions a latent frame covers (`models/action_groups.py`), its last
layer zero, so the causal model starts out computing exactly what the passive one computes per frame.
"""

from __future__ import annotations

import torch

from ..models.action_groups import grouped_action_space
from ..models.config import ActionSpace
from ..models.wan.blocks import action_embedder
from ..models.wan.config import WanCausalConfig
from ..models.wan.transformer import WanTransformer
from .report import CausalizationReport

WAN_ACTION_PREFIX = "condition_embedder.action_embedder."
WAN_TEMPORAL_COMPRESSION = 4  # Wan's VAE: one latent frame per 4 video frames (the first frame alone)


def causalize_wan(model: WanTransformer, action_space: ActionSpace | None = None, *,
                  temporal_compression: int = WAN_TEMPORAL_COMPRESSION, seed: int = 0
                  ) -> tuple[WanTransformer, CausalizationReport]:
    """(causal WanTransformer, report) from a passive one: same weights, device, dtype and mode; `action_space`
    is one VIDEO frame's, grouped by `temporal_compression` into the latent frame's action input."""
    cfg = model.config
    if cfg.causal is not None:
        raise ValueError("this WanTransformer is causal already; causalize a full-sequence model")
    if action_space is not None and cfg.action_space is not None:
        raise ValueError(f"this WanTransformer already has an action space ({cfg.action_space}); pass "
                         "action_space=None")
    grouped = None if action_space is None else grouped_action_space(action_space, temporal_compression)
    new_cfg = cfg.replace(causal=WanCausalConfig(), action_space=grouped or cfg.action_space)
    report = CausalizationReport("none (attention masks only)", "n/a", False)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    report.copied = sorted(state)
    if grouped is not None:
        ref = next(iter(state.values()))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            layers = action_embedder(grouped, cfg.inner_dim)
        for name, value in layers.state_dict().items():
            state[WAN_ACTION_PREFIX + name] = value.to(device=ref.device, dtype=ref.dtype)
            report.new.append(WAN_ACTION_PREFIX + name)
    with torch.device("meta"):
        causal = WanTransformer(new_cfg)
    causal.load_state_dict(state, assign=True)
    return causal.train(model.training), report
