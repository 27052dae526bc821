"""The parts the bundled models are built from: the in-memory loop on cached latents, the autoencoder fit, the
action vectors by label, the view-shift metric, the sampling presets and the counted-FLOPs benchmark."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import vid2world as v2w
from vid2world.world.world_model import FastPreset, Sampling
from vid2world.cli import main
from vid2world.data.sim import make_simulator
from vid2world.metrics import horizontal_shift, view_shifts
from vid2world.models.codec import IdentityCodec, LatentCodec
from vid2world.models.vae import VAEConfig
from vid2world.train.autoencoder import AutoencoderFitConfig, calibrate_scale, encode_frames, fit_autoencoder
from vid2world.train.in_memory import EpisodeSampler, FitConfig, fit_world_model
from vid2world.train.optim import lr_at

from .test_eval_run import make_inputs

pytestmark = pytest.mark.usefixtures("one_thread")


def latent_model(actions: int | None = 3) -> v2w.WorldModel:
    torch.manual_seed(0)
    space = None if actions is None else v2w.ActionSpace.multi_hot(actions)
    cfg = v2w.UNetConfig.preset("latent-small", model_channels=16, norm_groups=8, action_space=space,
                                causal=v2w.CausalConfig("frame") if actions else None)
    return v2w.WorldModel(v2w.VideoUNet(cfg), IdentityCodec(4))


def test_cached_latents_of_unequal_episodes_train_with_ema_in_bf16():
    rng = np.random.default_rng(0)
    latents = [rng.normal(size=(n, 4, 8, 8)).astype(np.float16) for n in (5, 9, 12)]
    actions = [(rng.random((len(z), 3)) < 0.5).astype(np.float32) for z in latents]
    model = latent_model()
    before = {k: v.clone() for k, v in model.unet.state_dict().items()}
    losses = fit_world_model(model, latents, actions, FitConfig(steps=3, batch=2, clip=4, precision="bf16",
                                                                ema_decay=0.5, warmup=1, decay=True), latents=True)
    assert len(losses) == 3 and np.isfinite(losses).all() and not model.unet.training
    assert any(not torch.equal(before[k], v) for k, v in model.unet.state_dict().items())
    again = latent_model()
    assert fit_world_model(again, latents, actions, FitConfig(steps=3, batch=2, clip=4, precision="bf16",
                                                              ema_decay=0.5, warmup=1, decay=True),
                           latents=True) == losses  # same seed, same losses
    passive = latent_model(actions=None)
    out = fit_world_model(passive, latents, None, FitConfig(steps=2, batch=2, clip=4, diffusion_forcing=False),
                          latents=True)
    assert len(out) == 2


def test_episode_sampler_windows_stay_inside_each_episode():
    episodes = [np.arange(n)[:, None].repeat(2, 1).astype(np.float32)[:, :, None, None] for n in (4, 7, 30)]
    sampler = EpisodeSampler(episodes + [np.zeros((2, 2, 1, 1), np.float32)], None, 4, "latents")
    assert len(sampler.episodes) == 3  # the 2-step episode cannot hold a 4-step clip
    batch = sampler.batch(64, torch.Generator().manual_seed(0))["latents"]  # [B, C, T, 1, 1]
    steps = batch[:, 0, :, 0, 0]
    assert torch.equal(steps[:, 1:] - steps[:, :-1], torch.ones(64, 3))  # consecutive frames of one episode
    with pytest.raises(ValueError, match="no episode has 9 steps"):
        EpisodeSampler(episodes[:2], None, 9, "latents")


def test_learning_rate_warms_up_then_decays_to_a_tenth():
    assert lr_at(0, 100, 1.0, 10) == pytest.approx(0.1)
    assert lr_at(10, 100, 1.0, 10) == pytest.approx(1.0)
    assert lr_at(100, 100, 1.0, 10) == pytest.approx(0.1)
    assert lr_at(50, 100, 1.0, 10, decay=False) == 1.0


def test_autoencoder_fit_lowers_the_loss_and_calibrates_unit_variance():
    rng = np.random.default_rng(0)
    frames = [np.repeat(rng.integers(0, 255, (6, 4, 4, 3), dtype=np.uint8), 4, 1).repeat(4, 2) for _ in range(4)]
    torch.manual_seed(0)
    codec = LatentCodec(VAEConfig(ch=8, ch_mult=(1, 2), num_res_blocks=1, resolution=16, norm_groups=4),
                        scale_factor=1.0, per_frame=False, posterior="mode")
    l1: list[float] = []
    fit_autoencoder(codec, frames, AutoencoderFitConfig(steps=40, batch=8, lr=3e-3, warmup=2),
                    on_step=lambda step, d: l1.append(d["l1"]))
    assert np.mean(l1[-5:]) < 0.8 * np.mean(l1[:5])
    scale = calibrate_scale(codec, frames, count=64)
    z = encode_frames(codec, np.concatenate(frames))
    assert scale > 0 and float(z.std()) == pytest.approx(1.0, rel=0.25)


def test_a_decoder_only_fit_keeps_the_encoder_and_its_latents():
    """A codec trained on some frames, its decoder then fine-tuned on others (`zoo` recipes with a `decoder`)."""
    rng = np.random.default_rng(1)
    blocks = [np.repeat(rng.integers(0, 255, (6, 4, 4, 3), dtype=np.uint8), 4, 1).repeat(4, 2) for _ in range(6)]
    seen, new = blocks[:3], [255 - b // 2 for b in blocks[3:]]  # the new frames: other colours, other patterns
    torch.manual_seed(0)
    codec = LatentCodec(VAEConfig(ch=8, ch_mult=(1, 2), num_res_blocks=1, resolution=16, norm_groups=4),
                        scale_factor=1.0, per_frame=False, posterior="mode")
    fit_autoencoder(codec, seen, AutoencoderFitConfig(steps=40, batch=8, lr=3e-3, warmup=2))
    before = {k: v.clone() for k, v in codec.state_dict().items()}
    latents = encode_frames(codec, np.concatenate(new))
    l1: list[float] = []
    fit_autoencoder(codec, new, AutoencoderFitConfig(steps=40, batch=8, lr=3e-3, warmup=2), decoder_only=True,
                    on_step=lambda step, d: l1.append(d["l1"]))
    assert np.mean(l1[-5:]) < 0.85 * np.mean(l1[:5]), l1
    changed = {k for k, v in codec.state_dict().items() if not torch.equal(before[k], v)}
    assert changed and all(k.startswith(("vae.decoder.", "vae.post_quant_conv.")) for k in changed), sorted(changed)
    assert torch.equal(encode_frames(codec, np.concatenate(new)), latents)  # the same latents, bit for bit
    assert all(p.requires_grad for p in codec.parameters()) and not codec.vae.training


def test_action_vectors_by_label():
    sim = make_simulator("vizdoom:basic", 32)
    try:
        spec = sim.spec
    finally:
        sim.close()
    a = spec.make(buttons=["forward", "attack"], turn="-12")
    assert a.shape == (12,) and spec.describe(a) == "forward+attack turn-12"
    assert spec.describe(spec.make()) == "- turn+0"  # nothing pressed, no turn
    with pytest.raises(ValueError, match="action group 'turn' has no label '\\+13'"):
        spec.make(turn="+13")
    with pytest.raises(ValueError, match="unknown action group"):
        spec.make(jump=["x"])


def test_horizontal_shift_recovers_a_known_shift_and_its_sign():
    rng = np.random.default_rng(1)
    wide = rng.integers(0, 255, (64, 120, 3)).astype(np.float64)
    wide = (wide + np.roll(wide, 1, 1) + np.roll(wide, 1, 0) + np.roll(wide, (1, 1), (0, 1))) / 4
    wide = wide.astype(np.uint8)
    a, right, left = wide[:, 20:84], wide[:, 13:77], wide[:, 26:90]
    assert horizontal_shift(a, right) == pytest.approx(7, abs=0.5)  # content lies 7 px further right
    assert horizontal_shift(a, left) == pytest.approx(-6, abs=0.5)
    assert horizontal_shift(a, a) == pytest.approx(0, abs=1e-9)
    flat = np.full((16, 16, 3), 90, np.uint8)
    assert horizontal_shift(flat, flat) == 0.0
    assert view_shifts(np.stack([a, right, a])).round().tolist() == [7.0, -7.0]


def test_fast_and_quality_presets_pick_the_models_steps(tmp_path, capsys):
    model_dir, data = make_inputs(tmp_path)
    model = v2w.WorldModel.from_pretrained(model_dir)
    assert model.sampling("fast").steps == model.sampler.fast.steps and model.sampling("quality").steps == 2
    assert model.sampling("fast").guidance == model.sampler.guidance.scale  # no fast guidance: the default
    quick = v2w.WorldModel(model.unet, sampler=v2w.SamplerConfig(steps=5, fast=FastPreset(2, 1.0, "bf16")))
    assert quick.sampling("fast") == Sampling(2, 1.0, "bf16") and quick.sampling(None).precision == "fp32"
    # the one place a preset meets a caller's values: the preset first, then each value given
    assert quick.sampling("fast", steps=3, cache=False) == Sampling(3, 1.0, "bf16", cache=False)
    with pytest.raises(ValueError, match="fast.precision must be one of"):
        v2w.SamplerConfig(fast=FastPreset(precision="fp8"))
    legacy = {**quick.sampler.to_dict(), "fast_steps": 4, "fast_precision": "bf16"}  # config.json before `fast`
    del legacy["fast"]
    assert v2w.SamplerConfig.from_dict(legacy).fast == FastPreset(4, None, "bf16")
    with pytest.raises(ValueError, match="sampling preset must be one of"):
        model.sampling("turbo")
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(model_dir), "--data", str(data), "--protocol", "generic", "--context",
                 "1", "--horizon", "2", "--windows", "2", "--fast", "--out", str(out), "--no-progress"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["protocol"]["steps"] == model.sampler.fast.steps and "--fast" in results["command"]
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", "--model", str(model_dir), "--data", str(data), "--protocol", "generic", "--fast", "--steps",
              "3", "--out", str(out)])
    assert exit_.value.code == 2 and "argument --steps: not allowed with argument --fast" in capsys.readouterr().err


def test_bench_train_counts_flops_and_compares_with_the_matmul_rates(tmp_path, capsys):
    assert main(["bench", "train", "--cached-latents", "--preset", "pixel-tiny", "--latent", "8x8", "--batch", "2",
                 "--frames", "4", "--steps", "3", "--warmup", "1", "--action-dim", "3", "--no-checkpointing",
                 "--no-progress", "--json", str(tmp_path / "b.json")]) == 0
    r = json.loads((tmp_path / "b.json").read_text())
    assert r["flops_per_step"] > 1e8 and r["achieved_gflops"] == pytest.approx(r["flops_per_step"] / r["step_s"] / 1e9)
    assert set(r["matmul_gflops"]) == {"fp32", "bf16"} and all(v > 0 for v in r["matmul_gflops"].values())
    assert r["fraction_of_matmul"]["fp32"] == pytest.approx(r["achieved_gflops"] / r["matmul_gflops"]["fp32"])
    # the profiled step splits into the FLOP kernels and the rest; the kernels alone run faster than the step
    share = r["profiled_step"]
    assert share["flop_kernels_s"] > 0 and share["other_s"] > 0
    assert r["flop_kernels_gflops"] == pytest.approx(r["flops_per_step"] / share["flop_kernels_s"] / 1e9)
    assert r["flop_kernels_gflops"] > r["flops_per_step"] / (share["flop_kernels_s"] + share["other_s"]) / 1e9
    assert 0 < r["batch_s"] < r["step_s"]  # the data loading is timed apart from the step
    assert main(["bench", "train", "--compile", "--steps", "2", "--warmup", "1"]) == 2  # compiles the in-memory loop
    # --channels weighs a narrower or wider UNet of the same preset: parameters go with the width squared
    assert r["model_channels"] == 32 and r["fp16_mib"] == pytest.approx(r["trainable_parameters"] * 2 / 2 ** 20)
    assert main(["bench", "train", "--cached-latents", "--preset", "pixel-tiny", "--latent", "8x8", "--batch", "1",
                 "--frames", "4", "--steps", "2", "--warmup", "1", "--action-dim", "3", "--no-checkpointing",
                 "--channels", "16", "--channel-mult", "1,1", "--no-progress", "--json",
                 str(tmp_path / "narrow.json")]) == 0
    narrow = json.loads((tmp_path / "narrow.json").read_text())
    assert narrow["model_channels"] == 16 and narrow["levels"] == [1, 1] and r["levels"] == [1, 2]
    assert narrow["flops_per_step"] < r["flops_per_step"] / 2
    assert 4 < r["trainable_parameters"] / narrow["trainable_parameters"] < 16  # a quarter the width, a narrower level
    assert main(["bench", "train", "--cached-latents", "--preset", "pixel-tiny", "--channels", "36"]) == 2
    assert "--channels 36: preset 'pixel-tiny' needs a multiple of its norm groups (8)" in capsys.readouterr().err


def test_fit_compiles_the_denoiser_it_steps_when_asked(monkeypatch):
    """`FitConfig.compile` hands the trainable denoiser to torch.compile and steps through what it returns (compiling
    for real takes minutes on 2 cores: `scripts/cpu_training_kernels.py --compile` measures it)."""
    from vid2world.train import in_memory
    from vid2world.train.objective import Denoiser

    compiled = []

    def fake_compile(module):
        compiled.append(module)
        calls = []

        def forward(*args):
            calls.append(len(args))
            return module(*args)
        forward.calls = calls
        compiled.append(forward)
        return forward

    monkeypatch.setattr(in_memory.torch, "compile", fake_compile)
    rng = np.random.default_rng(0)
    latents = [rng.normal(size=(6, 4, 8, 8)).astype(np.float16) for _ in range(2)]
    actions = [(rng.random((6, 3)) < 0.5).astype(np.float32) for _ in range(2)]
    fit = FitConfig(steps=2, batch=2, clip=4)
    eager = fit_world_model(latent_model(), latents, actions, fit, latents=True)
    assert not compiled
    stepped = fit_world_model(latent_model(), latents, actions, FitConfig(steps=2, batch=2, clip=4, compile=True),
                              latents=True)
    assert isinstance(compiled[0], Denoiser) and len(compiled[1].calls) >= 2  # every step went through it
    assert stepped == eager


def test_ablation_arms_pair_on_the_same_windows():
    """`zoo ablate`'s arms against their reference: seeds averaged per window first, then `eval.paired`; seeds ahead
    counted run against the run of the same seed; arms scored on other windows refuse to pair."""
    from vid2world.zoo.ablate import pair_cells

    def cell(per_seed_psnr, ids=("a", "b", "c")):
        return {"seeds": [{"psnr": float(np.mean(p)), "window_ids": list(ids),
                           "per_window": {"psnr": list(p), "ssim": [0.5 + 0.01 * x for x in p]}}
                          for p in per_seed_psnr]}

    ref = cell([[20.0, 21.0, 22.0], [20.0, 21.0, 22.0]])
    mine = cell([[21.0, 21.0, 23.0], [19.0, 21.5, 22.5]])  # seed 0 ahead, seed 1 level on the mean (21.0 each)
    got = pair_cells(mine, ref)
    assert got["psnr"]["difference"] == pytest.approx(np.mean([0.0, 0.25, 0.75]))
    assert got["psnr"]["wins"] == 2 and got["psnr"]["windows"] == 3 and got["seeds_ahead"] == 1
    assert got["ssim"]["difference"] == pytest.approx(0.01 * got["psnr"]["difference"])
    with pytest.raises(ValueError, match="different windows"):
        pair_cells(cell([[20.0, 21.0, 22.0]], ids=("a", "b", "d")), ref)
