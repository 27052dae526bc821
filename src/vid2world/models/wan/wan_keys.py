"""Wan 2.1 transformer names: the original release's (Wan-Video/Wan2.1 `WanModel`) and diffusers'
(`WanTransformer3DModel`), for parameter keys and for config.json, both ways; and the parameter shapes a
diffusers-form config implies. Pure functions over plain dicts: no files, no modules built.

Facts read from Wan2.1's wan/modules/model.py and diffusers' scripts/convert_wan_to_diffusers.py: the original
block calls its norms norm1 (self-attention), norm3 (cross-attention, the one with weights) and norm2
(feed-forward); diffusers numbers them in call order, so original norm3 is diffusers norm2.
"""

from __future__ import annotations

import math
import re
from typing import Mapping

# Module paths (or whole parameter names, for bare nn.Parameters) outside the blocks: original -> diffusers.
_TOP = {
    "patch_embedding": "patch_embedding",
    "text_embedding.0": "condition_embedder.text_embedder.linear_1",
    "text_embedding.2": "condition_embedder.text_embedder.linear_2",
    "time_embedding.0": "condition_embedder.time_embedder.linear_1",
    "time_embedding.2": "condition_embedder.time_embedder.linear_2",
    "time_projection.1": "condition_embedder.time_proj",
    "head.head": "proj_out",
    "img_emb.proj.0": "condition_embedder.image_embedder.norm1",  # I2V / FLF2V: the CLIP-token MLP
    "img_emb.proj.1": "condition_embedder.image_embedder.ff.net.0.proj",
    "img_emb.proj.3": "condition_embedder.image_embedder.ff.net.2",
    "img_emb.proj.4": "condition_embedder.image_embedder.norm2",
}
_TOP_PARAMETERS = {"head.modulation": "scale_shift_table",
                   "img_emb.emb_pos": "condition_embedder.image_embedder.pos_embed"}  # FLF2V
# Inside blocks.N: original -> diffusers.
_BLOCK = {
    **{f"self_attn.{p}": f"attn1.to_{p}" for p in "qkv"}, "self_attn.o": "attn1.to_out.0",
    "self_attn.norm_q": "attn1.norm_q", "self_attn.norm_k": "attn1.norm_k",
    **{f"cross_attn.{p}": f"attn2.to_{p}" for p in "qkv"}, "cross_attn.o": "attn2.to_out.0",
    "cross_attn.norm_q": "attn2.norm_q", "cross_attn.norm_k": "attn2.norm_k",
    "cross_attn.k_img": "attn2.add_k_proj", "cross_attn.v_img": "attn2.add_v_proj",  # I2V image tokens
    "cross_attn.norm_k_img": "attn2.norm_added_k",
    "norm3": "norm2",
    "ffn.0": "ffn.net.0.proj", "ffn.2": "ffn.net.2",
}
_BLOCK_PARAMETERS = {"modulation": "scale_shift_table"}
_LEAVES = ("weight", "bias")
_BLOCK_KEY = re.compile(r"blocks\.(\d+)\.(.+)")


def _invert(table: Mapping[str, str]) -> dict[str, str]:
    return {new: old for old, new in table.items()}


_TABLES = {"original": (_TOP, _TOP_PARAMETERS, _BLOCK, _BLOCK_PARAMETERS)}
_TABLES["diffusers"] = tuple(_invert(t) for t in _TABLES["original"])


def _renamed(key: str, source: str) -> str | None:
    """`key` in the other layout than `source` ('original' | 'diffusers'), None if it has no counterpart."""
    top, top_params, block, block_params = _TABLES[source]
    match = _BLOCK_KEY.fullmatch(key)
    prefix, rest, modules, params = ("", key, top, top_params) if match is None else (
        f"blocks.{match.group(1)}.", match.group(2), block, block_params)
    if rest in params:
        return prefix + params[rest]
    module, _, leaf = rest.rpartition(".")
    if leaf in _LEAVES and module in modules:
        return f"{prefix}{modules[module]}.{leaf}"
    return None


def original_to_diffusers_key(key: str) -> str:
    """A Wan release parameter name as diffusers' WanTransformer3DModel calls it; ValueError if none."""
    new = _renamed(key, "original")
    if new is None:
        raise ValueError(f"key {key!r}: not a parameter of Wan 2.1's WanModel (no diffusers name for it)")
    return new


def diffusers_to_original_key(key: str) -> str:
    """A WanTransformer3DModel parameter name as the Wan release's WanModel calls it; ValueError if none."""
    old = _renamed(key, "diffusers")
    if old is None:
        raise ValueError(f"key {key!r}: not a parameter of diffusers' WanTransformer3DModel "
                         "(no Wan release name for it)")
    return old


# WanTransformer3DModel's constructor arguments and defaults (diffusers 0.42); a test holds them to diffusers.
DIFFUSERS_DEFAULTS: dict[str, object] = {
    "patch_size": (1, 2, 2), "num_attention_heads": 40, "attention_head_dim": 128, "in_channels": 16,
    "out_channels": 16, "text_dim": 4096, "freq_dim": 256, "ffn_dim": 13824, "num_layers": 40,
    "cross_attn_norm": True, "qk_norm": "rms_norm_across_heads", "eps": 1e-6, "image_dim": None,
    "added_kv_proj_dim": None, "rope_max_seq_len": 1024, "pos_embed_seq_len": None,
}
# WanModel's arguments with their defaults; its register_to_config ignores patch_size, text_dim, window_size,
# qk_norm and cross_attn_norm, so the release's config.json files never name them.
ORIGINAL_DEFAULTS: dict[str, object] = {
    "model_type": "t2v", "patch_size": (1, 2, 2), "text_len": 512, "in_dim": 16, "dim": 2048,
    "ffn_dim": 8192, "freq_dim": 256, "text_dim": 4096, "out_dim": 16, "num_heads": 16, "num_layers": 32,
    "window_size": (-1, -1), "qk_norm": True, "cross_attn_norm": True, "eps": 1e-6,
    "inject_sample_info": False,  # SkyReels-V2's WanModel: True adds fps embeddings (diffusion forcing)
}
CLIP_TOKEN_DIM = 1280  # the release hard-codes the image tokens' width (open-clip ViT-H/14) in MLPProj
FLF2V_IMAGE_TOKENS = 257 * 2  # first-last-frame: two CLIP token sequences, each with a learned position


def original_config_to_diffusers(config: Mapping[str, object], source: str = "config.json"
                                 ) -> dict[str, object]:
    """A Wan release config.json (WanModel's arguments) as WanTransformer3DModel's; ValueError, naming
    `source` and the key, for anything diffusers' model cannot hold."""
    unknown = sorted(k for k in config if not k.startswith("_") and k not in ORIGINAL_DEFAULTS)
    if unknown:
        raise ValueError(f"{source}: key {unknown[0]!r} is not an argument of Wan 2.1's WanModel "
                         f"(expected some of {sorted(ORIGINAL_DEFAULTS)})")
    c = {**ORIGINAL_DEFAULTS, **{k: v for k, v in config.items() if not k.startswith("_")}}
    kind = c["model_type"]
    if kind not in ("t2v", "i2v", "flf2v"):
        raise ValueError(f"{source}: model_type {kind!r}, expected 't2v', 'i2v' or 'flf2v' (Wan 2.1)")
    refusals = {
        "window_size": (list(c["window_size"]) != [-1, -1], "WanTransformer3DModel has no local attention"),
        "qk_norm": (c["qk_norm"] is not True, "WanTransformer3DModel always has q/k RMS norms"),
        "inject_sample_info": (bool(c["inject_sample_info"]),
                               "fps embeddings (SkyReels-V2 DF) are not in WanTransformer3DModel")}
    for key, (refused, why) in refusals.items():
        if refused:
            raise ValueError(f"{source}: {key}={c[key]!r} cannot be read: {why}")
    dim, heads = int(c["dim"]), int(c["num_heads"])
    if dim % heads:
        raise ValueError(f"{source}: dim={dim} is not a multiple of num_heads={heads}")
    with_image = kind in ("i2v", "flf2v")
    return {**DIFFUSERS_DEFAULTS,
            "patch_size": tuple(int(p) for p in c["patch_size"]), "num_attention_heads": heads,
            "attention_head_dim": dim // heads, "in_channels": int(c["in_dim"]),
            "out_channels": int(c["out_dim"]), "text_dim": int(c["text_dim"]), "freq_dim": int(c["freq_dim"]),
            "ffn_dim": int(c["ffn_dim"]), "num_layers": int(c["num_layers"]),
            "cross_attn_norm": bool(c["cross_attn_norm"]), "eps": float(c["eps"]),
            "image_dim": CLIP_TOKEN_DIM if with_image else None,
            "added_kv_proj_dim": dim if with_image else None,
            "pos_embed_seq_len": FLF2V_IMAGE_TOKENS if kind == "flf2v" else None}


def diffusers_config_to_original(config: Mapping[str, object]) -> dict[str, object]:
    """The inverse of `original_config_to_diffusers`: WanModel's arguments (to write the release layout)."""
    c = normalized_diffusers_config(config)
    kind = "t2v" if c["image_dim"] is None else ("flf2v" if c["pos_embed_seq_len"] else "i2v")
    dim = c["num_attention_heads"] * c["attention_head_dim"]
    if kind != "t2v" and (c["image_dim"], c["added_kv_proj_dim"]) != (CLIP_TOKEN_DIM, dim):
        raise ValueError(f"image_dim={c['image_dim']}, added_kv_proj_dim={c['added_kv_proj_dim']}: the Wan "
                         f"release has image_dim={CLIP_TOKEN_DIM} and added_kv_proj_dim=dim={dim}")
    return {"model_type": kind, "patch_size": list(c["patch_size"]), "text_len": 512,
            "in_dim": c["in_channels"], "dim": dim, "ffn_dim": c["ffn_dim"], "freq_dim": c["freq_dim"],
            "text_dim": c["text_dim"], "out_dim": c["out_channels"], "num_heads": c["num_attention_heads"],
            "num_layers": c["num_layers"], "qk_norm": True, "cross_attn_norm": c["cross_attn_norm"],
            "eps": c["eps"]}


def normalized_diffusers_config(config: Mapping[str, object], source: str = "config.json",
                                ignored: tuple[str, ...] = ()) -> dict[str, object]:
    """A WanTransformer3DModel config with every argument present (defaults filled in), metadata
    (`_class_name`, ...) and `ignored` keys dropped, patch_size a tuple; ValueError naming `source` and the
    key for a key it does not take or a value Wan 2.1 never had."""
    unknown = sorted(k for k in config
                     if not k.startswith("_") and k not in DIFFUSERS_DEFAULTS and k not in ignored)
    if unknown:
        raise ValueError(f"{source}: key {unknown[0]!r} is not an argument of WanTransformer3DModel")
    c = {**DIFFUSERS_DEFAULTS, **{k: v for k, v in config.items() if k in DIFFUSERS_DEFAULTS}}
    if c["qk_norm"] != "rms_norm_across_heads":
        raise ValueError(f"{source}: qk_norm={c['qk_norm']!r}, expected 'rms_norm_across_heads' "
                         "(the only one Wan 2.1 has)")
    if (c["image_dim"] is None) != (c["added_kv_proj_dim"] is None):
        raise ValueError(f"{source}: image_dim={c['image_dim']} and added_kv_proj_dim="
                         f"{c['added_kv_proj_dim']} must both be set (image-to-video) or both be null")
    c["patch_size"] = tuple(int(p) for p in c["patch_size"])
    return c


def expected_shapes(config: Mapping[str, object]) -> dict[str, tuple[int, ...]]:
    """Every parameter of WanTransformer3DModel(**config) with its shape, in diffusers' names, from the config
    alone (no model built)."""
    c = normalized_diffusers_config(config)
    d, ffn, p = c["num_attention_heads"] * c["attention_head_dim"], c["ffn_dim"], c["patch_size"]
    shapes: dict[str, tuple[int, ...]] = {"scale_shift_table": (1, 2, d)}

    def linear(name: str, n_in: int, n_out: int) -> None:
        shapes.update({f"{name}.weight": (n_out, n_in), f"{name}.bias": (n_out,)})

    shapes.update({"patch_embedding.weight": (d, c["in_channels"], *p), "patch_embedding.bias": (d,)})
    embed = "condition_embedder"
    linear(f"{embed}.time_embedder.linear_1", c["freq_dim"], d)
    linear(f"{embed}.time_embedder.linear_2", d, d)
    linear(f"{embed}.time_proj", d, 6 * d)
    linear(f"{embed}.text_embedder.linear_1", c["text_dim"], d)
    linear(f"{embed}.text_embedder.linear_2", d, d)
    if c["image_dim"] is not None:
        image, width = f"{embed}.image_embedder", c["image_dim"]
        shapes.update({f"{image}.norm1.weight": (width,), f"{image}.norm1.bias": (width,),
                       f"{image}.norm2.weight": (d,), f"{image}.norm2.bias": (d,)})
        linear(f"{image}.ff.net.0.proj", width, width)
        linear(f"{image}.ff.net.2", width, d)
        if c["pos_embed_seq_len"] is not None:
            shapes[f"{image}.pos_embed"] = (1, c["pos_embed_seq_len"], width)
    for i in range(c["num_layers"]):
        b = f"blocks.{i}"
        shapes[f"{b}.scale_shift_table"] = (1, 6, d)
        for attn in ("attn1", "attn2"):
            for proj in ("to_q", "to_k", "to_v", "to_out.0"):
                linear(f"{b}.{attn}.{proj}", d, d)
            shapes.update({f"{b}.{attn}.norm_q.weight": (d,), f"{b}.{attn}.norm_k.weight": (d,)})
        if c["added_kv_proj_dim"] is not None:
            linear(f"{b}.attn2.add_k_proj", c["added_kv_proj_dim"], d)
            linear(f"{b}.attn2.add_v_proj", c["added_kv_proj_dim"], d)
            shapes[f"{b}.attn2.norm_added_k.weight"] = (d,)
        if c["cross_attn_norm"]:
            shapes.update({f"{b}.norm2.weight": (d,), f"{b}.norm2.bias": (d,)})
        linear(f"{b}.ffn.net.0.proj", d, ffn)
        linear(f"{b}.ffn.net.2", ffn, d)
    linear("proj_out", d, c["out_channels"] * math.prod(p))
    return shapes


def parameter_count(config: Mapping[str, object]) -> int:
    """How many numbers WanTransformer3DModel(**config) holds."""
    return sum(math.prod(shape) for shape in expected_shapes(config).values())
