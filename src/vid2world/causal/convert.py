"""`causalize`: a full-sequence video UNet (module or state dict) -> a causal one, with a report of what changed."""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor

from ..models.config import TEMPORAL_NORM_MODES, ActionSpace, CausalConfig
from ..models.embeddings import build_action_layers
from ..models.unet import VideoUNet
from ..models.wan.transformer import WanTransformer
from .keys import TEMPORAL_CONV_KEY, is_official_layout, normalize_keys, strip_prefix
from .report import CausalizationReport
from .transfer import TRANSFER_MODES, transfer_conv_weight
from .wan import WAN_TEMPORAL_COMPRESSION, causalize_wan

ACTION_PREFIXES = ("action_emb_proj.", "action_emb_preprocess.")


def _check_options(transfer: str, temporal_norm: str) -> None:
    if transfer not in TRANSFER_MODES:
        raise ValueError(f"transfer must be one of {TRANSFER_MODES}, got {transfer!r}")
    if temporal_norm not in TEMPORAL_NORM_MODES:
        raise ValueError(f"temporal_norm must be one of {TEMPORAL_NORM_MODES}, got {temporal_norm!r}")


def causalize_state_dict(state_dict: Mapping[str, Tensor], transfer: str = "extrapolative",
                         temporal_norm: str = "frame", action_space: ActionSpace | None = None, *,
                         out_conv_height_causal: bool = False, past_points: int = 2,
                         seed: int = 0) -> tuple[dict[str, Tensor], CausalizationReport]:
    """Pure: the causal UNet state dict for a DynamiCrafter-layout one (with or without `model.diffusion_model.`).

    Temporal-conv kernels are rewritten by `transfer`; the output conv's kernel rows too when
    `out_conv_height_causal`; action layers for `action_space` are added with default initialisation (seeded by
    `seed`, without touching the global RNG) unless the input already has them. Every returned tensor is new.
    """
    _check_options(transfer, temporal_norm)
    sd = strip_prefix(state_dict)
    if is_official_layout(sd):
        key = next(k for k in sd if ".conv3d." in k or ".conv2d." in k)
        raise ValueError(f"this state dict is a released Vid2World UNet (key {key!r}): it is causal already; "
                         "load it with vid2world.causal.load_official_state_dict instead of causalizing it again")
    sd, renamed = normalize_keys(sd)
    if "time_embed.0.weight" not in sd:
        raise ValueError("not a DynamiCrafter UNet state dict: key 'time_embed.0.weight' is missing")
    report = CausalizationReport(transfer, temporal_norm, out_conv_height_causal, renamed=renamed)
    out: dict[str, Tensor] = {}
    for key, value in sd.items():
        conv_weight = TEMPORAL_CONV_KEY.search(key) and key.endswith("weight")
        out_weight = out_conv_height_causal and key == "out.2.weight"
        if conv_weight or out_weight:
            out[key] = transfer_conv_weight(value, transfer, axis=2, past_points=past_points)
            report.transferred.append(key)
        else:
            out[key] = value.clone()
            report.copied.append(key)
    has_actions = any(k.startswith(ACTION_PREFIXES) for k in out)
    if action_space is not None and has_actions:
        raise ValueError("the state dict already has action layers; pass action_space=None to keep them")
    if action_space is not None:
        model_channels = sd["time_embed.0.weight"].shape[1]
        ref = sd["time_embed.0.weight"]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            layers = build_action_layers(action_space, model_channels)
        for name, module in layers.items():
            for pname, p in module.state_dict().items():
                out[f"{name}.{pname}"] = p.to(device=ref.device, dtype=ref.dtype)
                report.new.append(f"{name}.{pname}")
    return out, report


def causalize(model: VideoUNet | Mapping[str, Tensor], transfer: str = "extrapolative", temporal_norm: str = "frame",
              action_space: ActionSpace | None = None, *, out_conv_height_causal: bool = False,
              past_points: int = 2, seed: int = 0, temporal_compression: int | None = None):
    """A causal world model's backbone from a full-sequence one: a `VideoUNet` (below) or a `WanTransformer`
    (`causal.wan.causalize_wan`: attention masks and grouped action layers; `action_space` is one video frame's,
    grouped `temporal_compression` (default 4, Wan's VAE) to a latent frame).

    Given a `VideoUNet`, returns `(causal VideoUNet, report)`: same device, dtype and train/eval mode, causal
    masks in every temporal attention (including `init_attn`), left-padded temporal convs initialised by
    `transfer` ("extrapolative" | "masked" | "shift"), temporal GroupNorms in `temporal_norm` mode
    ("frame" | "causal" | "clip"), and action layers for `action_space`. Given a state dict, returns
    `(causal state dict, report)` (see `causalize_state_dict`).
    """
    if isinstance(model, WanTransformer):
        if transfer != "extrapolative" or temporal_norm != "frame" or out_conv_height_causal:
            raise ValueError("transfer, temporal_norm and out_conv_height_causal are UNet options; a Wan "
                             "transformer has no temporal convs or norms to causalize")
        return causalize_wan(model, action_space, seed=seed,
                             temporal_compression=temporal_compression or WAN_TEMPORAL_COMPRESSION)
    if temporal_compression not in (None, 1):
        raise ValueError(f"temporal_compression={temporal_compression}: a VideoUNet takes one action per frame")
    if not isinstance(model, VideoUNet):
        return causalize_state_dict(model, transfer, temporal_norm, action_space,
                                    out_conv_height_causal=out_conv_height_causal, past_points=past_points, seed=seed)
    _check_options(transfer, temporal_norm)
    cfg = model.config
    if cfg.causal is not None:
        raise ValueError(f"this VideoUNet is causal already ({cfg.causal}); causalize a full-sequence model")
    if action_space is not None and cfg.action_space is not None:
        raise ValueError(f"this VideoUNet already has an action space ({cfg.action_space}); pass action_space=None")
    new_cfg = cfg.replace(causal=CausalConfig(temporal_norm, out_conv_height_causal),
                          action_space=action_space or cfg.action_space)
    sd, report = causalize_state_dict(model.state_dict(), transfer, temporal_norm, action_space,
                                      out_conv_height_causal=out_conv_height_causal, past_points=past_points,
                                      seed=seed)
    with torch.device("meta"):
        causal = VideoUNet(new_cfg)
    causal.load_state_dict(sd, assign=True)
    return causal.train(model.training), report


def load_official_state_dict(state_dict: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, str]]:
    """A released Vid2World UNet state dict in vid2world names (no transfer: its kernels are causal already)."""
    return normalize_keys(strip_prefix(state_dict))
