"""The fixed-size cache: exact against recomputation, bounded over long sessions, rows restart independently."""

from __future__ import annotations

import pytest
import torch

import vid2world as v2w

from vid2world.testing import randomize_weights

from .test_world_model import assert_close_relative, frames, latents_of, pixel_unet


@pytest.mark.parametrize("norm", ["frame", "causal"])
def test_cached_equals_recomputed_with_guidance_while_the_ring_wraps(norm):
    # window 6: a 14-frame rollout wraps the cache's rings twice. Cached and recomputed agree exactly while every
    # frame is in view; after that the cache is a rolling one (docs/rollouts.md: history features were computed with
    # older frames in view) and the two differ by design. With the whole rollout in view they agree throughout.
    wm = v2w.WorldModel(pixel_unet(norm).double(), sampler=v2w.SamplerConfig(steps=3, window=6))
    context, actions = frames(t=2), torch.randn(2, 14, 2, generator=torch.Generator().manual_seed(1))
    cached = latents_of(wm, context, actions, 12, cache=True, guidance=2.5)
    recomputed = latents_of(wm, context, actions, 12, cache=False, guidance=2.5)
    assert cached.shape[2] == 14
    assert_close_relative(cached[:, :, :6], recomputed[:, :, :6], 1e-10)
    full = v2w.WorldModel(wm.unet, sampler=v2w.SamplerConfig(steps=3))  # window 16: the whole rollout in view
    assert_close_relative(latents_of(full, context, actions, 12, cache=True, guidance=2.5),
                          latents_of(full, context, actions, 12, cache=False, guidance=2.5), 1e-10)


def test_session_bytes_are_fixed_over_500_frames():
    wm = v2w.WorldModel(pixel_unet(), sampler=v2w.SamplerConfig(steps=1, window=8))
    sess = wm.session(frames(b=1, t=1), seed=0, guidance=1.0)
    action = torch.zeros(1, 2)
    sizes = {}
    for frame in range(1, 501):
        sess.step_latent(action)
        if frame in (8, 500):
            sizes[frame] = sess.nbytes()
    assert sizes[8] > 0 and sizes[8] == sizes[500]
    assert sess.frames == 501


def test_resetting_a_row_equals_a_fresh_session_and_leaves_the_others():
    wm = v2w.WorldModel(pixel_unet("causal").double(), sampler=v2w.SamplerConfig(steps=2, window=5))
    start = frames(b=4, t=2, seed=0)
    gen = torch.Generator().manual_seed(2)
    actions, restart_actions = torch.randn(4, 9, 2, generator=gen), torch.randn(1, 1, 2, generator=gen)
    restart = frames(b=1, t=2, seed=5)

    def run(reset: bool) -> list[torch.Tensor]:
        sess = wm.session(start, actions[:, :1], seed=3)
        out = [sess.step(actions[:, 1 + i]) for i in range(3)]
        if reset:
            sess.reset([2], restart, restart_actions)
        return out + [sess.step(actions[:, 4 + i]) for i in range(5)]

    plain, with_reset = run(False), run(True)
    fresh = wm.session(restart, restart_actions, seed=3)
    fresh_frames = [fresh.step(actions[2:3, 4 + i]) for i in range(5)]
    for i in range(5):
        assert torch.equal(with_reset[3 + i][2:3], fresh_frames[i])
        others = [0, 1, 3]
        assert torch.equal(with_reset[3 + i][others], plain[3 + i][others])
    assert not torch.equal(with_reset[3][2], plain[3][2])  # the row did restart


def test_reset_bad_input_is_named():
    wm = v2w.WorldModel(pixel_unet(), sampler=v2w.SamplerConfig(steps=1))
    sess = wm.session(frames(b=2, t=1), seed=0)
    with pytest.raises(ValueError, match=r"rows: expected distinct row indices in 0..1, got \[2\]"):
        sess.reset([2], frames(b=1, t=1))
    with pytest.raises(ValueError, match=r"context_frames: expected 2 rows"):
        sess.reset([0, 1], frames(b=1, t=1))
    recompute = wm.session(frames(b=2, t=1), seed=0, cache=False)
    with pytest.raises(ValueError, match=r"reset: a session that recomputes the window \(cache=False\)"):
        recompute.reset([0], frames(b=1, t=1))


# ---- the rings against an independent answer -------------------------------------------------------------------
# A single layer's cached state depends on its inputs alone, so past the window its streamed output must equal the
# full-sequence layer run on exactly the frames in view (the last `capacity` committed ones plus the new one). This
# checks what the whole-UNet test above cannot: ring positions, wrap-around and masking once the rings have wrapped.

def _stream_frames(layer, frames: torch.Tensor, capacity: int, rows: int, call) -> list[torch.Tensor]:
    """Feed `frames` (time on dim `call`'s layout) one at a time: query (the hot path), guided query (rows doubled),
    then commit; returns each frame's streamed output beside the reference on the frames in view."""
    from vid2world.models.stream import StreamCache

    cache = StreamCache(rows, capacity, slots=1)
    diffs = []
    for t in range(frames.shape[2]):
        new = frames[:, :, t:t + 1]
        query = call(layer, new, cache.view())
        guided = call(layer, torch.cat([new, new]), cache.view(repeat=2))
        committed = call(layer, new, cache.view(commit=True))
        for r in range(rows):
            cache.fill[r] += 1
        reference = call(layer, frames[:, :, max(0, t - capacity):t + 1], None)[:, :, -1:]
        diffs += [(out - ref).abs().max() / ref.abs().max()
                  for out, ref in ((query, reference), (guided, torch.cat([reference, reference])),
                                   (committed, reference))]
    return diffs


def test_attention_ring_equals_attention_over_the_frames_in_view():
    from vid2world.models.attention import Attention

    torch.manual_seed(0)
    attn = Attention(8, None, heads=2, dim_head=4).double().eval()
    attn.cache_slot = 0
    rows, spatial, capacity = 2, 3, 4

    def call(layer, x, view):  # x [rows*, spatial, T, C] -> the layer's [(rows spatial), T, C] layout and back
        out = layer(x.flatten(0, 1), causal=True, stream=view)
        return out.reshape(x.shape)

    x = torch.randn(rows, spatial, 11, 8, dtype=torch.float64)  # 11 frames: the ring of 4 wraps twice
    assert max(_stream_frames(attn, x, capacity, rows, call)) < 1e-12


def test_causal_norm_ring_equals_the_norm_over_the_frames_in_view():
    from vid2world.models.temporal import TemporalGroupNorm

    torch.manual_seed(0)
    norm = TemporalGroupNorm(2, 4, eps=1e-6, mode="causal").double().eval()
    norm.cache_slot = 0
    with torch.no_grad():
        norm.weight.normal_(), norm.bias.normal_()
    x = torch.randn(2, 4, 11, 3, 3, dtype=torch.float64) * 3 + 1  # [B, C, T, H, W]
    assert max(_stream_frames(norm, x, 4, 2, lambda layer, v, view: layer(v, view))) < 1e-12



# ---- one call per frame: the waiting commit runs with the next frame's first denoising call --------------------

def _unfused(sess):
    """The session with every frame committed by a call of its own (the evaluator's `fuse` off)."""
    with torch.no_grad():
        sess.evaluator.flush()
    sess.evaluator.fuse = False
    return sess


@pytest.mark.parametrize("norm,steps,guidance", [("frame", 1, 1.0), ("causal", 2, 1.0), ("causal", 2, 2.0)])
def test_fused_commit_equals_a_commit_of_its_own_while_the_ring_wraps(norm, steps, guidance, monkeypatch):
    # window 4: 13 frames wrap the rings three times, so the committed frame evicts the oldest one inside the call
    wm = v2w.WorldModel(pixel_unet(norm).double(), sampler=v2w.SamplerConfig(steps=steps, window=4))
    context, actions = frames(t=1), torch.randn(2, 13, 2, generator=torch.Generator().manual_seed(1))
    import vid2world.world.evaluate as evaluate

    calls = []
    counted = evaluate.denoise
    monkeypatch.setattr(evaluate, "denoise", lambda *a, **k: calls.append(a[1].shape[2]) or counted(*a, **k))

    def rollout(fused: bool) -> torch.Tensor:
        sess = wm.session(context, seed=3, guidance=guidance)
        sess = sess if fused else _unfused(sess)
        return torch.cat([sess.step_latent(actions[:, i]) for i in range(12)], dim=2)

    fused = rollout(True)
    fused_calls, calls[:] = list(calls), []
    separate = rollout(False)
    assert_close_relative(fused, separate, 1e-10)
    assert len(calls) == 1 + 12 * (steps + 1) and set(calls) == {1}  # the context's commit, then per frame
    if guidance == 1.0:  # every frame's commit rides on the next frame's first call (the last one's still waits)
        assert len(fused_calls) == 12 * steps and fused_calls.count(2) == 12
    else:  # guided calls read the history's moments: the commit runs first, on its own
        assert fused_calls == calls[:-1]


def test_a_waiting_commit_is_made_before_a_row_restarts():
    wm = v2w.WorldModel(pixel_unet("causal").double(), sampler=v2w.SamplerConfig(steps=1, window=4))
    actions = torch.randn(2, 8, 2, generator=torch.Generator().manual_seed(4))
    restart = frames(b=1, t=1, seed=7)

    def run(fused: bool) -> torch.Tensor:
        sess = wm.session(frames(t=1), seed=1, guidance=1.0)
        sess = sess if fused else _unfused(sess)
        out = [sess.step_latent(actions[:, i]) for i in range(5)]
        assert (sess.evaluator.pending is not None) == fused
        sess.reset([1], restart)
        return torch.cat(out + [sess.step_latent(actions[:, 5 + i]) for i in range(3)], dim=2)

    assert_close_relative(run(True), run(False), 1e-10)


def test_fused_commit_on_a_wan_backbone_equals_a_commit_of_its_own():
    # window-relative RoPE: inside the fused call the newest frame sits one position later than it would after a
    # commit of its own, and so does every key it sees (the evicted oldest one masked): the same attention
    from vid2world.causal.wan import causalize_wan

    from .test_wan_learning import tiny_pixel_wan

    causal, _ = causalize_wan(tiny_pixel_wan(), v2w.ActionSpace.continuous(2), temporal_compression=1)
    wm = v2w.WorldModel(randomize_weights(causal, 1).double().eval(), sampler=v2w.SamplerConfig(steps=1, window=3))
    actions = torch.randn(2, 9, 2, generator=torch.Generator().manual_seed(2))

    def rollout(fused: bool) -> torch.Tensor:
        sess = wm.session(frames(t=1), seed=3, guidance=1.0)
        sess = sess if fused else _unfused(sess)
        return torch.cat([sess.step_latent(actions[:, i]) for i in range(9)], dim=2)

    assert_close_relative(rollout(True), rollout(False), 1e-10)
