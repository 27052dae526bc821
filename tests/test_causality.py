"""Strict causality of causalized UNets (method.md section 3.4) and the leak of the official `clip` norm."""

from __future__ import annotations

import pytest
import torch

from vid2world import ActionSpace, UNetConfig, VideoUNet, causalize
from vid2world.causal.diagnostics import ProbeInputs, future_leak
from vid2world.testing import randomize_weights


def random_tiny(**overrides) -> VideoUNet:
    return randomize_weights(VideoUNet(UNetConfig.preset("tiny", **overrides)).eval(), seed=0)


@pytest.fixture(scope="module")
def base() -> VideoUNet:
    return random_tiny()


@pytest.mark.parametrize("norm", ["causal", "frame"])
@pytest.mark.parametrize("space", [ActionSpace.continuous(5), ActionSpace.multi_hot(9)], ids=["continuous", "multi_hot"])
@pytest.mark.parametrize("frames,t", [(4, 0), (5, 2), (9, 5)])  # 9 > the preset's training length of 6
def test_future_frames_do_not_change_the_past(base, norm, space, frames, t):
    model, _ = causalize(base, "extrapolative", norm, space)
    inputs = ProbeInputs.random(model, batch=2, frames=frames, size=8, seed=frames + t)
    leak = future_leak(model, inputs, t)
    assert leak[: t + 1].max().item() <= 1e-6, f"frames <= {t} changed by {leak[: t + 1].tolist()}"
    assert leak[t + 1:].max().item() > 1e-2  # the perturbation itself reached the later frames


@pytest.mark.parametrize("norm", ["causal", "frame"])
def test_causal_with_height_causal_output_conv(base, norm):
    model, _ = causalize(base, "masked", norm, ActionSpace.continuous(3), out_conv_height_causal=True)
    leak = future_leak(model, ProbeInputs.random(model, frames=5, seed=3), 1)
    assert leak[:2].max().item() <= 1e-6


def test_clip_norm_leaks_the_future(base):
    model, _ = causalize(base, "extrapolative", "clip", ActionSpace.continuous(5))
    leak = future_leak(model, ProbeInputs.random(model, frames=6, seed=0), 3)
    assert leak[:4].max().item() > 1e-3  # the official behaviour: GroupNorm statistics span the clip


def test_full_sequence_model_is_not_causal(base):
    leak = future_leak(base, ProbeInputs.random(base, frames=6, seed=0), 3)
    assert leak[:4].max().item() > 1e-2


def test_per_frame_levels_equal_scalar_level_path(base):
    model, _ = causalize(base, "extrapolative", "frame", ActionSpace.continuous(5))
    inputs = ProbeInputs.random(model, frames=5, seed=2)
    scalar = torch.tensor([17, 911])
    with torch.no_grad():
        a = model(inputs.x, scalar, inputs.context, actions=inputs.actions)
        b = model(inputs.x, scalar[:, None].expand(2, 5), inputs.context, actions=inputs.actions)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_fully_masked_actions_equal_no_actions(base):
    model, _ = causalize(base, "extrapolative", "frame", ActionSpace.continuous(5))
    inputs = ProbeInputs.random(model, frames=4, seed=5)
    with torch.no_grad():
        masked = model(inputs.x, inputs.timesteps, inputs.context, actions=inputs.actions,
                       action_mask=torch.zeros(2, 4))
        absent = model(inputs.x, inputs.timesteps, inputs.context)
    torch.testing.assert_close(masked, absent, atol=1e-6, rtol=0)


def test_causalize_preserves_device_dtype_and_mode():
    source = random_tiny().double().train()
    model, report = causalize(source, "masked", "causal", None)
    assert next(model.parameters()).dtype == torch.float64 and model.training
    assert model.is_causal and model.config.action_space is None
    assert report.new == [] and len(report.transferred) == 32  # 8 temporal conv blocks x 4 convs
    # The causal model owns its weights: training it must not touch the original.
    ours, theirs = dict(model.named_parameters()), dict(source.named_parameters())
    assert ours["time_embed.0.weight"].data_ptr() != theirs["time_embed.0.weight"].data_ptr()
