"""Wan conditioning: the fixed prompt's UMT5 features (models.wan.text) against diffusers' WanPipeline, and
the I2V image tokens (models.wan.image) against transformers' CLIPVisionModel and CLIPImageProcessor (its PIL
backend), on tiny random networks and a tiny tokenizer written to a temporary directory (no network)."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

transformers = pytest.importorskip("transformers")
pytest.importorskip("diffusers")

from vid2world.models.clip import CLIP_MEAN, CLIP_STD, CLIPVisionConfig, OpenCLIPImageEncoder  # noqa: E402
from vid2world.models.wan.image import (WanImageEncoder, config_from_transformers,  # noqa: E402
                                        open_clip_from_transformers, processor_pixels, release_pixels)
from vid2world.models.wan.text import PromptFeatures, clean_prompt  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "official"
WORDS = ["a", "cat", "dog", "runs", "on", "the", "grass", "red", "ball", "and"]


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def write_text_encoder(model_dir, tokenizer_dir) -> None:
    """A UMT5 encoder of width 32 and a unigram tokenizer of 40 pieces (words, letters, the T5 specials)."""
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -15.0)]
    pieces += [("▁" + w, -1.0 - i) for i, w in enumerate(WORDS)]
    pieces += [(c, -20.0) for c in "abcdefghijklmnopqrstuvwxyz"]
    transformers.T5Tokenizer(vocab=pieces, extra_ids=0).save_pretrained(tokenizer_dir)
    config = transformers.UMT5Config(vocab_size=len(pieces), d_model=32, d_kv=8, d_ff=64, num_layers=2,
                                     num_heads=4, relative_attention_num_buckets=8)
    torch.manual_seed(0)
    transformers.UMT5EncoderModel(config).save_pretrained(model_dir)


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    """A diffusers-layout folder: text_encoder/ and tokenizer/."""
    root = tmp_path_factory.mktemp("wan_pipeline")
    write_text_encoder(root / "text_encoder", root / "tokenizer")
    return root


def diffusers_embeds(root, prompt: str, max_length: int) -> torch.Tensor:
    from diffusers import WanPipeline
    pipe = WanPipeline(tokenizer=transformers.AutoTokenizer.from_pretrained(root / "tokenizer"),
                       text_encoder=transformers.UMT5EncoderModel.from_pretrained(root / "text_encoder"),
                       vae=None, scheduler=None, transformer=None)
    with torch.no_grad():
        embeds = pipe._get_t5_prompt_embeds(prompt, max_sequence_length=max_length, device="cpu")
    return embeds[0]


@pytest.mark.parametrize("prompt", ["  a red  cat &amp;amp; the\tdog run on grass ", "zebra " * 30, ""])
def test_prompt_features_equal_diffusers(pipeline_dir, prompt):
    ours = PromptFeatures.from_encoder(pipeline_dir, prompt, max_length=24)
    theirs = diffusers_embeds(pipeline_dir, prompt, 24)
    assert ours.embeds.shape == (24, 32) and ours.prompt == prompt
    assert relative_error(ours.embeds, theirs) <= 1e-6
    n = ours.length  # the prompt's tokens (with </s>) are non-zero, every row after them zero
    assert n >= 1 and ours.embeds[:n].ne(0).any(dim=1).all() and not ours.embeds[n:].any()
    if prompt.startswith("zebra"):
        assert n == 24  # truncated to max_length


def test_encoder_folder_itself_and_batch(tmp_path):
    write_text_encoder(tmp_path, tmp_path)  # google/umt5-xxl's layout: weights and tokenizer in one folder
    features = PromptFeatures.from_encoder(tmp_path, "a cat", max_length=8)
    assert features.length == 3  # ▁a ▁cat </s>
    batch = features.batch(2, dtype=torch.bfloat16)
    assert batch.shape == (2, 8, 32) and batch.dtype == torch.bfloat16


@pytest.mark.parametrize("text", ["a\u3000b\xa0c\x85d\u2029e", "x\x1cy \x1f", "\x1e &lt;b&gt;  q ",
                                  "tab\tand\nnewline  \u200b\ufeff"])
def test_clean_prompt_equals_diffusers(text):
    from diffusers.pipelines.wan.pipeline_wan import prompt_clean
    assert clean_prompt(text) == prompt_clean(text)


def test_features_file_round_trip(tmp_path):
    features = PromptFeatures(torch.randn(6, 4).index_fill_(0, torch.tensor([4, 5]), 0), "a cat")
    path = features.save(tmp_path / "prompt.safetensors")
    back = PromptFeatures.from_file(path)
    assert torch.equal(back.embeds, features.embeds) and back.prompt == "a cat" and back.length == 4
    assert os.listdir(tmp_path) == ["prompt.safetensors"]  # no temporary left beside it
    save_file({"prompt_embeds": features.embeds[None].bfloat16()}, str(tmp_path / "batched.safetensors"))
    back = PromptFeatures.from_file(tmp_path / "batched.safetensors")
    assert back.embeds.shape == (6, 4) and back.embeds.dtype == torch.float32 and back.prompt is None


@pytest.mark.parametrize("tensors, message", [
    ({"prompt_embeds": torch.tensor([[0.0, float("nan")]])}, "'prompt_embeds' holds NaN or inf"),
    ({"prompt_embeds": torch.tensor([[float("inf"), 1.0]])}, "'prompt_embeds' holds NaN or inf"),
    ({"embeds": torch.zeros(2, 2)}, "no 'prompt_embeds' tensor"),
    ({"prompt_embeds": torch.zeros(2, 2, 2)}, "must be a float"),
    ({"prompt_embeds": torch.zeros(2, 2, dtype=torch.int64)}, "must be a float"),
])
def test_from_file_refuses(tmp_path, tensors, message):
    path = tmp_path / "bad.safetensors"
    save_file(tensors, str(path))
    with pytest.raises(ValueError, match=message) as err:
        PromptFeatures.from_file(path)
    assert str(path) in str(err.value)


def test_from_file_refuses_other_files(tmp_path):
    (tmp_path / "x.safetensors").write_text("not safetensors")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        PromptFeatures.from_file(tmp_path / "x.safetensors")


def test_from_encoder_refuses(tmp_path, monkeypatch, pipeline_dir):
    with pytest.raises(ValueError, match=f"{tmp_path}: not a UMT5 text encoder directory"):
        PromptFeatures.from_encoder(tmp_path, "a")
    (tmp_path / "config.json").write_text('{"model_type": "t5"}')
    with pytest.raises(ValueError, match="model_type is 't5', expected 'umt5'"):
        PromptFeatures.from_encoder(tmp_path, "a")
    monkeypatch.setitem(sys.modules, "transformers", None)  # as if not installed
    with pytest.raises(ValueError, match=r"text_encoder: reading a UMT5 text encoder needs transformers"):
        PromptFeatures.from_encoder(pipeline_dir, "a")


# ---------------------------------------------------------------- image

def tiny_clip_vision(projection: bool = True, **overrides):
    config = transformers.CLIPVisionConfig(hidden_size=64, intermediate_size=256, num_hidden_layers=3,
                                           num_attention_heads=2, image_size=224, patch_size=14,
                                           projection_dim=32, hidden_act="gelu", **overrides)
    torch.manual_seed(1)
    cls = transformers.CLIPVisionModelWithProjection if projection else transformers.CLIPVisionModel
    model = cls(config).eval()
    with torch.no_grad():  # LayerNorms away from 1/0, so a swapped norm cannot pass
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.3 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("projection", [True, False])
def test_image_tokens_equal_clip_vision_model_penultimate(tmp_path, projection):
    reference = tiny_clip_vision(projection)
    reference.save_pretrained(tmp_path / "image_encoder")
    ours = WanImageEncoder.from_pretrained(tmp_path).eval()  # the pipeline folder holding image_encoder/
    assert ours.config.layers == 3 and len(ours.visual.transformer.resblocks) == 2
    pixels = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        theirs = reference(pixel_values=pixels, output_hidden_states=True).hidden_states[-2]
        mine = ours(pixels)
    assert mine.shape == (2, 257, 64)
    assert relative_error(mine, theirs) <= 1e-5


def test_open_clip_tower_is_the_same_network():
    """The DynamiCrafter OpenCLIPImageEncoder, given the mapped transformers weights, gives CLIPVisionModel's
    last hidden state; WanImageEncoder loaded from its open_clip names gives the penultimate one."""
    reference = tiny_clip_vision()
    config = config_from_transformers(reference.config.to_dict())
    state = open_clip_from_transformers(reference.state_dict(), config.layers)
    tower = OpenCLIPImageEncoder(dataclasses.replace(config, text_width=16, vocab_size=8, context_length=4))
    tower.eval()
    missing, unexpected = tower.model.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith(("visual.proj", "visual.ln_post")) or "visual" not in k
                                  for k in missing)
    pixels = torch.randn(1, 3, 224, 224)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (CLIP_MEAN, CLIP_STD))
    with torch.no_grad():
        hidden = reference(pixel_values=pixels, output_hidden_states=True).hidden_states
        last = tower((pixels * std + mean) * 2 - 1)  # its preprocessing is the identity resize at 224 px
        wan = WanImageEncoder.from_open_clip(tower.state_dict(), config, prefix="model.").eval()
        penultimate = wan(pixels)
    assert relative_error(last, hidden[-1]) <= 1e-5
    assert relative_error(penultimate, hidden[-2]) <= 1e-5


def test_full_size_tower_is_dynamicrafters_and_diffusers_layout():
    """At ViT-H/14 size (on the meta device): every tensor of WanImageEncoder is in the open_clip manifest of
    DynamiCrafter's `embedder.model.` with its shape, and the transformers layout maps onto exactly them."""
    manifest = json.loads((FIXTURES / "manifest_clip_encoders.json").read_text())["keys"]
    reference_config = transformers.CLIPVisionConfig(  # laion/CLIP-ViT-H-14-laion2B-s32B-b79K's sizes
        hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=16, patch_size=14,
        projection_dim=1024, hidden_act="gelu")
    with torch.device("meta"):
        ours = WanImageEncoder().state_dict()
        reference = transformers.CLIPVisionModelWithProjection(reference_config).state_dict()
    assert config_from_transformers(reference_config.to_dict()) == CLIPVisionConfig.preset("vit-h-14")
    assert len(ours) == 377
    assert all(manifest[f"embedder.model.{k}"] == list(v.shape) for k, v in ours.items())
    mapped = open_clip_from_transformers(reference, 31)
    assert set(mapped) == set(ours) and all(mapped[k].shape == ours[k].shape for k in ours)


@pytest.mark.parametrize("shape", [(240, 320), (320, 240), (100, 150), (224, 224), (500, 333), (64, 64)])
def test_processor_pixels_equal_clip_image_processor(shape):
    processor = transformers.CLIPImageProcessorPil()  # CLIPImageProcessor's fallback without torchvision
    frame = np.random.default_rng(sum(shape)).integers(0, 256, (*shape, 3), dtype=np.uint8)
    theirs = torch.from_numpy(processor(images=Image.fromarray(frame), return_tensors="np")["pixel_values"])
    ours = processor_pixels(torch.from_numpy(frame).permute(2, 0, 1)[None])
    assert ours.shape == theirs.shape == (1, 3, 224, 224) and ours.dtype == torch.float32
    levels = ((ours - theirs).abs() * torch.tensor(CLIP_STD).view(1, 3, 1, 1) * 255).round()
    assert levels.max() <= 1 and levels.gt(0).double().mean() <= 1e-3  # PIL's fixed-point weights, rarely
    same = levels.eq(0)
    assert relative_error(ours[same], theirs[same]) <= 1e-6


def test_float_frames_are_quantised_as_diffusers_makes_pil_images():
    from diffusers.image_processor import VaeImageProcessor
    frames = torch.rand(2, 3, 90, 160) * 2.2 - 1.1  # a little outside [-1, 1]: clipped, as diffusers does
    images = VaeImageProcessor.numpy_to_pil(VaeImageProcessor.pt_to_numpy((frames / 2 + 0.5).clamp(0, 1)))
    uint8 = torch.stack([torch.from_numpy(np.array(im)).permute(2, 0, 1) for im in images])
    assert torch.equal(processor_pixels(frames), processor_pixels(uint8))


def test_release_and_processor_pixels_agree_at_224():
    frames = torch.randint(0, 256, (2, 3, 224, 224), dtype=torch.uint8)
    assert relative_error(release_pixels(frames), processor_pixels(frames)) <= 1e-6
    wide = release_pixels(torch.rand(1, 3, 90, 160) * 2 - 1)  # stretched, not cropped
    assert wide.shape == (1, 3, 224, 224)


def test_encode_runs_preprocessing_then_tower():
    encoder = WanImageEncoder(CLIPVisionConfig.preset("tiny")).eval()
    frames = torch.randint(0, 256, (1, 3, 120, 160), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.equal(encoder.encode(frames), encoder(processor_pixels(frames)))
        assert torch.equal(encoder.encode(frames, "release"), encoder(release_pixels(frames)))
    with pytest.raises(ValueError, match="preprocess must be one of"):
        encoder.encode(frames, "pil")
    with pytest.raises(ValueError, match=r"pixels must be \[B, 3, 224, 224\]"):
        encoder(torch.zeros(1, 3, 64, 64))


def test_image_encoder_refuses(tmp_path):
    config = tiny_clip_vision().config.to_dict()
    with pytest.raises(ValueError, match="hidden_act is 'quick_gelu'; this OpenCLIP tower runs only 'gelu'"):
        config_from_transformers({**config, "hidden_act": "quick_gelu"}, "cfg.json")
    with pytest.raises(ValueError, match="hidden_act is 'quick_gelu'"):  # transformers' default when left out
        config_from_transformers({k: v for k, v in config.items() if k != "hidden_act"})
    with pytest.raises(ValueError, match="no 'hidden_size'"):
        config_from_transformers({k: v for k, v in config.items() if k != "hidden_size"})
    state = tiny_clip_vision().state_dict()
    del state["vision_model.encoder.layers.1.mlp.fc1.bias"]
    with pytest.raises(ValueError, match=r"w: no 'vision_model.encoder.layers.1.mlp.fc1.bias'"):
        open_clip_from_transformers(state, 2, "w")
    with pytest.raises(ValueError, match="has shape"):
        WanImageEncoder.from_open_clip(open_clip_from_transformers(tiny_clip_vision().state_dict(), 2),
                                       CLIPVisionConfig.preset("tiny", layers=3, width=32), prefix="")
    (tmp_path / "config.json").write_text('{"model_type": "clip_vision_model", "hidden_act": "gelu"}')
    with pytest.raises(ValueError, match="no 'hidden_size'"):
        WanImageEncoder.from_pretrained(tmp_path)
