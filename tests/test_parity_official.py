"""Parity with the official DynamiCrafter / Vid2World code on its reference tensors (max abs error <= 1e-5)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from vid2world import ActionSpace, CausalConfig, UNetConfig, VideoUNet, causalize
from vid2world.causal import load_official_state_dict, to_official_keys

from .conftest import load_json

TOL = 1e-5
UNET_PREFIX = "model.diffusion_model."


def _max_err(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a - b).abs().max().item()


def official_vid2world_config(space: ActionSpace) -> UNetConfig:
    # The official causal model: clip-wide temporal GroupNorm and the height-causal output conv.
    return UNetConfig.preset("tiny", default_fs=3, action_space=space,
                             causal=CausalConfig(temporal_norm="clip", out_conv_height_causal=True))


def test_tiny_preset_is_the_fixture_configuration(official):
    meta = load_json(official / "dynamicrafter_tiny_unet.json")
    cfg = UNetConfig.from_lvdm(meta["constructor_kwargs"])
    assert cfg == UNetConfig.preset("tiny")
    model = VideoUNet(cfg)
    assert model.state_shapes() == {k: tuple(v) for k, v in meta["state_dict_keys"].items()}
    assert sum(p.numel() for p in model.parameters()) == meta["num_parameters"]


@pytest.mark.parametrize("context_key,out_key,with_fs", [
    ("context", "out", True),
    ("context_text_only", "out_text_only_context", True),  # 77 tokens: image branch sees none
    ("context", "out_fs_none", False),  # default_fs
])
def test_dynamicrafter_tiny_matches_upstream(official, context_key, out_key, with_fs):
    model = VideoUNet(UNetConfig.preset("tiny")).eval()
    model.load_state_dict(load_file(official / "dynamicrafter_tiny_unet.safetensors"))
    io = load_file(official / "dynamicrafter_tiny_io.safetensors")
    with torch.no_grad():
        out = model(io["x"], io["timesteps"], io[context_key], io["fs"] if with_fs else None)
    assert _max_err(out, io[out_key]) <= TOL


def _vid2world_tiny(official, discrete: bool) -> tuple[VideoUNet, dict]:
    sd = load_file(official / "vid2world_tiny_unet.safetensors")
    if discrete:  # the discrete file holds only the action keys; the backbone is shared
        sd = {k: v for k, v in sd.items() if not k.startswith("action_emb_proj")}
        sd.update(load_file(official / "vid2world_tiny_unet_discrete.safetensors"))
    space = ActionSpace.multi_hot(51) if discrete else ActionSpace.continuous(7)
    model = VideoUNet(official_vid2world_config(space)).eval()
    state, renamed = load_official_state_dict(sd)
    assert len(renamed) == 66  # 64 temporal-conv keys (.conv3d.) + 2 output-conv keys (.conv2d.)
    model.load_state_dict(state)
    suffix = "_discrete" if discrete else ""
    return model, load_file(official / f"vid2world_tiny_io{suffix}.safetensors")


@pytest.mark.parametrize("discrete", [False, True], ids=["continuous", "multi_hot"])
@pytest.mark.parametrize("case", ["per_frame", "timesteps_1d", "no_action_mask", "x_perturbed_last2"])
def test_vid2world_tiny_matches_official(official, discrete, case):
    model, io = _vid2world_tiny(official, discrete)
    x, ts, mask, ref = io["x"], io["timesteps"], io["action_mask"], io["out"]
    if case == "timesteps_1d":
        ts, ref = io["timesteps_1d"], io["out_timesteps_1d"]
    elif case == "no_action_mask":
        mask, ref = None, io["out_no_action_mask"]
    elif case == "x_perturbed_last2":
        x, ref = io["x_perturbed_last2"], io["out_x_perturbed_last2"]
    with torch.no_grad():
        out = model(x, ts, io["context"], io["fs"], actions=io["action_raw"], action_mask=mask)
    assert _max_err(out, ref) <= TOL


def test_actions_are_shifted_inside_the_model(official):
    # The fixture stores both the raw actions and what the official UNet received after the wrapper's shift.
    io = load_file(official / "vid2world_tiny_io.safetensors")
    from vid2world.models.embeddings import shift_actions
    assert torch.equal(shift_actions(io["action_raw"]), io["action"])


@pytest.mark.parametrize("mode", ["extrapolative", "masked", "shift"])
def test_weight_transfer_reproduces_official_conversion(official, mode):
    info = load_json(official / "transfer.json")["modes"][mode]
    base = load_file(official / "dynamicrafter_tiny_unet.safetensors")
    ckpt = {UNET_PREFIX + k: v for k, v in base.items()}  # as inside a real model.ckpt
    state, report = causalize(ckpt, mode, "clip", ActionSpace.continuous(7), out_conv_height_causal=True)
    converted = to_official_keys(state)
    reference = load_file(official / f"transfer_{mode}.safetensors")
    new_keys = set(info["new_keys_left_at_init"])
    assert sorted(report.new) == sorted(new_keys)
    assert set(info["renamed_keys_old_to_new"].values()) <= set(converted)
    for key, value in reference.items():
        if key not in new_keys:
            assert torch.equal(converted[key], value), f"{mode}: {key} differs from the official conversion"
    for key, value in base.items():  # every other key copied unchanged
        official_key = next((n for o, n in info["renamed_keys_old_to_new"].items() if o == key), key)
        if official_key not in reference:
            assert torch.equal(converted[official_key], value), key
    changed = [k for k in report.transferred if not torch.equal(state[k], base[k])]
    assert sorted(changed) == sorted(k.replace(".conv3d.", ".").replace(".conv2d.", ".")
                                     for k in info["keys_whose_values_changed"])


@pytest.mark.parametrize("mode", ["extrapolative", "masked", "shift"])
def test_converted_model_matches_official_outputs(official, mode):
    base = load_file(official / "dynamicrafter_tiny_unet.safetensors")
    state, _ = causalize(base, mode, "clip", ActionSpace.continuous(7), out_conv_height_causal=True)
    full = to_official_keys(state)
    full.update(load_file(official / f"transfer_{mode}.safetensors"))  # the official init of the action layers
    model = VideoUNet(official_vid2world_config(ActionSpace.continuous(7))).eval()
    model.load_state_dict(load_official_state_dict(full)[0])
    io = load_file(official / "vid2world_tiny_io.safetensors")
    with torch.no_grad():
        out = model(io["x"], io["timesteps"], io["context"], io["fs"], io["action_raw"], io["action_mask"])
    assert _max_err(out, load_file(official / "transfer_io.safetensors")[f"out_{mode}"]) <= TOL


def test_official_forward_leaks_the_future_as_documented(official):
    # The fixture README measures a 0.153 leak into frames 0-3 when frames 4-5 change (clip-wide GroupNorm).
    model, io = _vid2world_tiny(official, discrete=False)
    leak = (io["out_x_perturbed_last2"] - io["out"]).abs()[:, :, :4].max().item()
    assert 0.1 < leak < 0.2
    strict = VideoUNet(official_vid2world_config(ActionSpace.continuous(7)).replace(
        causal=CausalConfig("frame", True))).eval()
    strict.load_state_dict(model.state_dict())
    with torch.no_grad():
        args = (io["timesteps"], io["context"], io["fs"], io["action_raw"], io["action_mask"])
        a, b = strict(io["x"], *args), strict(io["x_perturbed_last2"], *args)
    assert (a - b)[:, :, :4].abs().max().item() == 0.0


def test_unet_part_of_a_model_ckpt_loads_strictly(official):
    # A DynamiCrafter model.ckpt state_dict: the UNet under model.diffusion_model., other parts beside it, and the
    # old `framestride_embed` name some checkpoints use for `fps_embedding`.
    from vid2world.causal import normalize_keys, strip_prefix

    unet = load_file(official / "dynamicrafter_tiny_unet.safetensors")
    ckpt = {UNET_PREFIX + k.replace("fps_embedding.", "framestride_embed."): v for k, v in unet.items()}
    ckpt["first_stage_model.encoder.conv_in.weight"] = torch.zeros(1)
    ckpt["scale_arr"] = torch.zeros(1400)
    state, renamed = normalize_keys(strip_prefix(ckpt))
    assert sorted(renamed.values()) == sorted(k for k in unet if k.startswith("fps_embedding."))
    model = VideoUNet(UNetConfig.preset("tiny"))
    model.load_state_dict(state, strict=True)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in unet.items())
