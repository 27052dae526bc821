"""Configs round-trip; gradient checkpointing changes memory, not results."""

from __future__ import annotations

import json

import torch

from vid2world import ActionSpace, CausalConfig, UNetConfig, VideoUNet
from vid2world.causal.diagnostics import ProbeInputs
from vid2world.testing import randomize_weights


def test_config_round_trips_through_json():
    cfg = UNetConfig.preset("tiny", action_space=ActionSpace.multi_hot(51), causal=CausalConfig("causal", True))
    assert UNetConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert UNetConfig.from_dict(UNetConfig.preset("dynamicrafter-512").to_dict()) == UNetConfig.preset("dynamicrafter-512")


def test_presets_differ_where_upstream_configs_differ():
    p256, p512, p1024 = (UNetConfig.preset(f"dynamicrafter-{r}") for r in (256, 512, 1024))
    assert p256.image_cross_attention_scale_learnable and not p512.image_cross_attention_scale_learnable
    assert (p256.default_fs, p512.default_fs, p1024.default_fs) == (3, 24, 10)
    assert p512.replace(default_fs=10) == p1024


def test_gradient_checkpointing_gives_the_same_gradients(monkeypatch):
    import vid2world.models.blocks as blocks

    calls = []
    real = blocks.checkpoint
    monkeypatch.setattr(blocks, "checkpoint", lambda *a, **k: calls.append(1) or real(*a, **k))
    cfg = UNetConfig.preset("tiny", action_space=ActionSpace.continuous(3), causal=CausalConfig("frame"),
                            dropout=0.0, temporal_conv_dropout=0.0)
    model = randomize_weights(VideoUNet(cfg), seed=4)
    model.train()
    inputs = ProbeInputs.random(model, frames=3, seed=1)

    def grads(checkpointing: bool):
        model.set_gradient_checkpointing(checkpointing)
        model.zero_grad()
        out = model(inputs.x, inputs.timesteps, inputs.context, actions=inputs.actions)
        out.square().mean().backward()
        return {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}

    plain = grads(False)
    assert not calls
    checkpointed = grads(True)
    assert len(calls) > 10  # every block after the input conv was recomputed
    assert plain.keys() == checkpointed.keys() and len(plain) > 400
    for k in plain:
        torch.testing.assert_close(plain[k], checkpointed[k], atol=1e-5, rtol=1e-4)


def test_fresh_model_starts_as_identity_branches():
    # lvdm zero-initialises every residual branch's last layer and the output conv: a new UNet outputs zeros.
    model = VideoUNet(UNetConfig.preset("tiny"))
    out = model(torch.randn(1, 8, 3, 8, 8), torch.tensor([10]), torch.randn(1, 77, 32))
    assert out.abs().max() == 0
