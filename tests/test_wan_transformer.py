"""`WanTransformer` against diffusers' `WanTransformer3DModel` (the oracle), and its config, inputs and
actions."""

from __future__ import annotations

import pytest
import torch

from vid2world.models.backbone import Conditioning
from vid2world.models.config import ActionSpace
from vid2world.models.validation import StateDictError
from vid2world.models.wan import WanCausalConfig, WanConfig, WanTransformer
from vid2world.testing import randomize_weights

diffusers = pytest.importorskip("diffusers")

TINY = dict(num_attention_heads=2, attention_head_dim=12, in_channels=4, out_channels=4, text_dim=16,
            freq_dim=16, ffn_dim=32, num_layers=2, temporal_length=5)
TINY_I2V = dict(TINY, in_channels=8, image_dim=12, added_kv_proj_dim=24)


def tiny(i2v: bool = False, **changes) -> WanConfig:
    return WanConfig(**{**(TINY_I2V if i2v else TINY), **changes})


def random_model(config: WanConfig, seed: int = 0, dtype=torch.float64) -> WanTransformer:
    return randomize_weights(WanTransformer(config).eval(), seed).to(dtype)


def inputs(config: WanConfig, b: int = 2, t: int = 4, h: int = 4, w: int = 6, text: int = 7, seed: int = 0,
           dtype=torch.float64) -> dict:
    """Random keyword inputs of `forward` (levels per frame; image tokens and actions when the config has
    them)."""
    g = torch.Generator().manual_seed(seed)
    rand = lambda *shape: torch.randn(*shape, generator=g, dtype=dtype)  # noqa: E731
    levels = torch.rand(b, t, generator=g, dtype=dtype) * 999
    out = dict(x=rand(b, config.in_channels, t, h, w), timesteps=levels,
               context=rand(b, text, config.text_dim))
    if config.image_dim is not None:
        out["image_context"] = rand(b, 5, config.image_dim)
    if config.action_space is not None:
        out["actions"] = rand(b, t, config.action_space.dim)
    return out


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def oracle(config: WanConfig, seed: int = 0):
    return randomize_weights(diffusers.WanTransformer3DModel(**config.to_diffusers()).eval(), seed)


# ---- the diffusers layout and outputs ----------------------------------------------------------------------
@pytest.mark.parametrize("name", WanConfig.preset_names())
def test_preset_state_shapes_equal_diffusers(name):
    config = WanConfig.preset(name)
    with torch.device("meta"):
        ours, theirs = WanTransformer(config), diffusers.WanTransformer3DModel(**config.to_diffusers())
    assert ours.state_shapes() == {k: tuple(v.shape) for k, v in theirs.state_dict().items()}


def test_preset_numbers():
    t2v, big, i2v, sky = (WanConfig.preset(n) for n in ("wan2.1-t2v-1.3b", "wan2.1-t2v-14b", "wan2.1-i2v-14b",
                                                          "skyreels-v2-i2v-1.3b"))
    assert (t2v.inner_dim, t2v.ffn_dim, t2v.num_layers, t2v.in_channels) == (1536, 8960, 30, 16)
    assert (big.inner_dim, big.ffn_dim, big.num_layers) == (5120, 13824, 40)
    assert (i2v.in_channels, i2v.image_dim, i2v.added_kv_proj_dim, i2v.inner_dim) == (36, 1280, 5120, 5120)
    assert (sky.in_channels, sky.image_dim, sky.added_kv_proj_dim, sky.inner_dim) == (36, 1280, 1536, 1536)
    with torch.device("meta"):
        count = sum(p.numel() for p in WanTransformer(t2v).parameters())
    assert 1.40e9 < count < 1.45e9  # "1.3B"


@pytest.mark.parametrize("i2v", [False, True], ids=["t2v", "i2v"])
@pytest.mark.parametrize("per_token", [False, True], ids=["timestep[B]", "timestep[B,seq]"])
def test_outputs_equal_diffusers_in_float32(i2v, per_token):
    config = tiny(i2v, cross_attn_norm=i2v)  # both norm2 variants
    theirs = oracle(config)
    ours = WanTransformer(config).eval()
    ours.load_state_dict(theirs.state_dict())
    # diffusers' I2V attention takes the last 512 context tokens as text: give it exactly 512
    feed = inputs(config, t=3, text=512 if i2v else 9, dtype=torch.float32)
    b, _, t, h, w = feed["x"].shape
    levels = feed["timesteps"] if per_token else feed["timesteps"][:, 0]
    their_levels = levels.repeat_interleave(h * w // 4, dim=1) if per_token else levels
    with torch.no_grad():
        got = ours(feed["x"], levels, feed["context"], feed.get("image_context"))
        want = theirs(feed["x"], their_levels, feed["context"], feed.get("image_context")).sample
    assert got.shape == want.shape == (b, config.out_channels, t, h, w)
    assert relative(got, want) <= 1e-5


def test_first_last_frame_layout_and_outputs_equal_diffusers():
    config = tiny(True, pos_embed_seq_len=10)  # two images of 5 tokens
    theirs = oracle(config)
    ours = WanTransformer(config).eval()
    ours.load_state_dict(theirs.state_dict())
    feed = inputs(config, t=2, text=512, dtype=torch.float32)
    images = torch.randn(4, 5, config.image_dim)  # two per clip
    with torch.no_grad():
        got = ours(feed["x"], feed["timesteps"][:, 0], feed["context"], images)
        want = theirs(feed["x"], feed["timesteps"][:, 0], feed["context"], images).sample
    assert relative(got, want) <= 1e-5


def test_action_keys_only_with_an_action_space():
    plain = WanTransformer(tiny()).state_shapes()
    acting = WanTransformer(tiny(action_space=ActionSpace.continuous(6))).state_shapes()
    extra = {k: v for k, v in acting.items() if k not in plain}
    assert extra == {"condition_embedder.action_embedder.0.weight": (24, 6),
                     "condition_embedder.action_embedder.0.bias": (24,),
                     "condition_embedder.action_embedder.2.weight": (24, 24),
                     "condition_embedder.action_embedder.2.bias": (24,)}
    with pytest.raises(StateDictError, match="4 missing key"):
        WanTransformer(tiny(action_space=ActionSpace.multi_hot(5))).load_state_dict(
            WanTransformer(tiny()).state_dict())


# ---- actions -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("space", [ActionSpace.continuous(6), ActionSpace.multi_hot(5)],
                         ids=["continuous", "multi_hot"])
def test_a_model_gains_actions_without_changing_its_outputs(space):
    base = random_model(tiny(True))
    acting = WanTransformer(tiny(True, action_space=space)).to(torch.float64).eval()
    acting.load_state_dict(base.state_dict(), strict=False)  # the action embedder keeps its zeroed last layer
    feed = inputs(acting.config)
    with torch.no_grad():
        assert torch.equal(acting(**feed), base(**{k: v for k, v in feed.items() if k != "actions"}))


def test_actions_matter_and_a_zero_mask_drops_them():
    model = random_model(tiny(action_space=ActionSpace.continuous(6)))
    feed = inputs(model.config)
    b, t = feed["actions"].shape[:2]
    with torch.no_grad():
        acted = model(**feed)
        dropped = model(**feed, action_mask=torch.zeros(b, t, dtype=torch.float64))
        absent = model(**{k: v for k, v in feed.items() if k != "actions"})
    assert torch.equal(dropped, absent)
    assert relative(acted, absent) > 1e-3


def test_scalar_and_per_frame_levels_agree():
    model = random_model(tiny())
    feed = inputs(model.config)
    level = feed.pop("timesteps")[:, 0]
    with torch.no_grad():
        a = model(timesteps=level, **feed)
        b = model(timesteps=level[:, None].expand(-1, feed["x"].shape[2]), **feed)
    assert relative(a, b) <= 1e-14


def test_predict_appends_the_concat_condition():
    model = random_model(tiny(True, action_space=ActionSpace.continuous(3)))
    feed = inputs(model.config)
    noisy, first = feed["x"][:, :4], feed["x"][:, 4:5, :1].expand(-1, 4, -1, -1, -1)
    conditioning = Conditioning(concat=first, context=feed["context"], image_context=feed["image_context"])
    with torch.no_grad():
        got = model.predict(noisy, feed["timesteps"], conditioning, feed["actions"])
        want = model(torch.cat([noisy, first.expand(-1, -1, 4, -1, -1)], 1), feed["timesteps"],
                     feed["context"], feed["image_context"], feed["actions"])
    assert torch.equal(got, want)


def test_gradient_checkpointing_gives_the_same_gradients():
    model = random_model(tiny(causal=WanCausalConfig())).train()
    feed = inputs(model.config, t=3)
    grads = []
    for enabled in (False, True):
        model.zero_grad()
        model.set_gradient_checkpointing(enabled)
        model(**feed).square().mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert relative(grads[1], grads[0]) <= 1e-12


# ---- config ------------------------------------------------------------------------------------------------
def test_config_round_trips_and_names_bad_keys():
    config = tiny(True, action_space=ActionSpace.multi_hot(3, ("a", "b", "c")), causal=WanCausalConfig())
    assert WanConfig.from_dict(config.to_dict()) == config
    assert config.context_dim == 16 and config.strictly_causal and not tiny().strictly_causal
    with pytest.raises(ValueError, match=r"unknown WanConfig keys \['bogus'\]"):
        WanConfig.from_dict({**config.to_dict(), "bogus": 1})
    with pytest.raises(ValueError, match="unknown Wan preset .wan9."):
        WanConfig.preset("wan9")


def test_from_diffusers_reads_a_config_json():
    saved = {"_class_name": "WanTransformer3DModel", "_diffusers_version": "0.33.0",
             **tiny(True).to_diffusers()}
    saved["patch_size"] = [1, 2, 2]
    assert WanConfig.from_diffusers(saved, temporal_length=5) == tiny(True)
    assert WanConfig.from_diffusers({**saved, "inject_sample_info": False, "num_frame_per_block": 1},
                                    temporal_length=5) == tiny(True)  # SkyReels-V2's keys at plain-Wan values
    unknown = r"unknown diffusers WanTransformer3DModel config keys \['window_size'\]"
    with pytest.raises(ValueError, match=unknown):
        WanConfig.from_diffusers({**saved, "window_size": [-1, -1]})
    with pytest.raises(ValueError, match="'inject_sample_info'=True is not supported"):
        WanConfig.from_diffusers({**saved, "inject_sample_info": True})


@pytest.mark.parametrize("changes,message", [
    (dict(image_dim=12), "image_dim and added_kv_proj_dim are set together"),
    (dict(image_dim=12, added_kv_proj_dim=12), "added_kv_proj_dim must equal the inner dim"),
    (dict(patch_size=(2, 2, 2)), r"patch_size must be \(1, ph, pw\)"),
    (dict(qk_norm="layer_norm"), "qk_norm must be one of"),
])
def test_bad_configs_are_named(changes, message):
    with pytest.raises(ValueError, match=message):
        tiny(**changes)


@pytest.mark.parametrize("i2v,change,message", [
    (False, dict(x=torch.zeros(2, 4, 3, 5, 6)), "multiples of the patch 2x2"),
    (False, dict(x=torch.zeros(2, 3, 3, 4, 6)), r"expected a tensor \[B, C=4"),
    (False, dict(timesteps=torch.zeros(2, 2)), r"timesteps: expected shape \[B\]"),
    (False, dict(context=torch.zeros(2, 7, 15)), r"context: expected text tokens \[B=2, L, 16\]"),
    (False, dict(image_context=torch.zeros(2, 5, 12)), "takes no image tokens"),
    (True, dict(image_context=None), r"needs CLIP tokens \[2, L, 12\], got None"),
    (False, dict(actions=torch.zeros(2, 3, 6)), r"actions: expected none \(action_space=None\)"),
])
def test_bad_inputs_are_named(i2v, change, message):
    model = WanTransformer(tiny(i2v)).to(torch.float64)
    feed = {**inputs(model.config, t=3), **change}
    with pytest.raises(ValueError, match=message):
        model(**feed)
