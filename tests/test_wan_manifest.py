"""The real Wan 2.1 transformers, built on the meta device (no download, no memory): their release config.json
read into diffusers' form, the key mapping covering every parameter both ways, and key and parameter counts.

Release configs: Wan-AI's config.json files (T2V-1.3B's verbatim; the others by wan/configs/*.py of
Wan-Video/Wan2.1 and SkyReels-V2's paper: "we adopt the model architecture from Wan2.1", I2V by 16 + 16 + 4
input channels). Diffusers configs: the tables in diffusers' scripts/convert_wan_to_diffusers.py and
convert_skyreelsv2_to_diffusers.py, an independent second source for the conversion.
"""

from __future__ import annotations

import inspect

import pytest
import torch

from vid2world.models.wan.wan_keys import (DIFFUSERS_DEFAULTS, diffusers_to_original_key, expected_shapes,
                                           original_config_to_diffusers, original_to_diffusers_key,
                                           parameter_count)

diffusers = pytest.importorskip("diffusers")

_RELEASE = {"_class_name": "WanModel", "_diffusers_version": "0.30.0", "eps": 1e-06, "freq_dim": 256,
            "out_dim": 16, "text_len": 512}
_WAN_DIFFUSERS = {"attention_head_dim": 128, "cross_attn_norm": True, "eps": 1e-06, "freq_dim": 256,
                  "out_channels": 16, "patch_size": (1, 2, 2), "qk_norm": "rms_norm_across_heads",
                  "text_dim": 4096, "rope_max_seq_len": 1024, "pos_embed_seq_len": None}
# name: (release config.json, diffusers config, parameter keys, parameters)
MODELS = {
    "Wan2.1-T2V-1.3B": (
        {**_RELEASE, "dim": 1536, "ffn_dim": 8960, "in_dim": 16, "model_type": "t2v", "num_heads": 12,
         "num_layers": 30},
        {**_WAN_DIFFUSERS, "num_attention_heads": 12, "num_layers": 30, "ffn_dim": 8960, "in_channels": 16,
         "image_dim": None, "added_kv_proj_dim": None},
        825, 1_418_996_800),
    "Wan2.1-T2V-14B": (
        {**_RELEASE, "dim": 5120, "ffn_dim": 13824, "in_dim": 16, "model_type": "t2v", "num_heads": 40,
         "num_layers": 40},
        {**_WAN_DIFFUSERS, "num_attention_heads": 40, "num_layers": 40, "ffn_dim": 13824, "in_channels": 16,
         "image_dim": None, "added_kv_proj_dim": None},
        1095, 14_288_491_584),
    "Wan2.1-I2V-14B-480P": (
        {**_RELEASE, "dim": 5120, "ffn_dim": 13824, "in_dim": 36, "model_type": "i2v", "num_heads": 40,
         "num_layers": 40},
        {**_WAN_DIFFUSERS, "num_attention_heads": 40, "num_layers": 40, "ffn_dim": 13824, "in_channels": 36,
         "image_dim": 1280, "added_kv_proj_dim": 5120},
        1303, 16_394_878_784),
    "SkyReels-V2-I2V-1.3B-540P": (
        {**_RELEASE, "dim": 1536, "ffn_dim": 8960, "in_dim": 36, "model_type": "i2v", "num_heads": 12,
         "num_layers": 30, "inject_sample_info": False},
        {**_WAN_DIFFUSERS, "num_attention_heads": 12, "num_layers": 30, "ffn_dim": 8960, "in_channels": 36,
         "image_dim": 1280, "added_kv_proj_dim": 1536},
        983, 1_564_428_608),
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def real(request):
    release, want, n_keys, n_params = MODELS[request.param]
    config = original_config_to_diffusers(release, f"{request.param}/config.json")
    with torch.device("meta"):
        model = diffusers.WanTransformer3DModel(**config)
    return config, want, n_keys, n_params, model


def test_release_config_reads_as_diffusers_converts_it(real):
    config, want, *_ = real
    assert config == want


def test_shapes_from_the_config_are_the_meta_models(real):
    config, _, n_keys, n_params, model = real
    state = model.state_dict()
    assert expected_shapes(config) == {k: tuple(v.shape) for k, v in state.items()}
    assert len(state) == n_keys
    assert parameter_count(config) == sum(p.numel() for p in model.parameters()) == n_params


def test_mapping_covers_every_key_both_ways(real):
    *_, n_keys, _, model = real
    diffusers_keys = list(model.state_dict())
    originals = [diffusers_to_original_key(k) for k in diffusers_keys]
    assert len(set(originals)) == n_keys  # one release name per parameter
    assert [original_to_diffusers_key(k) for k in originals] == diffusers_keys
    # the release's names share no module path with diffusers' beyond the patch embedding and block index
    assert not {k for k in originals if k.startswith(("condition_embedder", "proj_out", "scale_shift_table"))}
    assert not {k for k in originals if ".attn1." in k or ".attn2." in k or ".scale_shift_table" in k}


def test_parameter_counts_are_the_published_sizes():
    """1.3B and 14B as the releases call them (I2V adds the CLIP-token MLP and the image keys/values)."""
    counts = {name: entry[3] for name, entry in MODELS.items()}
    assert abs(counts["Wan2.1-T2V-1.3B"] / 1.42e9 - 1) < 0.01
    assert abs(counts["Wan2.1-T2V-14B"] / 1.43e10 - 1) < 0.01
    assert counts["Wan2.1-I2V-14B-480P"] > counts["Wan2.1-T2V-14B"]


def test_defaults_are_diffusers_constructor_defaults():
    signature = inspect.signature(diffusers.WanTransformer3DModel.__init__).parameters
    defaults = {name: p.default for name, p in signature.items() if name != "self"}
    assert defaults == DIFFUSERS_DEFAULTS
