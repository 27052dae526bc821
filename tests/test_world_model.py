"""WorldModel rollouts: the cache is exact, guidance is the formula, persistence round-trips, bad input is named."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import vid2world as v2w
from vid2world.testing import randomize_weights
from vid2world.diffusion.guidance import GuidanceConfig, Moments, combine, unconditional_mask


def pixel_unet(norm: str = "frame", action_space=v2w.ActionSpace.continuous(2), seed: int = 0, **overrides):
    cfg = v2w.UNetConfig.preset("tiny", in_channels=3, out_channels=3, context_dim=None, image_cross_attention=False,
                                fs_condition=False, temporal_length=16, attention_resolutions=(2,),
                                action_space=action_space, causal=v2w.CausalConfig(norm), **overrides)
    return randomize_weights(v2w.VideoUNet(cfg), seed).eval()


def frames(b=2, t=2, size=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, t, size, size, 3), generator=gen, dtype=torch.uint8)


def assert_close_relative(a, b, rtol):
    """max |a - b| <= rtol * max |b|: two float64 computations in a different order (cache vs recompute, one batched
    call vs two) differ by rounding that scales with the values (measured: ~5e-15 relative), so the bound does too."""
    error, scale = (a - b).abs().max().item(), b.abs().max().item()
    assert error <= rtol * scale, f"max |difference| {error:.3g} exceeds {rtol:g} x max |value| {scale:.3g}"


def latents_of(wm, context, actions, n, cache, seed=0, **settings):
    """Context latents and the n generated ones [B, C, T0 + n, H, W] (a session keeps only its window: collect)."""
    sess = wm.session(context, actions[:, : context.shape[1] - 1], seed=seed, cache=cache, **settings)
    start = wm.encode_context(context, actions[:, : context.shape[1] - 1], seed)[0]
    return torch.cat([start] + [sess.step_latent(actions[:, context.shape[1] - 1 + i]) for i in range(n)], dim=2)


@pytest.mark.parametrize("norm", ["frame", "causal"])
def test_cached_rollout_equals_recomputed_float64(norm):
    wm = v2w.WorldModel(pixel_unet(norm).double(), sampler=v2w.SamplerConfig(steps=4))
    context, actions = frames(t=2), torch.randn(2, 16, 2, generator=torch.Generator().manual_seed(1))
    cached = latents_of(wm, context, actions, 14, cache=True)
    recomputed = latents_of(wm, context, actions, 14, cache=False)
    assert cached.shape[2] == 16
    assert_close_relative(cached, recomputed, 1e-12)


@pytest.mark.parametrize("norm", ["frame", "causal"])
def test_cached_rollout_equals_recomputed_float32(norm):
    # Outputs of a random-weight UNet reach |x| ~ 5, so float32 rounding grows over 16 frames x steps; relative 4e-6.
    wm = v2w.WorldModel(pixel_unet(norm), sampler=v2w.SamplerConfig(steps=4))
    context, actions = frames(t=1), torch.randn(2, 16, 2, generator=torch.Generator().manual_seed(1))
    cached = latents_of(wm, context, actions, 15, cache=True)
    recomputed = latents_of(wm, context, actions, 15, cache=False)
    scale = recomputed.abs().max().item()
    assert (cached - recomputed).abs().max().item() <= 1e-5 * max(1.0, scale)


def test_clip_norm_needs_recompute():
    wm = v2w.WorldModel(pixel_unet("clip"), sampler=v2w.SamplerConfig(steps=2))
    with pytest.raises(ValueError, match="cache=True needs a strictly causal backbone"):
        wm.session(frames(t=1), seed=0)
    out = wm.rollout(frames(t=1), torch.zeros(2, 3, 2), cache=False)
    assert out.shape == (2, 3, 8, 8, 3) and out.dtype == torch.uint8


def test_rollout_shapes_numpy_in_numpy_out_and_seeds():
    wm = v2w.WorldModel(pixel_unet(), sampler=v2w.SamplerConfig(steps=3))
    ctx = frames(t=3).numpy()
    actions = np.random.default_rng(0).integers(-1, 2, (2, 6, 2)).astype(np.float32)  # T0-1+N = 2+4
    a = wm.rollout(ctx, actions, seed=7)
    assert isinstance(a, np.ndarray) and a.shape == (2, 4, 8, 8, 3) and a.dtype == np.uint8
    assert np.array_equal(a, wm.rollout(ctx, actions, seed=7))
    assert not np.array_equal(a, wm.rollout(ctx, actions, seed=8))
    sess = wm.session(ctx, actions[:, :2], seed=7)
    stepped = np.stack([sess.step(actions[:, 2 + i]) for i in range(4)], axis=1)
    assert np.array_equal(stepped, a) and sess.frames == 7


def test_sliding_window_keeps_the_cost_bounded():
    wm = v2w.WorldModel(pixel_unet(), sampler=v2w.SamplerConfig(steps=2, window=4))
    sess = wm.session(frames(t=1), seed=0)
    sizes = []
    for _ in range(8):
        sess.step(torch.zeros(2, 2))
        sizes.append(sess.nbytes())
    assert sizes[3:] == [sizes[3]] * 5  # the cache stops growing once the window is full
    assert sess.evaluator.cache.capacity == 3 and sess.frames == 9


def test_unconditional_pass_differs_only_in_the_newest_action_mask(monkeypatch):
    unet = pixel_unet()
    calls = []
    real = unet.denoise

    def spy(x, levels, context=None, fs=None, frame_actions=None, action_mask=None, **cache):
        calls.append((x.clone(), levels.clone(), frame_actions.clone(), action_mask.clone()))
        return real(x, levels, context, fs, frame_actions, action_mask, **cache)

    monkeypatch.setattr(unet, "denoise", spy)
    wm = v2w.WorldModel(unet, sampler=v2w.SamplerConfig(steps=1, cache=False))
    wm.rollout(frames(t=3), torch.randn(2, 3, 2), guidance=2.5)
    x, levels, actions, mask = calls[-1]  # one batched call: conditional rows then unconditional rows
    b = 2
    assert torch.equal(x[:b], x[b:]) and torch.equal(levels[:b], levels[b:]) and torch.equal(actions[:b], actions[b:])
    assert mask[:b].eq(1).all()
    assert torch.equal(mask[b:], unconditional_mask(mask[:b])) and mask[b:, :-1].eq(1).all()


@pytest.mark.parametrize("cache", [True, False])
def test_batched_guidance_equals_two_separate_passes(cache):
    wm = v2w.WorldModel(pixel_unet().double(), sampler=v2w.SamplerConfig(steps=3))
    context, actions = frames(t=2), torch.randn(2, 5, 2, generator=torch.Generator().manual_seed(3))
    outs = []
    for batched in (True, False):
        sess = wm.session(context, actions[:, :1], seed=0, cache=cache)
        sess.evaluator.batched = batched
        outs.append(torch.cat([sess.step_latent(actions[:, 1 + i]) for i in range(4)], 2))
    assert_close_relative(outs[0], outs[1], 1e-12)


def test_guidance_formula_on_a_stub():
    gen = torch.Generator().manual_seed(0)
    v_c, v_u = torch.randn(2, 3, 1, 4, 4, generator=gen), torch.randn(2, 3, 1, 4, 4, generator=gen)
    plain = GuidanceConfig(scale=2.5, rescale=0.0).apply(v_c, v_u)
    torch.testing.assert_close(plain, v_u + 2.5 * (v_c - v_u))
    guided = v_u + 2.5 * (v_c - v_u)
    std = lambda t: t.flatten(1).std(dim=1).reshape(-1, 1, 1, 1, 1)  # noqa: E731
    torch.testing.assert_close(GuidanceConfig(scale=2.5, rescale=0.7).apply(v_c, v_u),
                               0.7 * guided * std(v_c) / std(guided) + 0.3 * guided)
    # Window scope: history frames (guided == conditional there) join the statistics.
    hist = torch.randn(2, 3, 4, 4, 4, generator=gen)
    window_c, window_g = torch.cat([hist, v_c], 2), torch.cat([hist, guided], 2)
    expected = 0.7 * guided * std(window_c) / std(window_g) + 0.3 * guided
    torch.testing.assert_close(GuidanceConfig(scale=2.5).apply(v_c, v_u, Moments.of(hist)), expected)
    assert not GuidanceConfig(scale=1.0).active
    assert GuidanceConfig(scale=1.5, convention="paper_lambda").cfg_scale == 2.5
    torch.testing.assert_close(combine(v_c, v_u, 1.0), v_c)


def test_guidance_scale_one_skips_the_unconditional_pass(monkeypatch):
    unet = pixel_unet()
    batches = []
    real = unet.denoise
    monkeypatch.setattr(unet, "denoise", lambda x, *a, **k: batches.append(x.shape[0]) or real(x, *a, **k))
    v2w.WorldModel(unet, sampler=v2w.SamplerConfig(steps=2)).rollout(frames(t=1), torch.zeros(2, 2, 2), guidance=1.0)
    assert set(batches) == {2}  # never doubled
    batches.clear()
    v2w.WorldModel(unet, sampler=v2w.SamplerConfig(steps=2)).rollout(frames(t=1), torch.zeros(2, 2, 2), guidance=2.5)
    assert 4 in batches


def test_save_and_load_pretrained(tmp_path):
    wm = v2w.WorldModel(pixel_unet(action_space=v2w.ActionSpace.multi_hot(5)),
                        sampler=v2w.SamplerConfig(steps=2, history_level=20), metadata={"env": "square"})
    target = wm.save_pretrained(tmp_path / "model")
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "model.safetensors"]
    loaded = v2w.WorldModel.from_pretrained(target)
    assert loaded.sampler == wm.sampler and loaded.metadata == {"env": "square"}
    assert loaded.unet.config == wm.unet.config
    actions = torch.zeros(2, 3, 5)
    actions[..., 1] = 1
    assert torch.equal(wm.rollout(frames(t=1), actions, seed=1), loaded.rollout(frames(t=1), actions, seed=1))
    wm.save_pretrained(target, overwrite=True)  # replacing a world model leaves no temporary behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_from_pretrained_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json: missing"):
        v2w.WorldModel.from_pretrained(tmp_path)
    target = v2w.WorldModel(pixel_unet()).save_pretrained(tmp_path / "m")
    weights = target / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ValueError, match="model.safetensors"):
        v2w.WorldModel.from_pretrained(target)


@pytest.mark.parametrize("call,message", [
    (lambda wm: wm.rollout(frames(t=2), torch.zeros(2, 3, 5)), r"actions: expected \[B=2, T, A=2\], got shape \(2, 3, 5\)"),
    (lambda wm: wm.rollout(frames(t=3), torch.zeros(2, 2, 2)), r"2 actions for 3 context frames generate no frame"),
    (lambda wm: wm.rollout(frames(t=2), torch.zeros(3, 3, 2)), r"actions: expected \[B=2"),
    (lambda wm: wm.rollout(frames(t=2), None), r"actions: expected \[B=2, T0-1\+N, A=2\], got None"),
    (lambda wm: wm.rollout(frames(t=1), torch.zeros(2, 2, 2), guidance=float("nan")), r"guidance must be a finite"),
    (lambda wm: wm.rollout(frames(t=1), torch.zeros(2, 2, 2), steps=0), r"steps must be an integer in 1..1000"),
    (lambda wm: wm.rollout(frames(t=1), torch.zeros(2, 2, 2), guidance=-1.0), r"guidance scale must be >= 0"),
    (lambda wm: wm.rollout(torch.zeros(2, 1, 8, 8, 3), torch.zeros(2, 2, 2)), r"context_frames: expected dtype uint8"),
    (lambda wm: wm.rollout(frames(t=1)[0], torch.zeros(2, 2, 2)), r"context_frames: expected frames \[B, T, H, W, 3\]"),
    (lambda wm: wm.session(frames(t=3)), r"context_actions: expected \[B=2, T0-1=2, A=2\]"),
    (lambda wm: wm.session(frames(t=1)).step(None), r"action: expected \[B=2, A=2\], got None"),
])
def test_bad_rollout_input(call, message):
    wm = v2w.WorldModel(pixel_unet(), sampler=v2w.SamplerConfig(steps=2))
    with pytest.raises(ValueError, match=message):
        call(wm)


def test_context_longer_than_the_window_without_sliding():
    wm = v2w.WorldModel(pixel_unet(), sampler=v2w.SamplerConfig(steps=2, window=3, slide=False))
    with pytest.raises(ValueError, match="3 context frames leave no room in a window of 3 frames and sliding is off"):
        wm.session(frames(t=3), torch.zeros(2, 2, 2))
    with pytest.raises(ValueError, match="exceeds the window of 3 frames"):
        wm.rollout(frames(t=1), torch.zeros(2, 3, 2))


# ---- mode independence: rollouts run in eval mode (dropout off) and leave the caller's modes as they were ------------
def train_mode_model(dtype=torch.float32):
    """What a user gets from `WorldModel(causalize(...))` on a freshly built UNet: train mode, temporal dropout 0.1."""
    base = randomize_weights(v2w.VideoUNet(v2w.UNetConfig.preset(
        "tiny", in_channels=3, out_channels=3, context_dim=None, image_cross_attention=False, fs_condition=False,
        temporal_length=16, attention_resolutions=(2,))), 0)
    unet, _ = v2w.causalize(base.to(dtype), "extrapolative", "frame", v2w.ActionSpace.continuous(2))
    wm = v2w.WorldModel(unet, sampler=v2w.SamplerConfig(steps=2))
    assert wm.training and unet.config.temporal_conv_dropout == 0.1
    return wm


def test_rollouts_of_a_train_mode_model_are_deterministic_and_leave_its_modes():
    wm = train_mode_model()
    wm.codec.eval()  # a trainer keeps the frozen codec in eval mode while the UNet trains: both must survive
    modes = {name: m.training for name, m in wm.named_modules()}
    actions = torch.randn(2, 4, 2, generator=torch.Generator().manual_seed(1))
    first = wm.rollout(frames(t=2), actions, seed=3)
    assert torch.equal(first, wm.rollout(frames(t=2), actions, seed=3))
    assert {name: m.training for name, m in wm.named_modules()} == modes
    sess = wm.session(frames(t=2), actions[:, :1], seed=3)
    stepped = []
    for i in range(3):
        wm.train()  # whatever happens between calls, each step evaluates in eval mode
        stepped.append(sess.step(actions[:, 1 + i]))
        assert wm.unet.training and all(m.training for m in wm.unet.modules())
    assert torch.equal(torch.stack(stepped, dim=1), first)


def test_cached_equals_recomputed_on_a_train_mode_model_from_the_first_frame():
    wm = train_mode_model(torch.float64)
    context, actions = frames(t=1), torch.randn(2, 3, 2, generator=torch.Generator().manual_seed(1))
    cached = latents_of(wm, context, actions, 3, cache=True)
    recomputed = latents_of(wm, context, actions, 3, cache=False)
    assert_close_relative(cached[:, :, 1:2], recomputed[:, :, 1:2], 1e-12)  # the first generated frame
    assert_close_relative(cached, recomputed, 1e-12)
    assert wm.training


def test_temporal_conv_dropout_is_a_config_field():
    cfg = v2w.UNetConfig.preset("pixel-tiny", temporal_conv_dropout=0.25)
    assert v2w.UNetConfig.from_dict(cfg.to_dict()) == cfg
    old = cfg.to_dict()
    del old["temporal_conv_dropout"]  # a config.json written before the field existed trained with lvdm's 0.1
    assert v2w.UNetConfig.from_dict(old).temporal_conv_dropout == 0.1
    for name in ("dynamicrafter-256", "dynamicrafter-512", "dynamicrafter-1024", "tiny"):
        assert v2w.UNetConfig.preset(name).temporal_conv_dropout == 0.1  # as upstream
    for name in ("pixel-tiny", "pixel-64"):  # our presets: their own dropout everywhere
        preset = v2w.UNetConfig.preset(name)
        assert preset.dropout == preset.temporal_conv_dropout == 0.0
    unet = v2w.VideoUNet(cfg)
    rates = {m.p for name, m in unet.named_modules() if "temopral_conv" in name and isinstance(m, torch.nn.Dropout)}
    assert rates == {0.25}
    with pytest.raises(ValueError, match=r"UNetConfig.temporal_conv_dropout must be in \[0, 1\), got nan"):
        cfg.replace(temporal_conv_dropout=float("nan"))


# ---- bad input named --------------------------------------------------------------------------------------------------
def nan_at(shape, index, value=float("nan")):
    t = torch.zeros(shape)
    t[index] = value
    return t


@pytest.mark.parametrize("call,message", [
    (lambda wm: wm.rollout(frames(t=2), nan_at((2, 3, 2), (1, 2, 0))), r"actions: non-finite value nan at \[1, 2, 0\]"),
    (lambda wm: wm.rollout(frames(t=2), nan_at((2, 3, 2), (0, 0, 1), float("inf")).numpy()),
     r"actions: non-finite value inf at \[0, 0, 1\]"),
    (lambda wm: wm.rollout(frames(t=2), np.full((2, 3, 2), 1e300)), r"actions: non-finite value inf at \[0, 0, 0\]"),
    (lambda wm: wm.session(frames(t=3), nan_at((2, 2, 2), (1, 1, 1), -float("inf"))),
     r"context_actions: non-finite value -inf at \[1, 1, 1\]"),
    (lambda wm: wm.session(frames(t=1)).step(nan_at((2, 2), (1, 0))), r"action: non-finite value nan at \[1, 0\]"),
    (lambda wm: wm.session(frames(t=1)).step(np.zeros((1, 7))), r"action: expected \[B=2, A=2\], got shape \(1, 7\)$"),
    (lambda wm: wm.session(frames(t=1)).step(np.zeros((2, 1, 2))),
     r"action: expected \[B=2, A=2\], got shape \(2, 1, 2\)$"),
    (lambda wm: wm.rollout(frames(t=2), [["left", "right"]]), r"actions: expected numbers \[B=2, T, A=2\], got list"),
    (lambda wm: wm.rollout(frames(t=2), torch.zeros(2, 4, 2), horizon=5),
     r"horizon=5 conflicts with the actions: 4 actions after 2 context frames generate N=3 frames; pass horizon=3"),
    (lambda wm: wm.rollout(frames(t=2), torch.zeros(2, 4, 2), horizon=2.5), r"horizon: expected the number of frames to generate \(an integer >= 1\), got 2.5"),
])
def test_bad_actions_are_named(call, message):
    wm = v2w.WorldModel(pixel_unet(), sampler=v2w.SamplerConfig(steps=1))
    with pytest.raises(ValueError, match=message):
        call(wm)


def test_horizon_that_agrees_with_the_actions_is_accepted():
    wm = v2w.WorldModel(pixel_unet(), sampler=v2w.SamplerConfig(steps=1))
    out = wm.rollout(frames(t=2), torch.zeros(2, 4, 2), horizon=3)
    assert out.shape == (2, 3, 8, 8, 3)


def test_non_finite_actions_in_a_training_batch_are_named():
    from vid2world.train.objective import Denoiser, Objective, clip_loss
    wm = v2w.WorldModel(pixel_unet(), sampler=v2w.SamplerConfig(steps=1))
    batch = {"frames": frames(t=4), "actions": nan_at((2, 4, 2), (1, 3, 0)), "episode": torch.tensor([7, 9]),
             "start": torch.tensor([0, 12])}
    with pytest.raises(ValueError, match=r"batch actions: non-finite value nan at \[1, 3, 0\] \(clip 1 of the "
                                         r"batch: episode 9, from frame 12\)"):
        clip_loss(Denoiser(wm), wm, batch, Objective(), torch.Generator().manual_seed(0))


def test_read_only_frames_and_actions_roll_out_without_a_warning(tmp_path):
    # torch warns about a read-only array once per process, so a fresh process with warnings as errors checks it.
    script = """
import numpy as np, torch, vid2world as v2w
cfg = v2w.UNetConfig.preset("pixel-tiny", action_space=v2w.ActionSpace.continuous(2), causal=v2w.CausalConfig())
wm = v2w.WorldModel(v2w.VideoUNet(cfg).eval(), sampler=v2w.SamplerConfig(steps=1))
np.save("frames.npy", np.zeros((1, 2, 8, 8, 3), np.uint8))
np.save("actions.npy", np.zeros((1, 3, 2), np.float32))
frames, actions = np.load("frames.npy", mmap_mode="r"), np.load("actions.npy", mmap_mode="r")
assert not frames.flags.writeable and not actions.flags.writeable
assert wm.rollout(frames, actions).shape == (1, 2, 8, 8, 3)
wm.session(frames, actions[:, :1]).step(actions[:, 1])
print("ok")
"""
    done = subprocess.run([sys.executable, "-W", "error::UserWarning", "-c", script], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_bf16_sessions_autocast_the_unet_only():
    """precision="bf16" runs the UNet under bf16 autocast: the latents come back float32, close to the float32
    rollout but not equal to it (the UNet really ran in bf16), the same for the same seed, and cached equals
    recomputed up to bf16 rounding."""
    wm = v2w.WorldModel(pixel_unet("frame"), sampler=v2w.SamplerConfig(steps=3))
    context, actions = frames(t=1), torch.randn(2, 6, 2, generator=torch.Generator().manual_seed(1))
    full = latents_of(wm, context, actions, 5, cache=True)
    half = latents_of(wm, context, actions, 5, cache=True, precision="bf16")
    assert half.dtype == torch.float32 and not torch.equal(half, full)
    assert_close_relative(half, full, 0.05)
    assert torch.equal(half, latents_of(wm, context, actions, 5, cache=True, precision="bf16"))
    assert_close_relative(latents_of(wm, context, actions, 5, cache=False, precision="bf16"), half, 0.05)
    with pytest.raises(ValueError, match="precision must be one of"):
        wm.session(context, precision="fp16")


def test_bf16_on_a_cpu_without_native_bf16_runs_fp32_and_says_so(monkeypatch):
    """A preset's or a caller's bf16 is a speed choice; a CPU that emulates bf16 (AVX2: 25x slower than fp32
    measured) samples and trains in fp32 instead, with a warning, and gives exactly the fp32 results."""
    from vid2world.models import precision
    from vid2world.world.sampling import FastPreset

    wm = v2w.WorldModel(pixel_unet("frame"), sampler=v2w.SamplerConfig(steps=2, fast=FastPreset(precision="bf16")))
    context, actions = frames(t=1), torch.randn(2, 4, 2, generator=torch.Generator().manual_seed(1))
    full = latents_of(wm, context, actions, 3, cache=True)
    assert wm.sampling("fast").precision == "bf16"
    monkeypatch.delenv("VID2WORLD_BF16")
    monkeypatch.setattr(precision, "native_bf16", lambda device_type: device_type != "cpu")
    with pytest.warns(RuntimeWarning, match="without native bf16"):
        assert wm.sampling("fast").precision == "fp32"
    with pytest.warns(RuntimeWarning, match="without native bf16"):
        assert torch.equal(latents_of(wm, context, actions, 3, cache=True, precision="bf16"), full)
    with pytest.warns(RuntimeWarning, match="without native bf16"):
        assert isinstance(precision.autocast("bf16", "cpu"), type(precision.autocast("fp32", "cpu")))


def test_bf16_sessions_sample_with_bf16_weights_made_once_and_equal_to_autocast():
    """A bf16 session's UNet is a copy with its linear and conv weights in bf16 already: under autocast it gives
    exactly the original's output (autocast rounds the same weights the same way), it is made once, made again when
    the weights change, and the model's own weights stay float32."""
    from vid2world.models.precision import autocast

    wm = v2w.WorldModel(pixel_unet("frame"), sampler=v2w.SamplerConfig(steps=3))
    lowered = wm.sampling_backbone("bf16")
    assert wm.sampling_backbone("fp32") is wm.unet and wm.sampling_backbone("bf16") is lowered
    assert lowered.out[2].weight.dtype == torch.bfloat16 and wm.unet.out[2].weight.dtype == torch.float32
    assert lowered.out[0].weight.dtype == torch.float32  # the output GroupNorm's, as autocast leaves it
    x = torch.randn(2, wm.unet.config.in_channels, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    levels, acts = torch.tensor([[10, 500, 900]] * 2), torch.randn(2, 3, 2, generator=torch.Generator().manual_seed(3))
    with torch.no_grad(), autocast("bf16", "cpu"):
        ours = lowered.denoise(x, levels, frame_actions=acts)
        assert torch.equal(ours, wm.unet.denoise(x, levels, frame_actions=acts))
    with torch.no_grad():
        wm.unet.out[2].bias.add_(1.0)  # an optimizer step, in place
    assert wm.sampling_backbone("bf16") is not lowered
    assert torch.equal(wm.sampling_backbone("bf16").out[2].bias, wm.unet.out[2].bias.bfloat16())


def test_set_sampling_changes_steps_and_guidance_from_the_next_frame():
    wm = v2w.WorldModel(pixel_unet("frame"), sampler=v2w.SamplerConfig(steps=4, history_level="clean"))
    context, actions = frames(t=1), torch.randn(2, 4, 2, generator=torch.Generator().manual_seed(1))
    plain, changed = (wm.session(context, seed=0) for _ in range(2))
    assert torch.equal(plain.step_latent(actions[:, 0]), changed.step_latent(actions[:, 0]))
    changed.set_sampling(steps=2, guidance=3.0)
    assert len(list(changed.sampler.transitions())) == 2 and changed.settings.guidance.scale == 3.0
    assert not torch.equal(plain.step_latent(actions[:, 1]), changed.step_latent(actions[:, 1]))
    penultimate = v2w.WorldModel(wm.unet, sampler=v2w.SamplerConfig(steps=4)).session(context)
    penultimate.set_sampling(guidance=2.0)  # the history level does not depend on guidance
    with pytest.raises(ValueError, match="start a new session"):
        penultimate.set_sampling(steps=2)


# ---- session.step checks actions against the model's space, and frames against its frame size --------------------
def spec_model(kind: str = "multi_hot", frame_size=(8, 8)):
    """A pixel model of 3 action entries with the dataset's ActionSpec and frame size in its metadata, as the bundled
    models carry them: buttons (multi-hot, 2) and a steer (continuous, recorded range -1..1) for kind "mixed"."""
    from vid2world.data.spec import ActionGroup, ActionSpec

    if kind == "multi_hot":
        spec = ActionSpec((ActionGroup("buttons", "multi_hot", ("fire", "jump", "use")),))
    else:
        spec = ActionSpec((ActionGroup("buttons", "multi_hot", ("fire", "jump")),
                           ActionGroup("steer", "continuous", ("x",), (-1.0,), (1.0,))))
    space = spec.model_space()
    return v2w.WorldModel(pixel_unet(action_space=space), sampler=v2w.SamplerConfig(steps=1),
                          metadata={"actions": spec.to_dict(), "frame_size": list(frame_size)})


def test_session_step_refuses_actions_outside_the_models_space():
    cases = {"multi_hot": [([[0, 1, 0], [1e30, 0, 0]], r"^action: buttons.fire = 1e\+30 in row 1 must be 0 or 1 "
                                                       r"\(multi_hot group\)$"),
                           ([[0, 0.5, 0], [0, 0, 0]], r"^action: buttons.jump = 0.5 in row 0 must be 0 or 1")],
             "mixed": [([[0, 1, 0.5], [1, 0, -1e30]], r"^action: steer.x = -1e\+30 in row 1 lies far outside its "
                                                      r"recorded range -1..1 \(continuous group\)$"),
                       ([[0, 1, 0.5], [1, 0, 3.5]], r"^action: steer.x = 3.5 in row 1 lies far outside")]}
    for kind, bad in cases.items():
        sess = spec_model(kind).session(frames(t=1))
        for action, message in bad:
            with pytest.raises(ValueError, match=message):
                sess.step(np.array(action, np.float32))
        good = [[0, 1, 0], [1, 1, 1]] if kind == "multi_hot" else [[0, 1, 0.5], [1, 0, -2.5]]  # within a span
        assert sess.step(np.array(good, np.float32)).shape == (2, 8, 8, 3)


def test_a_model_without_a_spec_checks_its_heads_kind():
    wm = v2w.WorldModel(pixel_unet(action_space=v2w.ActionSpace.multi_hot(2)), sampler=v2w.SamplerConfig(steps=1))
    with pytest.raises(ValueError, match=r"^action: action.a1 = 7 in row 0 must be 0 or 1"):
        wm.session(frames(t=1)).step(np.array([[0, 7], [1, 1]], np.float32))
    free = v2w.WorldModel(pixel_unet(), sampler=v2w.SamplerConfig(steps=1))  # continuous, no range recorded
    assert free.session(frames(t=1)).step(np.full((2, 2), 50.0, np.float32)).shape == (2, 8, 8, 3)


def test_session_frames_must_match_the_models_frame_size():
    wm = spec_model(frame_size=(16, 16))
    with pytest.raises(ValueError, match=r"^context_frames: expected frames of 16x16 \(the model's frame_size\), "
                                         r"got 8x8$"):
        wm.session(frames(t=1, size=8))
    sess = wm.session(frames(t=1, size=16))
    with pytest.raises(ValueError, match=r"^context_frames: expected frames of 16x16 like the session's, got 8x8$"):
        sess.reset([0], frames(b=1, t=1, size=8))
    sess.reset([0], frames(b=1, t=1, size=16))
    assert sess.step(np.zeros((2, 3), np.float32)).shape == (2, 16, 16, 3)
