"""OpenCLIP towers and Resampler: exact checkpoint key lists, and forward passes against hand-written references."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vid2world.models.clip import (CLIP_MEAN, CLIP_STD, EOT_TOKEN, SOT_TOKEN, CLIPTextConfig, CLIPVisionConfig,
                                   OpenCLIPImageEncoder, OpenCLIPTextEncoder, clip_preprocess, empty_prompt_tokens)
from vid2world.models.resampler import Resampler, ResamplerConfig

from .conftest import load_json


def _randomize(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random values for every parameter (zero biases and unit norms would hide a missing term)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=g))
            if name.endswith("weight") and p.ndim == 1:  # LayerNorm gains around 1
                p.add_(1.0)
    return module.eval()


def _shapes(module: torch.nn.Module, prefix: str) -> dict[str, list[int]]:
    return {prefix + k: list(v.shape) for k, v in module.state_dict().items()}


def _assert_same_keys(got: dict[str, list[int]], expected: dict[str, list[int]]) -> None:
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    misshaped = {k: (got[k], expected[k]) for k in set(got) & set(expected) if got[k] != expected[k]}
    assert not missing and not extra and not misshaped, (missing[:5], extra[:5], misshaped)


# ---- checkpoint keys at full size (meta device: no memory, no init cost) ------------------------------------------

@pytest.mark.parametrize("prefix, build", [
    ("cond_stage_model.", lambda: OpenCLIPTextEncoder(CLIPTextConfig.preset("vit-h-14"))),
    ("embedder.", lambda: OpenCLIPImageEncoder(CLIPVisionConfig.preset("vit-h-14"))),
])
def test_clip_tower_keys_equal_manifest(official: Path, prefix: str, build) -> None:
    manifest = load_json(official / "manifest_clip_encoders.json")
    expected = {k: v for k, v in manifest["keys"].items() if k.startswith(prefix)}
    assert len(expected) == manifest["num_keys"][prefix.rstrip(".")]
    with torch.device("meta"):
        tower = build()
    got = _shapes(tower, prefix)
    _assert_same_keys(got, expected)
    assert list(got) == list(expected)  # open_clip's order too


def test_resampler_keys_and_size_equal_manifest(official: Path) -> None:
    manifest = load_json(official / "manifest_image_proj_model.json")
    config = ResamplerConfig.preset("dynamicrafter")
    assert config.to_dict() == manifest["constructor_kwargs"]
    with torch.device("meta"):
        model = Resampler(config)
    _assert_same_keys(_shapes(model, manifest["prefix_in_model_ckpt"]), manifest["keys"])
    assert sum(p.numel() for p in model.parameters()) == manifest["num_parameters"]


# ---- preprocessing -------------------------------------------------------------------------------------------------

def _diffusers_resize():
    """diffusers' `_resize_with_antialiasing` (a copy of kornia's antialiased resize), run unmodified.

    Importing its module needs `transformers`; when that is absent, its helper functions are taken from the source.
    """
    diffusers = pytest.importorskip("diffusers")
    try:
        from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import (
            _resize_with_antialiasing)
        return _resize_with_antialiasing
    except ImportError:
        path = Path(diffusers.__file__).parent / "pipelines/stable_video_diffusion/pipeline_stable_video_diffusion.py"
        names = {"_resize_with_antialiasing", "_compute_padding", "_filter2d", "_gaussian", "_gaussian_blur2d"}
        tree = ast.parse(path.read_text())
        funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in names]
        assert {f.name for f in funcs} == names
        namespace = {"torch": torch}
        exec(compile(ast.Module(body=funcs, type_ignores=[]), str(path), "exec"), namespace)
        return namespace["_resize_with_antialiasing"]


def _normalize(x: torch.Tensor) -> torch.Tensor:
    return ((x + 1) / 2 - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)


@pytest.mark.parametrize("hw", [(320, 512), (512, 896), (64, 64)])  # (512, 896): an even kernel made odd
def test_clip_preprocess_matches_diffusers_resize(hw) -> None:
    resize = _diffusers_resize()
    x = torch.rand(2, 3, *hw, generator=torch.Generator().manual_seed(1)) * 2 - 1
    expected = _normalize(resize(x, (224, 224), interpolation="bicubic", align_corners=True))
    got = clip_preprocess(x)
    assert got.shape == (2, 3, 224, 224)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_clip_preprocess_blurs_only_when_downscaling() -> None:
    x = torch.rand(1, 3, 448, 448, generator=torch.Generator().manual_seed(2)) * 2 - 1
    plain = _normalize(F.interpolate(x, size=(224, 224), mode="bicubic", align_corners=True))
    assert (clip_preprocess(x) - plain).abs().max() > 1e-2  # antialiased
    torch.testing.assert_close(clip_preprocess(x, antialias=False), plain)
    same = x[..., :224, :224]
    assert torch.equal(clip_preprocess(same), _normalize(same))  # no resampling at the target size


# ---- text tower ----------------------------------------------------------------------------------------------------

def _reference_blocks(x: torch.Tensor, blocks, heads: int, mask: torch.Tensor | None) -> torch.Tensor:
    """open_clip's residual blocks with explicit matmuls."""
    for blk in blocks:
        width = x.shape[-1]
        h = F.layer_norm(x, (width,), blk.ln_1.weight, blk.ln_1.bias, 1e-5)
        q, k, v = (h @ blk.attn.in_proj_weight.T + blk.attn.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (t.reshape(*t.shape[:2], heads, -1).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(width // heads)
        if mask is not None:
            scores = scores + mask
        a = (scores.softmax(-1) @ v).transpose(1, 2).reshape(x.shape)
        x = x + a @ blk.attn.out_proj.weight.T + blk.attn.out_proj.bias
        h = F.layer_norm(x, (width,), blk.ln_2.weight, blk.ln_2.bias, 1e-5)
        h = F.gelu(h @ blk.mlp.c_fc.weight.T + blk.mlp.c_fc.bias)
        x = x + h @ blk.mlp.c_proj.weight.T + blk.mlp.c_proj.bias
    return x


def _tiny_text() -> OpenCLIPTextEncoder:
    return _randomize(OpenCLIPTextEncoder(CLIPTextConfig.preset("tiny")))


def _tokens(batch: int = 2, seed: int = 3) -> torch.Tensor:
    return torch.randint(0, 49408, (batch, 77), generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def test_text_tower_equals_reference() -> None:
    enc = _tiny_text()
    m, tokens = enc.model, _tokens()
    x = m.token_embedding.weight[tokens] + m.positional_embedding
    causal = torch.triu(torch.full((77, 77), float("-inf")), diagonal=1)
    penultimate = _reference_blocks(x, m.transformer.resblocks[:-1], 2, causal)
    expected = F.layer_norm(penultimate, (32,), m.ln_final.weight, m.ln_final.bias, 1e-5)
    got = enc(tokens)
    assert got.shape == (2, 77, 32)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    # the last block is what "penultimate" skips: using it would give a different answer
    last = _reference_blocks(x, m.transformer.resblocks, 2, causal)
    assert not torch.allclose(got, F.layer_norm(last, (32,), m.ln_final.weight, m.ln_final.bias, 1e-5), atol=1e-3)


@torch.no_grad()
def test_text_tower_is_causal() -> None:
    enc, tokens, j = _tiny_text(), _tokens(), 10
    changed = tokens.clone()
    changed[:, j] = (changed[:, j] + 1) % 49408
    a, b = enc(tokens), enc(changed)
    assert torch.equal(a[:, :j], b[:, :j])
    assert (a[:, j:] - b[:, j:]).abs().amax(dim=-1).min() > 1e-4  # every later position sees token j


@torch.no_grad()
def test_empty_prompt() -> None:
    tokens = empty_prompt_tokens(2)
    assert tokens.dtype == torch.int64 and tokens.shape == (2, 77)
    assert tokens[:, :2].tolist() == [[SOT_TOKEN, EOT_TOKEN]] * 2 == [[49406, 49407]] * 2
    assert not tokens[:, 2:].any()
    assert torch.equal(OpenCLIPTextEncoder.empty_prompt_tokens(1), tokens[:1])
    enc = _tiny_text()
    torch.testing.assert_close(enc.encode_empty(2), enc(tokens))
    with pytest.raises(ValueError, match="77"):
        enc(tokens[:, :20])


# ---- image tower ---------------------------------------------------------------------------------------------------

def _tiny_image() -> OpenCLIPImageEncoder:
    return _randomize(OpenCLIPImageEncoder(CLIPVisionConfig.preset("tiny")))


@torch.no_grad()
def test_image_tower_shape_for_video_frames() -> None:
    enc = _tiny_image()
    out = enc(torch.rand(2, 3, 320, 512) * 2 - 1)
    assert out.shape == (2, 257, 64)
    assert torch.isfinite(out).all()


@torch.no_grad()
def test_image_tower_equals_reference() -> None:
    enc = _tiny_image()
    v = enc.model.visual
    images = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(4)) * 2 - 1
    patches = F.unfold(_normalize(images), kernel_size=14, stride=14).transpose(1, 2)  # [B, 256, 3*14*14]
    x = patches @ v.conv1.weight.reshape(64, -1).T
    x = torch.cat([v.class_embedding.expand(2, 1, 64), x], dim=1) + v.positional_embedding
    x = F.layer_norm(x, (64,), v.ln_pre.weight, v.ln_pre.bias, 1e-5)
    expected = _reference_blocks(x, v.transformer.resblocks, 2, None)
    torch.testing.assert_close(enc(images), expected, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_image_tower_ignores_ln_post_and_proj() -> None:
    enc = _tiny_image()
    images = torch.rand(1, 3, 224, 224) * 2 - 1
    before = enc(images)
    v = enc.model.visual
    v.ln_post.weight.mul_(3.0).add_(1.0)
    v.ln_post.bias.add_(5.0)
    v.proj.mul_(-7.0)
    assert torch.equal(enc(images), before)


# ---- resampler -----------------------------------------------------------------------------------------------------

def _reference_resampler(model: Resampler, x: torch.Tensor) -> torch.Tensor:
    c = model.config
    ln = lambda t, norm: F.layer_norm(t, (t.shape[-1],), norm.weight, norm.bias, 1e-5)
    latents = model.latents.expand(x.shape[0], -1, -1)
    x = x @ model.proj_in.weight.T + model.proj_in.bias
    for attn, ff in model.layers:
        xn, ln_ = ln(x, attn.norm1), ln(latents, attn.norm2)
        q = ln_ @ attn.to_q.weight.T
        k, v = (torch.cat([xn, ln_], dim=1) @ attn.to_kv.weight.T).chunk(2, dim=-1)
        q, k, v = (t.reshape(*t.shape[:2], c.heads, c.dim_head) for t in (q, k, v))
        w = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(c.dim_head)
        out = torch.einsum("bhqk,bkhd->bqhd", w.softmax(-1), v).flatten(2)
        latents = latents + out @ attn.to_out.weight.T
        h = F.gelu(ln(latents, ff[0]) @ ff[1].weight.T)
        latents = latents + h @ ff[3].weight.T
    return ln(latents @ model.proj_out.weight.T + model.proj_out.bias, model.norm_out)


@torch.no_grad()
def test_resampler_equals_reference_and_shape() -> None:
    model = _randomize(Resampler(ResamplerConfig.preset("tiny")))
    x = torch.randn(2, 257, 64, generator=torch.Generator().manual_seed(5))
    out = model(x)
    assert out.shape == (2, 16 * 6, 32)
    torch.testing.assert_close(out, _reference_resampler(model, x), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="64"):
        model(x[..., :10])


@torch.no_grad()
def test_resampler_is_permutation_invariant_over_image_tokens() -> None:
    model = _randomize(Resampler(ResamplerConfig.preset("tiny", depth=2)))
    x = torch.randn(2, 257, 64, generator=torch.Generator().manual_seed(6))
    perm = torch.randperm(257, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(model(x[:, perm]), model(x), atol=1e-5, rtol=1e-5)


# ---- configs -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls, names", [(CLIPTextConfig, ("vit-h-14", "tiny")),
                                        (CLIPVisionConfig, ("vit-h-14", "tiny")),
                                        (ResamplerConfig, ("dynamicrafter", "tiny"))])
def test_config_round_trip_and_errors(cls, names) -> None:
    for name in names:
        config = cls.preset(name)
        assert cls.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert cls.preset(names[1]) != cls.preset(names[0])
    with pytest.raises(ValueError, match=r"unknown .*'bogus'.*valid keys.*'heads'"):
        cls.from_dict({**cls.preset(names[0]).to_dict(), "bogus": 1})
    with pytest.raises(ValueError, match="available"):
        cls.preset("no-such-preset")


def test_config_presets_and_validation() -> None:
    assert CLIPTextConfig.preset("tiny").to_dict() == dict(
        vocab_size=49408, context_length=77, width=32, heads=2, layers=2, mlp_ratio=4.0, embed_dim=32,
        skip_last_layers=1)
    assert CLIPVisionConfig.preset("tiny").num_tokens == CLIPVisionConfig().num_tokens == 257
    assert ResamplerConfig.preset("tiny").num_latents == 96
    with pytest.raises(ValueError, match="divisible"):
        CLIPTextConfig(width=30, heads=4)
    with pytest.raises(ValueError, match="divisible"):
        CLIPVisionConfig.preset("tiny", heads=3)
    with pytest.raises(ValueError, match="skip_last_layers"):
        CLIPTextConfig(layers=2, skip_last_layers=2)
    with pytest.raises(ValueError, match="patch_size"):
        CLIPVisionConfig(image_size=220)
    with pytest.raises(ValueError, match="depth"):
        ResamplerConfig(depth=0)
