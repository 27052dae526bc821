"""Sliding windows re-anchor their image condition (method.md 7.3 `window.image_cond`): with `window_first` the
first frame of the current window supplies the concat latent, the cache is refilled under it and equals
recomputing the window; `episode_first` keeps frame 0."""

from __future__ import annotations

import pytest
import torch

import vid2world as v2w
import vid2world.world.evaluate as evaluate_module

from vid2world.testing import randomize_weights

from .test_world_model import assert_close_relative, frames, latents_of


pytestmark = pytest.mark.usefixtures("one_thread")


def concat_model(window: int, image_cond: str = "window_first", steps: int = 2, norm: str = "frame"):
    """A pixel model that takes the anchor frame as 3 extra input channels (so the anchor matters)."""
    cfg = v2w.UNetConfig.preset("pixel-tiny", in_channels=6, temporal_length=16,
                                action_space=v2w.ActionSpace.continuous(2), causal=v2w.CausalConfig(norm))
    unet = randomize_weights(v2w.VideoUNet(cfg), 0).eval().double()
    return v2w.WorldModel(unet, sampler=v2w.SamplerConfig(steps=steps, window=window, image_cond=image_cond))


def actions(b=2, t=12, seed=1):
    return torch.randn(b, t, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("norm", ["frame", "causal"])
def test_window_first_cached_equals_recomputed_past_the_window(norm):
    # the rolling cache of episode_first differs from recomputation past the window (test_cache); window_first
    # re-processes the history under each new anchor, so the two paths agree for the whole rollout
    wm = concat_model(window=5, norm=norm, steps=3)
    context, acts = frames(t=2), actions()
    cached = latents_of(wm, context, acts, 10, cache=True, guidance=2.5)
    recomputed = latents_of(wm, context, acts, 10, cache=False, guidance=2.5)
    assert cached.shape[2] == 12
    assert_close_relative(cached, recomputed, 1e-10)


def test_anchor_is_the_first_frame_of_each_window(monkeypatch):
    window = 4
    wm = concat_model(window)
    seen = []
    real = evaluate_module.denoise

    def spy(unet, x, levels, conditioning, *args, **kwargs):
        seen.append(conditioning.concat[:1].clone())  # the doubled (guided) call repeats the rows: row 0 suffices
        return real(unet, x, levels, conditioning, *args, **kwargs)

    monkeypatch.setattr(evaluate_module, "denoise", spy)
    context, acts = frames(t=1), actions(t=9)
    sess = wm.session(context, seed=0, cache=False)
    latents = [wm.encode_context(context, None, 0)[0]]
    for t in range(1, 9):  # frame t is generated from frames max(0, t-3) .. t-1
        seen.clear()
        latents.append(sess.step_latent(acts[:, t - 1]))
        anchor = latents[max(0, t - (window - 1))][:1]
        assert seen and all(torch.equal(c, anchor) for c in seen), f"frame {t}: wrong anchor"


def test_episode_first_keeps_frame_zero_and_agrees_until_the_window_slides():
    context, acts = frames(t=1), actions(t=9)
    first = latents_of(concat_model(4, "window_first"), context, acts, 8, cache=False)
    episode = latents_of(concat_model(4, "episode_first"), context, acts, 8, cache=False)
    assert torch.equal(first[:, :, :4], episode[:, :, :4])  # frames 1..3: the window starts at frame 0 either way
    assert not torch.allclose(first[:, :, 4:], episode[:, :, 4:])  # frame 4 on: the anchor is frame 1, 2, ...


def test_context_longer_than_the_window_is_anchored_at_the_first_frame_in_view(monkeypatch):
    wm = concat_model(window=3)
    seen = []
    real = evaluate_module.denoise
    monkeypatch.setattr(evaluate_module, "denoise",
                        lambda unet, x, levels, cond, *a, **k: seen.append(cond.concat[:2].clone()) or
                        real(unet, x, levels, cond, *a, **k))
    context, acts = frames(t=5), actions(t=6)
    sess = wm.session(context, acts[:, :4], seed=0, cache=False)
    seen.clear()
    sess.step_latent(acts[:, 4])
    start = wm.encode_context(context, acts[:, :4], 0)[0]
    assert all(torch.equal(c, start[:, :, 3:4]) for c in seen)  # the window sees frames 3, 4 and the new one


def test_reset_row_with_window_first_equals_a_fresh_session():
    wm = concat_model(window=4, norm="causal")
    start, restart = frames(b=3, t=2, seed=0), frames(b=1, t=2, seed=5)
    acts = actions(b=3, t=12)
    sess = wm.session(start, acts[:, :1], seed=3)
    for i in range(4):  # the window has slid for every row
        sess.step(acts[:, 1 + i])
    sess.reset([1], restart, acts[1:2, :1])
    out = [sess.step(acts[:, 5 + i]) for i in range(5)]  # row 1 slides later than rows 0 and 2
    fresh = wm.session(restart, acts[1:2, :1], seed=3)
    for i in range(5):
        assert torch.equal(out[i][1:2], fresh.step(acts[1:2, 5 + i]))


def test_image_cond_is_checked_and_saved(tmp_path):
    with pytest.raises(ValueError, match="image_cond must be one of"):
        v2w.SamplerConfig(image_cond="last")
    cfg = v2w.SamplerConfig(image_cond="episode_first")
    assert v2w.SamplerConfig.from_dict(cfg.to_dict()) == cfg
    assert v2w.SamplerConfig.from_dict({k: v for k, v in cfg.to_dict().items() if k != "image_cond"}).image_cond \
        == "window_first"  # configs saved before the option get the release's default


def test_a_model_the_anchor_does_not_condition_is_not_reanchored():
    # pixel-tiny (no concat latent, no image context): window_first and episode_first are the same model, so
    # window_first must not pay the per-frame history pass (it doubled bench rollout's cached time at history 15)
    cfg = v2w.UNetConfig.preset("pixel-tiny", temporal_length=16, action_space=v2w.ActionSpace.continuous(2),
                                causal=v2w.CausalConfig("frame"))
    unet = randomize_weights(v2w.VideoUNet(cfg), 0).eval().double()
    runs = {}
    for cond in ("window_first", "episode_first"):
        wm = v2w.WorldModel(unet, sampler=v2w.SamplerConfig(steps=2, window=4, image_cond=cond))
        assert not wm.session(frames(t=2), actions()[:, :1], seed=0).reanchor
        runs[cond] = latents_of(wm, frames(t=2), actions(), 6, cache=True)
    assert torch.equal(runs["window_first"], runs["episode_first"])
    assert concat_model(window=4).session(frames(t=2), actions()[:, :1], seed=0).reanchor  # the anchor matters there
