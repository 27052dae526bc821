"""Wan 2.1 through vid2world's front door: `load_video_model` detects the kind (Wan directories in both layouts,
DynamiCrafter files), `model(x, timesteps, context=ctx)` is diffusers' forward, `causalize` takes any backbone,
`vid2world convert` / `inspect` handle a Wan pipeline, and the converted world model rolls out with its cache."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import vid2world as v2w
from vid2world.cli import main
from vid2world.models.wan import WanTransformer
from vid2world.models.wan.codec import write_tiny_wan_vae
from vid2world.testing import random_parts, write_checkpoint

from .test_wan_layouts import TINY, tiny_model, write_original

diffusers = pytest.importorskip("diffusers")
WAN_16 = {**TINY, "in_channels": 16, "out_channels": 16}  # the Wan VAE's 16 latent channels


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("layout", ["diffusers", "original"])
def test_load_video_model_detects_a_wan_directory_and_equals_diffusers(tmp_path, layout):
    reference = tiny_model(TINY, seed=1).eval()
    if layout == "diffusers":
        reference.save_pretrained(tmp_path / "wan")
    else:
        write_original(tmp_path / "wan", reference, shards=2)
    model = v2w.load_video_model(tmp_path / "wan")
    assert isinstance(model, WanTransformer) and isinstance(model, v2w.Backbone) and not model.is_causal
    gen = torch.Generator().manual_seed(0)
    x, ctx = torch.randn(2, 4, 3, 8, 8, generator=gen), torch.randn(2, 6, 12, generator=gen)
    t = torch.tensor([999, 250])
    with torch.no_grad():
        want = reference(x, t, ctx, return_dict=False)[0]
        assert relative(model(x, t, context=ctx), want) <= 1e-5


def test_load_video_model_reads_a_dynamicrafter_unet_and_names_what_it_cannot(tmp_path):
    spec = v2w.checkpoints.model_spec("tiny")
    path = write_checkpoint(tmp_path / "model.ckpt", random_parts(spec, parts=("unet",)))
    unet = v2w.load_video_model(path)
    assert isinstance(unet, v2w.VideoUNet) and not unet.is_causal
    (tmp_path / "empty").mkdir()
    with pytest.raises(v2w.CheckpointError, match=r"empty: a directory holding no video model"):
        v2w.load_video_model(tmp_path / "empty")


def test_causalize_takes_any_backbone_and_groups_wan_actions():
    wan = WanTransformer(v2w.models.wan.WanConfig.from_diffusers(TINY))
    causal, report = v2w.causalize(wan, action_space=v2w.ActionSpace.continuous(3))
    assert causal.is_causal and causal.config.action_space.dim == 12  # four video frames per latent frame
    assert report.new and all(k.startswith("condition_embedder.action_embedder.") for k in report.new)
    gen = torch.Generator().manual_seed(0)
    causal = causal.double()
    x, ctx = (torch.randn(1, 4, 3, 8, 8, generator=gen, dtype=torch.float64),
              torch.randn(1, 5, 12, generator=gen, dtype=torch.float64))
    t, actions = torch.tensor([500]), torch.randn(1, 3, 12, generator=gen, dtype=torch.float64)
    with torch.no_grad():  # the first frame sees only itself; the new action layers start at zero
        first = causal(x, t, context=ctx, actions=actions)[:, :, :1]
        assert relative(first, causal(x[:, :, :1], t, context=ctx)) <= 1e-12
    with pytest.raises(ValueError, match="UNet options"):
        v2w.causalize(wan, temporal_norm="causal")


@pytest.fixture(scope="module")
def wan_pipeline(tmp_path_factory):
    """A tiny Wan pipeline directory: transformer/, vae/ and model_index.json, plus saved prompt features."""
    root = tmp_path_factory.mktemp("wan-pipeline")
    tiny_model(WAN_16, seed=2).save_pretrained(root / "transformer")
    write_tiny_wan_vae(root, layout="diffusers")
    (root / "model_index.json").write_text(json.dumps({"_class_name": "WanPipeline",
                                                       "transformer": ["diffusers", "WanTransformer3DModel"],
                                                       "vae": ["diffusers", "AutoencoderKLWan"]}))
    save_file({"prompt_embeds": torch.randn(9, 12, generator=torch.Generator().manual_seed(3))},
              str(root / "prompt.safetensors"))
    return root


def test_convert_and_inspect_a_wan_pipeline(wan_pipeline, tmp_path, capsys):
    assert main(["inspect", str(wan_pipeline)]) == 0
    shown = capsys.readouterr().out
    assert "Wan 2.1 transformer (text-to-video), diffusers layout" in shown and "pipeline parts beside it: vae" in shown
    out = tmp_path / "world"
    assert main(["convert", "--base", str(wan_pipeline), "--action-dim", "2", "--prompt-features",
                 str(wan_pipeline / "prompt.safetensors"), "--out", str(out)]) == 0
    assert main(["inspect", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "Wan transformer" in shown and "causal: frame-causal attention" in shown and "fixed-prompt" in shown
    model = v2w.WorldModel.from_pretrained(out)
    assert model.frames_per_step == 4 and model.action_dim == 2
    assert model.schedule.config.prediction == "flow"
    assert torch.equal(model.conditioner.prompt_embeds[0], torch.randn(9, 12, generator=torch.Generator().manual_seed(3)))
    assert main(["convert", "--base", str(wan_pipeline), "--backbone", "dynamicrafter", "--out",
                 str(tmp_path / "x")]) == 2
    assert "holds a wan2.1 model" in capsys.readouterr().err


def test_converted_wan_world_model_steps_four_frames_and_caches_exactly(wan_pipeline, tmp_path):
    out = tmp_path / "world"
    v2w.checkpoints.convert_wan_directory(wan_pipeline, out, v2w.checkpoints.WanConversion(
        action_space=v2w.ActionSpace.continuous(2), prompt_features=str(wan_pipeline / "prompt.safetensors")))
    model = v2w.WorldModel.from_pretrained(out)
    model.backbone.double()
    gen = np.random.default_rng(0)
    frames = gen.integers(0, 255, (2, 5, 16, 16, 3), dtype=np.uint8)  # 5 video frames: 2 latent frames
    actions = gen.standard_normal((2, 4 + 8, 2)).astype(np.float32)  # 4 between them, then 2 steps of 4
    with torch.no_grad():
        latents, frame_actions, context = model.encode_context(frames, actions[:, :4])
        latents = latents.double()

        def generated(cache: bool) -> torch.Tensor:
            sess = model.latent_session(latents, frame_actions.double(), steps=3, cache=cache, seed=1,
                                        context=context.double())
            step = [torch.from_numpy(actions[:, 4 + 4 * i: 8 + 4 * i]).double().reshape(2, -1) for i in range(2)]
            return torch.cat([sess.step_latent(a) for a in step], dim=2)

        cached, recomputed = generated(True), generated(False)
    assert cached.shape == (2, 16, 2, 2, 2)
    assert relative(cached, recomputed) <= 1e-10
    sess = model.session(frames, actions[:, :4], steps=2, seed=0)
    assert sess.step(actions[:, 4:8]).shape == (2, 4, 16, 16, 3)  # one step: four video frames
    with pytest.raises(ValueError, match=r"action: expected \[B=2, 4, A=2\]"):
        sess.step(actions[:, 4])
    with pytest.raises(ValueError, match=r"context_frames: video frames: expected 1 \+ 4"):
        model.session(frames[:, :4], actions[:, :3])
    rolled = model.rollout(frames, actions, steps=2, seed=0)
    assert rolled.shape == (2, 8, 16, 16, 3)


def test_wan_config_fine_tunes_a_converted_world_model(wan_pipeline, tmp_path):
    """configs/wan2.1-t2v-1.3b-rt1.yaml on a tiny converted Wan world model and a small dataset with RT-1's 13-d
    continuous actions: 9-frame clips are 3 latent frames; the VAE and the prompt features stay frozen."""
    from pathlib import Path

    from vid2world.data.spec import ActionSpec, DatasetMeta
    from vid2world.data.writer import DatasetWriter
    from vid2world.train import load_config, train

    world = tmp_path / "world"
    v2w.checkpoints.convert_wan_directory(wan_pipeline, world, v2w.checkpoints.WanConversion(
        action_space=v2w.ActionSpace.continuous(13), prompt_features=str(wan_pipeline / "prompt.safetensors")))
    before = v2w.WorldModel.from_pretrained(world)
    rng = np.random.default_rng(0)
    meta = DatasetMeta("rt1-like", 3.0, (32, 32), ActionSpec.continuous([f"a{i}" for i in range(13)]))
    with DatasetWriter(tmp_path / "rt1", meta) as writer:
        for _ in range(3):
            writer.add(rng.integers(0, 255, (12, 32, 32, 3), dtype=np.uint8), rng.normal(size=(12, 13)))
    root = Path(__file__).resolve().parents[1]
    config = load_config(root / "configs" / "wan2.1-t2v-1.3b-rt1.yaml", [
        f"model.init={world}", f"data.path={tmp_path / 'rt1'}", f"out={tmp_path / 'run'}", "data.size=[32,32]",
        "data.length=9", "data.workers=0", "train.steps=2", "train.precision=bf16", "optim.lr=1e-3",
        "log.sample_every=0", "log.tensorboard=false"])
    model = v2w.WorldModel.from_pretrained(train(config, progress=False).model_dir)
    assert model.backbone.kind == "wan2.1" and model.action_dim == 13 and model.window == 3
    assert all(torch.equal(a, b) for a, b in zip(model.codec.state_dict().values(),
                                                 before.codec.state_dict().values())), "the VAE must stay frozen"
    assert torch.equal(model.conditioner.prompt_embeds, before.conditioner.prompt_embeds)
    moved = [k for k, v in model.backbone.state_dict().items() if not torch.equal(v, before.backbone.state_dict()[k])]
    assert any(k.startswith("condition_embedder.action_embedder.") for k in moved), "the action MLP trains"


def test_the_environment_refuses_a_model_that_makes_four_frames_a_step(wan_pipeline, tmp_path):
    pytest.importorskip("gymnasium")
    out = tmp_path / "world"
    v2w.checkpoints.convert_wan_directory(wan_pipeline, out, v2w.checkpoints.WanConversion(
        action_space=v2w.ActionSpace.continuous(2), prompt_features=str(wan_pipeline / "prompt.safetensors")))
    model = v2w.WorldModel.from_pretrained(out)
    with pytest.raises(ValueError, match="makes 4 frames per step"):
        v2w.WorldModelEnv(model)
