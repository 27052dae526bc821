"""Wan 2.1 image-to-video world models: a tiny I2V pipeline (transformer of 36 input channels, VAE,
CLIP image_encoder/) converts; its first-frame condition (mask ones and the anchor latent on window position
0, zeros after it) equals diffusers' `WanTransformer3DModel` fed the 36 channels built as
`WanImageToVideoPipeline` builds them; the world model rolls out four video frames per step, cached ==
recomputed in float64 across a sliding, re-anchoring window; the causal model stays strictly causal; the CLIP
tower gets no gradient in training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import vid2world as v2w
from vid2world.checkpoints.wan import load_wan_transformer
from vid2world.cli import main
from vid2world.models.backbone import Conditioning
from vid2world.models.conditioning import ConditionTokens, PromptConditioner, WanImageConditioner
from vid2world.models.stream import StreamCache
from vid2world.models.wan.codec import write_tiny_wan_vae
from vid2world.models.wan.i2v import first_frame_condition, frame_positions
from vid2world.models.wan.image import WanImageEncoder

from .test_wan_conditioning import tiny_clip_vision
from .test_wan_layouts import TINY, tiny_model

diffusers = pytest.importorskip("diffusers")
# 16 noisy + 4 mask + 16 condition channels; CLIP tokens as wide as the tiny tower (64); keys of the inner dim
I2V = {**TINY, "in_channels": 36, "out_channels": 16, "image_dim": 64, "added_kv_proj_dim": 16}


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.fixture(scope="module")
def i2v_pipeline(tmp_path_factory) -> Path:
    """transformer/, vae/, image_encoder/ and model_index.json, plus saved prompt features."""
    root = tmp_path_factory.mktemp("wan-i2v-pipeline")
    tiny_model(I2V, seed=2).save_pretrained(root / "transformer")
    write_tiny_wan_vae(root, layout="diffusers")
    tiny_clip_vision().save_pretrained(root / "image_encoder")
    (root / "model_index.json").write_text(json.dumps({
        "_class_name": "WanImageToVideoPipeline", "transformer": ["diffusers", "WanTransformer3DModel"],
        "vae": ["diffusers", "AutoencoderKLWan"], "image_encoder": ["transformers", "CLIPVisionModel"]}))
    save_file({"prompt_embeds": torch.randn(9, 12, generator=torch.Generator().manual_seed(3))},
              str(root / "prompt.safetensors"))
    return root


@pytest.fixture(scope="module")
def world_dir(i2v_pipeline, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wan-i2v-world") / "world"
    v2w.checkpoints.convert_wan_directory(i2v_pipeline, out, v2w.checkpoints.WanConversion(
        action_space=v2w.ActionSpace.continuous(2), prompt_features=str(i2v_pipeline / "prompt.safetensors")))
    return out


def diffusers_condition(anchor: torch.Tensor, frames: int) -> torch.Tensor:
    """The 20 condition channels as `WanImageToVideoPipeline.prepare_latents` lays them out (mask over the
    1 + 4 (T - 1) video frames, the first repeated 4 times, folded 4 per latent frame), with zeros where the
    pipeline puts the encoding of black frames."""
    b, _, _, h, w = anchor.shape
    video_mask = torch.ones(b, 1, 1 + 4 * (frames - 1), h, w, dtype=anchor.dtype)
    video_mask[:, :, 1:] = 0
    video_mask = torch.cat([video_mask[:, :, :1].repeat_interleave(4, dim=2), video_mask[:, :, 1:]], dim=2)
    mask = video_mask.view(b, -1, 4, h, w).transpose(1, 2)
    latent = torch.cat([anchor, anchor.new_zeros(b, anchor.shape[1], frames - 1, h, w)], dim=2)
    return torch.cat([mask, latent], dim=1)


def test_convert_and_inspect_an_i2v_pipeline(i2v_pipeline, world_dir, tmp_path, capsys):
    assert main(["inspect", str(i2v_pipeline)]) == 0
    assert "Wan 2.1 transformer (image-to-video)" in capsys.readouterr().out
    model = v2w.WorldModel.from_pretrained(world_dir)
    assert isinstance(model.conditioner, WanImageConditioner) and model.conditioner.frame_dependent
    assert model.concat_first_frame and model.frames_per_step == 4 and model.action_dim == 2
    reference = WanImageEncoder.from_pretrained(i2v_pipeline).state_dict()
    assert all(torch.equal(v, reference[k]) for k, v in model.conditioner.image_encoder.state_dict().items())
    report = json.loads((world_dir / "conversion.json").read_text())
    assert report["image_encoder"] == str(i2v_pipeline / "image_encoder")
    v2w.world.world_model.check_config(world_dir / "config.json")
    # a pipeline without image_encoder/: refused with the flag to give, converted with it
    bare = tmp_path / "bare"
    bare.mkdir()
    for part in ("transformer", "vae", "model_index.json"):
        (bare / part).symlink_to(i2v_pipeline / part)
    args = ["convert", "--base", str(bare), "--prompt-features", str(i2v_pipeline / "prompt.safetensors")]
    assert main([*args, "--out", str(tmp_path / "a")]) == 2
    assert "--image-encoder DIR" in capsys.readouterr().err
    flag = ["--image-encoder", str(i2v_pipeline / "image_encoder")]
    assert main([*args, *flag, "--out", str(tmp_path / "b")]) == 0
    assert isinstance(v2w.WorldModel.from_pretrained(tmp_path / "b").conditioner, WanImageConditioner)


def test_full_clip_condition_equals_diffusers(i2v_pipeline):
    """Frame 0 gets [ones, anchor latent], later frames [zeros, zeros]: our predict against diffusers' model
    fed the 36 channels built by hand, and two wrong conditions that must differ from it."""
    ours = load_wan_transformer(i2v_pipeline / "transformer")
    theirs = diffusers.WanTransformer3DModel.from_pretrained(i2v_pipeline / "transformer").eval()
    gen = torch.Generator().manual_seed(0)
    b, t = 2, 3
    x, anchor = torch.randn(b, 16, t, 4, 4, generator=gen), torch.randn(b, 16, 1, 4, 4, generator=gen)
    # diffusers' I2V attention takes the last 512 context tokens as text: give it exactly 512
    text, image = torch.randn(b, 512, 12, generator=gen), torch.randn(b, 257, 64, generator=gen)
    positions = frame_positions(b, t, None, x.device)
    condition = diffusers_condition(anchor, t)
    assert torch.equal(first_frame_condition(anchor, positions, (4, 4)), condition)
    steps = torch.tensor([700, 300])
    with torch.no_grad():
        mine = ours.predict(x, steps[:, None].expand(b, t), Conditioning(anchor, text, None, image))

        def reference(cond: torch.Tensor) -> torch.Tensor:
            return theirs(torch.cat([x, cond], dim=1), steps, text, encoder_hidden_states_image=image,
                          return_dict=False)[0]

        want = reference(condition)
        everywhere = torch.cat([torch.ones_like(condition[:, :4]), anchor.expand(-1, -1, t, -1, -1)], dim=1)
        wrong = [reference(everywhere), reference(torch.zeros_like(condition))]
    assert relative(mine, want) <= 1e-5
    assert all(relative(mine, w) > 1e-2 for w in wrong)


def test_stream_positions_follow_each_rows_fill():
    cache = StreamCache(batch=2, capacity=3, slots=1)
    cache.fill[:] = [0, 5]
    view = cache.view(repeat=2)
    assert frame_positions(4, 2, view, torch.device("cpu")).tolist() == [[0, 1], [5, 6], [0, 1], [5, 6]]
    anchor = torch.randn(4, 16, 1, 2, 2)
    condition = first_frame_condition(anchor, frame_positions(4, 2, view, torch.device("cpu")), (2, 2))
    assert torch.equal(condition[0, :4, 0], torch.ones(4, 2, 2))
    assert torch.equal(condition[0, 4:, 0], anchor[0, :, 0])
    assert not condition[1].any() and not condition[:, :, 1].any()
    with pytest.raises(ValueError, match=r"conditioning.concat: an image-to-video WanTransformer needs"):
        first_frame_condition(None, frame_positions(1, 1, None, torch.device("cpu")), (2, 2))


def test_world_model_rolls_out_and_caches_exactly_across_a_sliding_window(world_dir):
    model = v2w.WorldModel.from_pretrained(world_dir)
    model.backbone.double(), model.conditioner.double()  # the codec runs in float32 and hands over float64
    model.sampler = v2w.SamplerConfig.from_dict({**model.sampler.to_dict(), "window": 3})
    gen = np.random.default_rng(0)
    frames = gen.integers(0, 255, (2, 5, 32, 32, 3), dtype=np.uint8)  # 5 video frames: 2 latent frames
    actions = gen.standard_normal((2, 4 + 12, 2)).astype(np.float32)  # 4 between them, then 3 steps of 4
    step = [torch.from_numpy(actions[:, 4 + 4 * i: 8 + 4 * i]).double().reshape(2, -1) for i in range(3)]

    def generated(cache: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        sess = model.session(frames, actions[:, :4], steps=2, cache=cache, seed=1)
        tokens = [sess.evaluator.conditioning.image_context.clone()]
        out = []
        for a in step:  # the window of 3 slides from the second step on: the anchor moves, CLIP re-derived
            out.append(sess.step_latent(a))
            tokens.append(sess.evaluator.conditioning.image_context.clone())
        return torch.cat(out, dim=2), tokens

    cached, cached_tokens = generated(True)
    recomputed, recomputed_tokens = generated(False)
    assert cached.shape == (2, 16, 3, 4, 4)
    assert relative(cached, recomputed) <= 1e-10
    assert all(relative(a, b) <= 1e-10 for a, b in zip(cached_tokens, recomputed_tokens))
    assert relative(cached_tokens[-1], cached_tokens[0]) > 1e-3  # the anchor frame's tokens, not frame 0's
    sess = model.session(frames, actions[:, :4], steps=2, seed=0)
    assert sess.step(actions[:, 4:8]).shape == (2, 4, 32, 32, 3)  # one step: four video frames
    assert model.rollout(frames, actions[:, :12], steps=2, seed=0).shape == (2, 8, 32, 32, 3)
    model.sampler = v2w.SamplerConfig.from_dict({**model.sampler.to_dict(), "image_cond": "episode_first"})
    with pytest.raises(ValueError, match="image_cond 'episode_first': an image-to-video Wan model"):
        model.session(frames, actions[:, :4], steps=2)


def test_converted_model_is_strictly_causal_and_reads_the_anchor(world_dir):
    backbone = v2w.WorldModel.from_pretrained(world_dir).backbone.double()
    assert backbone.config.strictly_causal
    gen = torch.Generator().manual_seed(0)
    b, t = 1, 3
    x = torch.randn(b, 16, t, 4, 4, generator=gen, dtype=torch.float64)
    anchor = torch.randn(b, 16, 1, 4, 4, generator=gen, dtype=torch.float64)
    cond = Conditioning(anchor, torch.randn(b, 5, 12, generator=gen, dtype=torch.float64), None,
                        torch.randn(b, 257, 64, generator=gen, dtype=torch.float64))
    levels, actions = torch.full((b, t), 500), torch.randn(b, t, 8, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        out = backbone.predict(x, levels, cond, actions)
        later = x.clone()
        later[:, :, 2] += 1
        assert relative(backbone.predict(later, levels, cond, actions)[:, :, :2], out[:, :, :2]) <= 1e-12
        moved = Conditioning(anchor + 1, cond.context, None, cond.image_context)
        assert relative(backbone.predict(x, levels, moved, actions)[:, :, :1], out[:, :, :1]) > 1e-3


def test_clip_tower_stays_frozen_in_training(world_dir):
    from vid2world.train.objective import Denoiser, Objective, clip_loss, freeze_encoders

    model = v2w.WorldModel.from_pretrained(world_dir).train()
    freeze_encoders(model)
    gen = np.random.default_rng(1)
    batch = {"frames": torch.from_numpy(gen.integers(0, 255, (1, 5, 32, 32, 3), dtype=np.uint8)),
             "actions": torch.from_numpy(gen.standard_normal((1, 5, 2)).astype(np.float32))}
    loss = clip_loss(Denoiser(model), model, batch, Objective(), torch.Generator().manual_seed(0)).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert model.backbone.patch_embedding.weight.grad is not None
    assert all(p.grad is None and not p.requires_grad for p in model.conditioner.image_encoder.parameters())


def test_world_model_refuses_a_conditioner_without_image_tokens(world_dir):
    model = v2w.WorldModel.from_pretrained(world_dir)
    with pytest.raises(ValueError, match=r"image tokens of width None != WanTransformer image_dim 64"):
        v2w.WorldModel(model.backbone, model.codec, conditioner=PromptConditioner(9, 12))
    tokens = model.conditioner(torch.zeros(2, 3, 32, 32))
    assert isinstance(tokens, ConditionTokens) and tokens.context.shape == (2, 9, 12)
    assert tokens.image_context.shape == (2, 257, 64)
