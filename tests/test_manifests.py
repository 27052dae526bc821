"""Full-size architectures, built on the meta device (no weights), against the official key/shape manifests."""

from __future__ import annotations

import pytest
import torch

from vid2world import ActionSpace, CausalConfig, UNetConfig, VideoUNet
from vid2world.causal import to_official_keys

from .conftest import load_json

PREFIX = "model.diffusion_model."


def meta_shapes(cfg: UNetConfig, official_names: bool = False) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        model = VideoUNet(cfg)
    shapes = model.state_shapes()
    if official_names:
        shapes = to_official_keys(shapes)
    return {PREFIX + k: tuple(v) for k, v in shapes.items()}


def assert_same_keys(ours: dict, manifest: dict) -> None:
    manifest = {k: tuple(v) for k, v in manifest.items()}
    missing, extra = sorted(set(manifest) - set(ours)), sorted(set(ours) - set(manifest))
    assert not missing and not extra, f"missing {missing[:5]}, extra {extra[:5]}"
    wrong = {k: (ours[k], manifest[k]) for k in manifest if ours[k] != manifest[k]}
    assert not wrong, f"mis-shaped: {list(wrong.items())[:5]}"


# dynamicrafter-1024's UNet is the 512 one (upstream configs/inference_1024_v1.0.yaml differs only in default_fs),
# so it is checked against the 512 manifest.
@pytest.mark.parametrize("preset,manifest", [
    ("dynamicrafter-256", "manifest_dynamicrafter_256_unet.json"),
    ("dynamicrafter-512", "manifest_dynamicrafter_512_unet.json"),
    ("dynamicrafter-1024", "manifest_dynamicrafter_512_unet.json"),
])
def test_dynamicrafter_presets_match_manifests(official, preset, manifest):
    data = load_json(official / manifest)
    cfg = UNetConfig.preset(preset)
    assert_same_keys(meta_shapes(cfg), data["keys"])
    if preset != "dynamicrafter-1024":
        expected = UNetConfig.from_lvdm(data["constructor_kwargs"])
        assert cfg.replace(temporal_length=expected.temporal_length) == expected
    with torch.device("meta"):
        n = sum(p.numel() for p in VideoUNet(cfg).parameters())
    assert n == data["num_parameters"]


@pytest.mark.parametrize("manifest,space", [
    ("manifest_vid2world_rt1_unet.json", ActionSpace.continuous(13)),
    ("manifest_vid2world_csgo_unet.json", ActionSpace.multi_hot(51)),
])
def test_official_vid2world_variants_match_manifests(official, manifest, space):
    data = load_json(official / manifest)
    cfg = UNetConfig.from_lvdm(data["constructor_kwargs"])
    assert cfg.action_space == space
    assert cfg.causal == CausalConfig(temporal_norm="clip", out_conv_height_causal=True)
    assert_same_keys(meta_shapes(cfg, official_names=True), data["keys"])
    # The same architecture built from the preset, as `causalize` does it.
    from_preset = UNetConfig.preset("dynamicrafter-512", default_fs=3, action_space=space, causal=cfg.causal)
    assert_same_keys(meta_shapes(from_preset, official_names=True), data["keys"])
    renamed = data["keys_renamed_vs_dynamicrafter_512"]
    assert len(renamed) == 178
    assert to_official_keys({k[len(PREFIX):]: 0 for k in renamed}) == {v[len(PREFIX):]: 0 for v in renamed.values()}
