"""WorldModel rollouts: the cache is exact, guidance is the formula, persistence round-trips, bad input is named."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vid2world as v2w
from vid2world.causal.diagnostics import randomize_weights
from vid2world.diffusion.guidance import GuidanceConfig, Moments, combine, unconditional_mask


def pixel_unet(norm: str = "frame", action_space=v2w.ActionSpace.continuous(2), seed: int = 0, **overrides):
    cfg = v2w.UNetConfig.preset("tiny", in_channels=3, out_channels=3, context_dim=None, image_cross_attention=False,
                                fs_condition=False, temporal_length=16, attention_resolutions=(2,),
                                action_space=action_space, causal=v2w.CausalConfig(norm), **overrides)
    return randomize_weights(v2w.VideoUNet(cfg), seed).eval()


def frames(b=2, t=2, size=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, t, size, size, 3), generator=gen, dtype=torch.uint8)


def latents_of(wm, context, actions, n, cache, seed=0, **settings):
    sess = wm.session(context, actions[:, : context.shape[1] - 1], seed=seed, cache=cache, **settings)
    for i in range(n):
        sess.step_latent(actions[:, context.shape[1] - 1 + i])
    return torch.cat(sess.latents, dim=2)


@pytest.mark.parametrize("norm", ["frame", "causal"])
def test_cached_rollout_equals_recomputed_float64(norm):
    wm = v2w.WorldModel(pixel_unet(norm).double(), sampler=v2w.SamplerConfig(steps=4))
    context, actions = frames(t=2), torch.randn(2, 16, 2, generator=torch.Generator().manual_seed(1))
    cached = latents_of(wm, context, actions, 14, cache=True)
    recomputed = latents_of(wm, context, actions, 14, cache=False)
    assert cached.shape[2] == 16
    assert (cached - recomputed).abs().max().item() <= 1e-10


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
    with pytest.raises(ValueError, match="cache=True needs a strictly causal UNet"):
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
        sizes.append(sess.evaluator.stream.nbytes())
    assert sizes[3:] == [sizes[3]] * 5  # the cache stops growing once the window is full
    assert len(sess.history.noisy) == 3 and sess.frames == 9


def test_unconditional_pass_differs_only_in_the_newest_action_mask(monkeypatch):
    unet = pixel_unet()
    calls = []
    real = unet.denoise

    def spy(x, levels, context=None, fs=None, frame_actions=None, action_mask=None, stream=None):
        calls.append((x.clone(), levels.clone(), frame_actions.clone(), action_mask.clone()))
        return real(x, levels, context, fs, frame_actions, action_mask, stream)

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
        for i in range(4):
            sess.step_latent(actions[:, 1 + i])
        outs.append(torch.cat(sess.latents, 2))
    assert (outs[0] - outs[1]).abs().max().item() <= 1e-10


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
