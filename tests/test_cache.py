"""The fixed-size cache: exact against recomputation, bounded over long sessions, rows restart independently."""

from __future__ import annotations

import pytest
import torch

import vid2world as v2w

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

