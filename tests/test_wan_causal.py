"""Frame-causal `WanTransformer`: no frame sees a later one (bit for bit), and streaming through a
`StreamCache` equals the full-sequence causal forward over exactly the frames in view."""

from __future__ import annotations

import pytest
import torch

from vid2world.models.config import ActionSpace
from vid2world.models.stream import StreamCache
from vid2world.models.wan import WanCausalConfig, WanTransformer
from vid2world.models.wan.attention import SelfAttention, frame_rotations

from .test_wan_transformer import inputs, random_model, relative, tiny

SPACE = ActionSpace.continuous(3)


@pytest.fixture(scope="module")
def causal_model() -> WanTransformer:
    return _with_actions_mattering(random_model(tiny(True, action_space=SPACE, causal=WanCausalConfig())))


def _with_actions_mattering(model: WanTransformer) -> WanTransformer:
    """Random weights everywhere, the action embedder's zeroed last layer included, so actions reach the
    output."""
    with torch.no_grad():
        last = model.condition_embedder.action_embedder[2]
        last.weight.copy_(torch.randn(last.weight.shape, generator=torch.Generator().manual_seed(9)) * 0.2)
    return model


def _perturbed(feed: dict, what: str, after: int) -> dict:
    out = dict(feed)
    if what == "frames":
        out["x"] = feed["x"].clone()
        out["x"][:, :, after + 1:] += 1.0
    elif what == "levels":
        out["timesteps"] = feed["timesteps"].clone()
        out["timesteps"][:, after + 1:] = 999 - out["timesteps"][:, after + 1:]
    else:
        out["actions"] = feed["actions"].clone()
        out["actions"][:, after + 1:] += 1.0
    return out


@pytest.mark.parametrize("what", ["frames", "levels", "actions"])
@pytest.mark.parametrize("after", [0, 2])
def test_the_future_changes_no_earlier_output(causal_model, what, after):
    model = causal_model
    feed = inputs(model.config, t=5, seed=after)
    with torch.no_grad():
        base, changed = model(**feed), model(**_perturbed(feed, what, after))
    assert torch.equal(base[:, :, :after + 1], changed[:, :, :after + 1])
    # the change did reach the later frames
    assert relative(changed[:, :, after + 1:], base[:, :, after + 1:]) > 1e-3


def test_the_passive_model_leaks_the_future():
    model = random_model(tiny(True))
    feed = inputs(model.config, t=5)
    with torch.no_grad():
        base, changed = model(**feed), model(**_perturbed(feed, "frames", 1))
    assert relative(changed[:, :, :2], base[:, :, :2]) > 1e-3


def test_a_cache_needs_a_causal_model():
    model = random_model(tiny())
    with pytest.raises(ValueError, match="needs a strictly causal WanTransformer"):
        model.new_cache(1, 4)
    feed = inputs(model.config, t=1)
    with pytest.raises(ValueError, match="needs a frame-causal WanTransformer"):
        model.denoise(**feed, cache=StreamCache(2, 3, model.cache_slots).view())


def _step(model, feed: dict, j: int, view, repeat: int = 1) -> torch.Tensor:
    """Frame j of `feed` (rows repeated `repeat` times: a guided call) through the cache view, committed when
    the view says so (the seam takes `commit` beside the view, as `world` passes it)."""
    pick = {k: (v[:, :, j:j + 1] if k == "x" else v[:, j:j + 1] if k in ("timesteps", "actions") else v)
            for k, v in feed.items()}
    pick = {k: torch.cat([v] * repeat) for k, v in pick.items()}
    return model.denoise(pick["x"], pick["timesteps"], pick["context"], pick["image_context"],
                         pick["actions"], cache=view, commit=view.commit)


def test_streaming_one_frame_at_a_time_equals_the_full_causal_forward(causal_model):
    model = causal_model
    feed = inputs(model.config, t=5, seed=3)
    cache = model.new_cache(2, window=6)  # everything in view
    with torch.no_grad():
        full = model(**feed)
        for j in range(5):
            want = full[:, :, j:j + 1]
            assert relative(_step(model, feed, j, cache.view()), want) <= 1e-10  # a query: nothing written
            guided = _step(model, feed, j, cache.view(repeat=2), repeat=2)
            assert relative(guided, torch.cat([want] * 2)) <= 1e-10
            assert relative(_step(model, feed, j, cache.view(commit=True)), want) <= 1e-10
    assert cache.fill == [5, 5]


def test_committing_several_frames_at_once_equals_the_full_forward(causal_model):
    feed = inputs(causal_model.config, t=5, seed=4)
    cache = causal_model.new_cache(2, window=6)
    with torch.no_grad():
        full = causal_model(**feed)
        first = {k: (v[:, :, :3] if k == "x" else v[:, :3] if k in ("timesteps", "actions") else v)
                 for k, v in feed.items()}
        first["frame_actions"] = first.pop("actions")
        head = causal_model.denoise(**first, cache=cache.view(), commit=True)
        tail = [_step(causal_model, feed, j, cache.view(commit=True)) for j in (3, 4)]
    assert relative(torch.cat([head, *tail], dim=2), full) <= 1e-10


def test_attention_ring_equals_attention_over_the_frames_in_view():
    # Past the window a streamed layer sees only the last `capacity` committed frames: its output must equal
    # the layer run on exactly those frames plus the new one (ring positions, wrap-around, window-relative
    # RoPE).
    torch.manual_seed(0)
    layer = SelfAttention(24, heads=2, eps=1e-6).double().eval()
    layer.cache_slot = 0
    rows, capacity, grid = 2, 4, (2, 3)
    x = torch.randn(rows, 11, 6, 24, dtype=torch.float64)  # 11 frames: the ring of 4 wraps twice
    cache = StreamCache(rows, capacity, slots=1)

    def call(frames, view=None):
        rotations = frame_rotations(frames.shape[1], grid, 12, frames.dtype, frames.device, view)
        return layer(frames, rotations, True, view)

    with torch.no_grad():
        for t in range(x.shape[1]):
            new = x[:, t:t + 1]
            reference = call(x[:, max(0, t - capacity):t + 1])[:, -1:]
            assert relative(call(new, cache.view()), reference) <= 1e-12
            guided = call(torch.cat([new, new]), cache.view(repeat=2))
            assert relative(guided, torch.cat([reference, reference])) <= 1e-12
            assert relative(call(new, cache.view(commit=True)), reference) <= 1e-12
            cache.fill = [f + 1 for f in cache.fill]


def test_restarting_a_row_equals_a_fresh_cache_and_leaves_the_others(causal_model):
    model = causal_model
    feed = inputs(model.config, b=3, t=9, seed=5)
    fresh_feed = {k: v[1:2] for k, v in inputs(model.config, b=3, t=4, seed=6).items()}
    fresh_feed.update(context=feed["context"][1:2], image_context=feed["image_context"][1:2])  # the row's own

    def run(restart: bool) -> list[torch.Tensor]:
        cache = model.new_cache(3, window=4)  # keeps 3: the rings wrap before the restart
        outs = [_step(model, feed, j, cache.view(commit=True)) for j in range(5)]
        if restart:
            cache.restart([1])
        for j in range(4):
            step = {k: v.clone() for k, v in feed.items()}
            if restart:  # row 1 starts over on other frames
                for k in ("x", "timesteps", "actions"):
                    if k == "x":
                        step[k][1:2, :, 5 + j] = fresh_feed[k][:, :, j]
                    else:
                        step[k][1:2, 5 + j] = fresh_feed[k][:, j]
            outs.append(_step(model, step, 5 + j, cache.view(commit=True)))
        return outs

    with torch.no_grad():
        plain, restarted = run(False), run(True)
        fresh_cache = model.new_cache(1, window=4)
        fresh = [_step(model, fresh_feed, j, fresh_cache.view(commit=True)) for j in range(4)]
    for j in range(4):
        assert relative(restarted[5 + j][1:2], fresh[j]) <= 1e-12
        assert relative(restarted[5 + j][[0, 2]], plain[5 + j][[0, 2]]) <= 1e-12
    assert relative(restarted[5][1], plain[5][1]) > 1e-3  # the row did restart


def test_cache_bytes_are_fixed_once_full(causal_model):
    feed = inputs(causal_model.config, b=1, t=10, seed=7)
    cache = causal_model.new_cache(1, window=4)
    sizes = {}
    with torch.no_grad():
        for j in range(10):
            _step(causal_model, feed, j, cache.view(commit=True))
            sizes[j] = cache.nbytes()
    assert sizes[0] > 0 and sizes[0] == sizes[3] == sizes[9]
    # one ring of keys and one of values per block: capacity 3 x 6 tokens x 24 channels x 8 bytes
    assert sizes[9] == causal_model.cache_slots * 2 * 3 * 6 * 24 * 8
