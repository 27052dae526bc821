"""Bad input gets an error naming the argument or key, the shape found and the shape expected."""

from __future__ import annotations

import pytest
import torch

from vid2world import ActionSpace, CausalConfig, StateDictError, UNetConfig, VideoUNet, causalize
from vid2world.causal import to_official_keys


@pytest.fixture(scope="module")
def model() -> VideoUNet:
    return VideoUNet(UNetConfig.preset("tiny", action_space=ActionSpace.continuous(7),
                                       causal=CausalConfig("frame"))).eval()


def call(model, x=None, timesteps=None, context=None, actions=None, action_mask=None, b=2, t=4):
    x = torch.randn(b, 8, t, 8, 8) if x is None else x
    timesteps = torch.zeros(b, dtype=torch.long) if timesteps is None else timesteps
    context = torch.randn(b, 77, 32) if context is None else context
    return model(x, timesteps, context, actions=actions, action_mask=action_mask)


@pytest.mark.parametrize("kwargs,message", [
    (dict(x=torch.randn(2, 8, 8, 8)), r"x: expected a tensor \[B, C=8, T, H, W\], got \(2, 8, 8, 8\)"),
    (dict(x=torch.randn(2, 4, 4, 8, 8)), r"x: expected 8 channels .* got shape \(2, 4, 4, 8, 8\)"),
    (dict(x=torch.randn(2, 8, 4, 7, 8)), r"multiples of 2 .* got 7x8"),
    (dict(x=torch.randn(2, 8, 0, 8, 8)), r"at least one clip and one frame"),
    (dict(timesteps=torch.zeros(2, 3, dtype=torch.long)), r"timesteps: expected shape \[B\]=\(2,\) or \[B, T\]=\(2, 4\), got \(2, 3\)"),
    (dict(timesteps=torch.zeros(3, dtype=torch.long)), r"timesteps: .* got \(3,\)"),
    (dict(context=torch.randn(2, 77, 16)), r"context: expected \[B=2, L, 32\], got \(2, 77, 16\)"),
    (dict(actions=torch.randn(2, 4, 6)), r"actions: expected \[B=2, T=4, A=7\] \(continuous\), got \(2, 4, 6\)"),
    (dict(actions=torch.randn(2, 5, 7)), r"actions: expected \[B=2, T=4, A=7\] .* got \(2, 5, 7\)"),
    (dict(actions=torch.randn(2, 4, 7), action_mask=torch.ones(2, 3)), r"action_mask: expected \[B=2, T=4\], got \(2, 3\)"),
])
def test_bad_forward_inputs(model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        call(model, **kwargs)


def test_missing_context_and_actions_without_action_space():
    plain = VideoUNet(UNetConfig.preset("tiny"))
    with pytest.raises(ValueError, match=r"context: .* expected a tensor \[B=2, L, 32\], got None"):
        plain(torch.randn(2, 8, 3, 8, 8), torch.zeros(2, dtype=torch.long), None)
    with pytest.raises(ValueError, match=r"actions: this UNet has no action input"):
        call(plain, actions=torch.randn(2, 4, 7))


def test_state_dict_with_missing_unexpected_and_misshaped_keys(model):
    sd = dict(model.state_dict())
    sd.pop("time_embed.0.bias")
    sd["extra.weight"] = torch.zeros(1)
    sd["out.2.weight"] = torch.zeros(4, 32, 3, 1)
    with pytest.raises(StateDictError) as err:
        VideoUNet(model.config).load_state_dict(sd)
    text = str(err.value)
    assert "1 missing key(s): 'time_embed.0.bias'" in text
    assert "1 unexpected key(s): 'extra.weight'" in text
    assert "key 'out.2.weight': shape [4, 32, 3, 1] in the state dict, expected [4, 32, 3, 3]" in text


def test_official_checkpoint_is_not_causalized_twice(model):
    official = to_official_keys(model.state_dict())
    with pytest.raises(ValueError, match=r"released Vid2World UNet \(key '.*conv3d.*'\): it is causal already"):
        causalize(official, "extrapolative", "frame")


def test_causalize_rejects_bad_options_and_causal_models(model):
    plain = VideoUNet(UNetConfig.preset("tiny"))
    with pytest.raises(ValueError, match=r"transfer must be one of .* got 'linear'"):
        causalize(plain, "linear")
    with pytest.raises(ValueError, match=r"temporal_norm must be one of .* got 'batch'"):
        causalize(plain, "masked", "batch")
    with pytest.raises(ValueError, match="causal already"):
        causalize(model)
    with pytest.raises(ValueError, match="missing"):
        causalize({"foo.weight": torch.zeros(1)})


def test_bad_configs():
    with pytest.raises(ValueError, match=r"unknown UNet preset 'huge'; available: \["):
        UNetConfig.preset("huge")
    with pytest.raises(ValueError, match="multiple of norm_groups=32"):
        UNetConfig.preset("tiny", model_channels=40)
    with pytest.raises(ValueError, match=r"unknown UNetConfig keys \['chanels'\]"):
        UNetConfig.from_dict({"chanels": 3})
    with pytest.raises(ValueError, match="ActionSpace.kind"):
        ActionSpace("discrete", 4)
    with pytest.raises(ValueError, match="temporal_norm must be one of"):
        CausalConfig("batch")
