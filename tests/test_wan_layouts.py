"""Reading Wan 2.1 transformer directories (models/wan/layouts.py, wan_keys.py) against diffusers' own
WanTransformer3DModel, the oracle: tiny random models written by diffusers' save_pretrained (whole and
sharded), the same weights written in the Wan release's layout, and each way a directory can be wrong,
refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from vid2world.models.validation import StateDictError
from vid2world.models.wan.layouts import detect_video_model, read_wan_transformer
from vid2world.models.wan.wan_keys import (diffusers_config_to_original, diffusers_to_original_key,
                                           expected_shapes, original_config_to_diffusers,
                                           original_to_diffusers_key)

diffusers = pytest.importorskip("diffusers")

TINY = {"patch_size": (1, 2, 2), "num_attention_heads": 2, "attention_head_dim": 8, "in_channels": 4,
        "out_channels": 4, "text_dim": 12, "freq_dim": 8, "ffn_dim": 24, "num_layers": 2}
# the release's I2V has 1280-wide CLIP tokens and image keys/values of the model's width
TINY_I2V = {**TINY, "in_channels": 8, "image_dim": 1280, "added_kv_proj_dim": 16}
TINY_FLF2V = {**TINY_I2V, "pos_embed_seq_len": 2 * 257}  # first-last-frame: two CLIP token sequences
KINDS = {"t2v": TINY, "i2v": TINY_I2V, "flf2v": TINY_FLF2V}

# The Wan release's WanModel parameters, read off wan/modules/model.py (WanAttentionBlock, Head, MLPProj,
# WanI2VCrossAttention): an oracle for the names that does not go through the mapping under test.
RELEASE_BLOCK = ["modulation", *[f"{a}.{p}.{leaf}" for a in ("self_attn", "cross_attn") for p in "qkvo"
                                 for leaf in ("weight", "bias")],
                 *[f"{a}.norm_{p}.weight" for a in ("self_attn", "cross_attn") for p in "qk"],
                 "norm3.weight", "norm3.bias", "ffn.0.weight", "ffn.0.bias", "ffn.2.weight", "ffn.2.bias"]
RELEASE_I2V_BLOCK = ["cross_attn.k_img.weight", "cross_attn.k_img.bias", "cross_attn.v_img.weight",
                     "cross_attn.v_img.bias", "cross_attn.norm_k_img.weight"]
RELEASE_EMBEDDINGS = ["text_embedding.0", "text_embedding.2", "time_embedding.0", "time_embedding.2",
                      "time_projection.1", "patch_embedding", "head.head"]
RELEASE_TOP = ["head.modulation", *[f"{m}.{leaf}" for m in RELEASE_EMBEDDINGS for leaf in ("weight", "bias")]]
RELEASE_I2V_TOP = [f"img_emb.proj.{i}.{leaf}" for i in (0, 1, 3, 4) for leaf in ("weight", "bias")]


def release_keys(kind: str, layers: int) -> set[str]:
    block = RELEASE_BLOCK + (RELEASE_I2V_BLOCK if kind != "t2v" else [])
    top = RELEASE_TOP + (RELEASE_I2V_TOP if kind != "t2v" else [])
    top += ["img_emb.emb_pos"] if kind == "flf2v" else []
    return set(top) | {f"blocks.{i}.{k}" for i in range(layers) for k in block}


def tiny_model(config: dict, seed: int = 0):
    torch.manual_seed(seed)
    model = diffusers.WanTransformer3DModel(**config)
    with torch.no_grad():  # no parameter left at an init value another one shares (ones, zeros)
        for p in model.parameters():
            p.copy_(torch.randn_like(p))
    return model


def write_original(directory: Path, model, shards: int = 1) -> Path:
    """`model`'s weights as the Wan release stores them: its names, its config.json, whole or sharded."""
    directory.mkdir(parents=True, exist_ok=True)
    config = {"_class_name": "WanModel", "_diffusers_version": "0.30.0",
              **diffusers_config_to_original(dict(model.config))}
    (directory / "config.json").write_text(json.dumps(config))
    state = {diffusers_to_original_key(k): v.contiguous() for k, v in model.state_dict().items()}
    if shards == 1:
        save_file(state, directory / "diffusion_pytorch_model.safetensors")
        return directory
    keys, weight_map = sorted(state), {}
    for i in range(shards):
        name = f"diffusion_pytorch_model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = keys[i::shards]
        save_file({k: state[k] for k in part}, directory / name)
        weight_map.update({k: name for k in part})
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    (directory / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index))
    return directory


def assert_same_config(config: dict, model) -> None:
    """Every argument of diffusers' model, no other key; patch_size as a tuple."""
    want = {k: v for k, v in model.config.items() if not k.startswith("_")}
    assert config == {**want, "patch_size": tuple(want["patch_size"])}


def assert_same_state(state: dict, model) -> None:
    want = model.state_dict()
    assert sorted(state) == sorted(want)
    for key, value in want.items():
        assert state[key].dtype == value.dtype and torch.equal(state[key], value), key


@pytest.fixture(scope="module", params=sorted(KINDS))
def kind_model(request):
    return request.param, tiny_model(KINDS[request.param])


def test_key_names_match_the_wan_release_and_map_back(kind_model):
    kind, model = kind_model
    originals = {diffusers_to_original_key(k) for k in model.state_dict()}
    assert originals == release_keys(kind, TINY["num_layers"])
    for key in model.state_dict():
        assert original_to_diffusers_key(diffusers_to_original_key(key)) == key
    assert original_to_diffusers_key("blocks.1.norm3.weight") == "blocks.1.norm2.weight"  # the norms' swap
    assert original_to_diffusers_key("head.modulation") == "scale_shift_table"
    assert original_to_diffusers_key("blocks.0.modulation") == "blocks.0.scale_shift_table"


@pytest.mark.parametrize("key", ["fps_embedding.weight", "blocks.0.norm2.weight", "head.norm.weight",
                                 "blocks.0.self_attn.q.scale", "blocks.x.modulation", "freqs"])
def test_a_key_the_release_never_had_is_refused_by_name(key):
    with pytest.raises(ValueError, match=f"key '{key}'"):
        original_to_diffusers_key(key)


def test_expected_shapes_are_diffusers_parameters(kind_model):
    _, model = kind_model
    assert expected_shapes(dict(model.config)) == {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("shard_size", [None, "10KB"])
def test_diffusers_directory_reads_back(kind_model, tmp_path, shard_size):
    _, model = kind_model
    kwargs = {} if shard_size is None else {"max_shard_size": shard_size}
    model.save_pretrained(tmp_path, **kwargs)
    shards = sorted(tmp_path.glob("diffusion_pytorch_model-*.safetensors"))
    assert (len(shards) > 1) == (shard_size is not None)
    config, state, layout = read_wan_transformer(tmp_path)
    assert layout == "diffusers"
    assert_same_config(config, model)
    assert_same_state(state, model)
    rebuilt = diffusers.WanTransformer3DModel(**config)
    rebuilt.load_state_dict(state, strict=True)
    assert detect_video_model(tmp_path) == "wan2.1"


@pytest.mark.parametrize("shards", [1, 3])
def test_release_layout_reads_back_to_the_diffusers_state(kind_model, tmp_path, shards):
    _, model = kind_model
    config, state, layout = read_wan_transformer(write_original(tmp_path, model, shards))
    assert layout == "original"
    assert_same_config(config, model)
    assert_same_state(state, model)
    assert detect_video_model(tmp_path) == "wan2.1"


def test_pipeline_directory_is_read_through_its_transformer(tmp_path):
    model = tiny_model(TINY)
    model.save_pretrained(tmp_path / "transformer")
    (tmp_path / "model_index.json").write_text(json.dumps(
        {"_class_name": "WanPipeline", "transformer": ["diffusers", "WanTransformer3DModel"],
         "vae": ["diffusers", "AutoencoderKLWan"]}))
    _, state, layout = read_wan_transformer(tmp_path)
    assert layout == "diffusers"
    assert_same_state(state, model)
    assert detect_video_model(tmp_path) == "wan2.1"


def test_detect_says_none_for_other_directories(tmp_path):
    assert detect_video_model(tmp_path) is None  # empty
    assert detect_video_model(tmp_path / "absent") is None
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "UNet2DConditionModel"}))
    assert detect_video_model(tmp_path) is None
    (tmp_path / "config.json").write_text("{ not json")
    assert detect_video_model(tmp_path) is None
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "WanModel", "model_type": "ti2v",
                                                      "dim": 3072, "num_heads": 24}))
    assert detect_video_model(tmp_path) is None  # Wan 2.2's 5B
    two_experts = tmp_path / "wan22"
    tiny_model(TINY).save_pretrained(two_experts / "transformer")
    entry = ["diffusers", "WanTransformer3DModel"]
    (two_experts / "model_index.json").write_text(json.dumps({"transformer": entry, "transformer_2": entry}))
    assert detect_video_model(two_experts) is None
    (two_experts / "model_index.json").write_text(json.dumps({"transformer": entry}))
    assert detect_video_model(two_experts) == "wan2.1"


@pytest.fixture()
def release_dir(tmp_path):
    return write_original(tmp_path / "wan", tiny_model(TINY), shards=2)


INDEX = "diffusion_pytorch_model.safetensors.index.json"
FIRST = "diffusion_pytorch_model-00001-of-00002.safetensors"


def _rewrite_shard(directory: Path, name: str, change) -> None:
    from safetensors.torch import load_file
    state = load_file(directory / name)
    change(state)
    save_file(state, directory / name)


def _rewrite_index(directory: Path, change) -> dict:
    index = json.loads((directory / INDEX).read_text())
    change(index["weight_map"])
    (directory / INDEX).write_text(json.dumps(index))
    return index["weight_map"]


def test_missing_key_is_refused_by_name(release_dir):
    key = "blocks.0.cross_attn.o.bias"
    shard = _rewrite_index(release_dir, lambda m: None)[key]
    _rewrite_shard(release_dir, shard, lambda state: state.pop(key))
    _rewrite_index(release_dir, lambda m: m.pop(key))
    with pytest.raises(StateDictError, match=r"missing key.*'blocks\.0\.attn2\.to_out\.0\.bias'"):
        read_wan_transformer(release_dir)


def test_wrong_shape_is_refused_by_name(tmp_path):
    model = tiny_model(TINY)
    model.save_pretrained(tmp_path)
    path = tmp_path / "diffusion_pytorch_model.safetensors"
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    state["blocks.1.ffn.net.2.weight"] = torch.zeros(16, 23)
    save_file(state, path)
    with pytest.raises(StateDictError, match=r"'blocks\.1\.ffn\.net\.2\.weight': shape \[16, 23\]"
                                             r".*expected \[16, 24\]"):
        read_wan_transformer(tmp_path)


def test_extra_key_is_refused_by_name(tmp_path):
    model = tiny_model(TINY)
    model.save_pretrained(tmp_path)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file({**state, "blocks.0.attn1.lora_A.weight": torch.zeros(2, 16)},
              tmp_path / "diffusion_pytorch_model.safetensors")
    with pytest.raises(StateDictError, match=r"unexpected key.*'blocks\.0\.attn1\.lora_A\.weight'"):
        read_wan_transformer(tmp_path)


def test_unmapped_release_key_is_refused_naming_file_and_key(release_dir):
    _rewrite_shard(release_dir, FIRST, lambda s: s.update({"fps_embedding.weight": torch.zeros(2, 16)}))
    _rewrite_index(release_dir, lambda m: m.update({"fps_embedding.weight": FIRST}))
    with pytest.raises(ValueError, match=r"00001-of-00002\.safetensors: key 'fps_embedding\.weight'"):
        read_wan_transformer(release_dir)


def test_missing_shard_is_refused_naming_the_file(release_dir):
    (release_dir / "diffusion_pytorch_model-00002-of-00002.safetensors").unlink()
    with pytest.raises(ValueError, match=r"00002-of-00002\.safetensors: listed in .*index\.json \(key '.+'\) "
                                         r"but missing"):
        read_wan_transformer(release_dir)


def test_index_key_pointing_to_no_tensor_is_refused(release_dir):
    _rewrite_index(release_dir, lambda m: m.update(
        {"blocks.0.ffn.0.weight_ghost": "diffusion_pytorch_model-00002-of-00002.safetensors"}))
    with pytest.raises(ValueError, match=r"00002-of-00002\.safetensors: key "
                                         r"'blocks\.0\.ffn\.0\.weight_ghost' is listed for this file"):
        read_wan_transformer(release_dir)


def test_duplicate_key_across_shards_is_refused(release_dir):
    from safetensors.torch import load_file
    second = load_file(release_dir / "diffusion_pytorch_model-00002-of-00002.safetensors")
    key = sorted(second)[0]
    _rewrite_shard(release_dir, FIRST, lambda s: s.update({key: second[key]}))
    with pytest.raises(ValueError, match=f"key '{key}' is listed for diffusion_pytorch_model-00002"):
        read_wan_transformer(release_dir)


def test_config_and_weights_in_different_layouts_are_refused(tmp_path):
    model = tiny_model(TINY)
    model.save_pretrained(tmp_path)
    config = {"_class_name": "WanModel", **diffusers_config_to_original(dict(model.config))}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"safetensors: key 'blocks\.0\.attn1\.\S+' is diffusers' name"):
        read_wan_transformer(tmp_path)
    release = write_original(tmp_path / "release", model)
    (release / "config.json").write_text(json.dumps({"_class_name": "WanTransformer3DModel", **TINY}))
    with pytest.raises(ValueError, match=r"safetensors: key '\S+' is the Wan release's name, "
                                         r"but config\.json describes diffusers' layout"):
        read_wan_transformer(release)


def test_what_diffusers_itself_skips_or_ignores_is_read(tmp_path):
    """Early diffusers I2V conversions hold an unused attn2.norm_added_q (diffusers' loader drops it);
    SkyReels-V2's diffusers class has the same weights when inject_sample_info is false."""
    model = tiny_model(TINY_I2V)
    model.save_pretrained(tmp_path)
    path = tmp_path / "diffusion_pytorch_model.safetensors"
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file({**state, "blocks.1.attn2.norm_added_q.weight": torch.ones(16)}, path)
    config = json.loads((tmp_path / "config.json").read_text())
    config.update(_class_name="SkyReelsV2Transformer3DModel", inject_sample_info=False, num_frame_per_block=1)
    (tmp_path / "config.json").write_text(json.dumps(config))
    config, read, _ = read_wan_transformer(tmp_path)
    assert_same_config(config, model)
    assert_same_state(read, model)
    (tmp_path / "config.json").write_text(json.dumps({**config, "_class_name": "SkyReelsV2Transformer3DModel",
                                                      "inject_sample_info": True}))
    with pytest.raises(ValueError, match="inject_sample_info=true"):
        read_wan_transformer(tmp_path)


def test_whole_file_and_index_together_are_ambiguous(release_dir):
    save_file({"x": torch.zeros(1)}, release_dir / "diffusion_pytorch_model.safetensors")
    with pytest.raises(ValueError, match="expected exactly one of"):
        read_wan_transformer(release_dir)


@pytest.mark.parametrize("change, message", [
    ({"qk_norm": False}, "qk_norm=False"),
    ({"window_size": [4, 4]}, "window_size"),
    ({"inject_sample_info": True}, "inject_sample_info=True"),
    ({"model_type": "ti2v"}, "model_type 'ti2v'"),
    ({"action_config": {}}, "key 'action_config'"),
])
def test_release_config_the_model_cannot_hold_is_refused(change, message):
    base = diffusers_config_to_original(TINY)
    with pytest.raises(ValueError, match=message):
        original_config_to_diffusers({**base, **change}, "x/config.json")


def test_what_is_read_loads_strictly_into_vid2worlds_transformer(kind_model, tmp_path):
    from vid2world.models.wan import WanConfig, WanTransformer

    _, model = kind_model
    config, state, _ = read_wan_transformer(write_original(tmp_path, model))
    network = WanTransformer(WanConfig.from_diffusers(config))
    network.load_state_dict(state, strict=True)
    assert_same_state(network.state_dict(), model)


def test_skyreels_file_name_is_read_and_no_weights_is_refused(tmp_path):
    model = tiny_model(TINY)
    directory = write_original(tmp_path, model)
    (directory / "diffusion_pytorch_model.safetensors").rename(directory / "model.safetensors")
    assert_same_state(read_wan_transformer(directory)[1], model)
    (directory / "model.safetensors").unlink()
    with pytest.raises(ValueError, match=r"expected exactly one of .* found none"):
        read_wan_transformer(directory)
