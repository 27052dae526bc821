"""The three temporal normalisations as pure functions, against direct references."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vid2world.models.temporal import (TemporalConv, TemporalGroupNorm, causal_group_norm, clip_group_norm,
                                       frame_group_norm)


def video(seed: int = 0, b=2, c=64, t=5, h=3, w=4) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(b, c, t, h, w, generator=gen) * 3 + 1.5


def affine(c=64, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return 1 + 0.1 * torch.randn(c, generator=gen), 0.1 * torch.randn(c, generator=gen)


def test_clip_is_groupnorm_over_the_whole_clip():
    x, (w, b) = video(), affine()
    torch.testing.assert_close(clip_group_norm(x, 32, w, b, 1e-5), F.group_norm(x, 32, w, b, 1e-5))


def test_frame_normalises_each_frame_alone():
    x, (w, b) = video(), affine()
    out = frame_group_norm(x, 32, w, b, 1e-5)
    for t in range(x.shape[2]):
        torch.testing.assert_close(out[:, :, t], F.group_norm(x[:, :, t], 32, w, b, 1e-5))


def test_causal_pools_frames_up_to_t():
    x, (w, b) = video().double(), affine()
    out = causal_group_norm(x.float(), 32, w, b, 1e-5)
    for t in range(x.shape[2]):
        prefix = F.group_norm(x[:, :, : t + 1], 32, w.double(), b.double(), 1e-5)  # clip norm over 0..t
        torch.testing.assert_close(out[:, :, t].double(), prefix[:, :, t], atol=2e-5, rtol=0)


def test_causal_first_frame_equals_frame_mode_and_last_equals_clip():
    x, (w, b) = video(2), affine()
    causal = causal_group_norm(x, 32, w, b, 1e-6)
    torch.testing.assert_close(causal[:, :, 0], frame_group_norm(x, 32, w, b, 1e-6)[:, :, 0], atol=2e-5, rtol=0)
    torch.testing.assert_close(causal[:, :, -1], clip_group_norm(x, 32, w, b, 1e-6)[:, :, -1], atol=2e-5, rtol=0)


def test_causal_norm_is_stable_with_a_large_offset():
    # E[h^2] - E[h]^2 in float32 would lose everything here without the frame-0 shift.
    x, (w, b) = video(3) * 0.01 + 1000.0, affine()
    ref = F.group_norm(x.double()[:, :, :1], 32, w.double(), b.double(), 1e-5)[:, :, 0]
    torch.testing.assert_close(causal_group_norm(x, 32, w, b, 1e-5)[:, :, 0].double(), ref, atol=5e-3, rtol=0)


@pytest.mark.parametrize("mode", ["clip", "causal", "frame"])
def test_module_keeps_groupnorm_parameter_names_and_runs_in_bf16(mode):
    norm = TemporalGroupNorm(32, 64, mode=mode)
    assert set(norm.state_dict()) == {"weight", "bias"}
    out = norm(video().bfloat16())
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()


def test_bad_norm_mode():
    with pytest.raises(ValueError, match="temporal norm mode must be one of"):
        TemporalGroupNorm(32, 64, mode="batch")


def test_temporal_conv_causal_padding():
    conv = TemporalConv(2, 2, 3, causal=True)
    x = torch.zeros(1, 2, 6, 1, 1)
    x[:, :, 3] = 1.0  # an impulse at frame 3 reaches frames 3, 4, 5 only
    with torch.no_grad():
        conv.bias.zero_()
        y = conv(x)
    assert y.shape == x.shape
    assert y[:, :, :3].abs().max() == 0 and y[:, :, 3:].abs().max() > 0


def test_temporal_conv_one_frame_at_a_time_equals_the_whole_clip():
    """The streamed paths are the same conv: a frame evaluated over the cache (its predecessors' share of the
    output computed once, at their commit), repeated for guidance passes, and the committing call itself."""
    from vid2world.models.stream import StreamCache

    torch.manual_seed(0)
    conv = TemporalConv(6, 5, 3, causal=True)
    conv.cache_slot = 0
    x = torch.randn(2, 6, 5, 3, 4)
    cache = StreamCache(batch=2, capacity=4, slots=1)
    tol = dict(rtol=1e-5, atol=1e-6 * conv(x).abs().max().item())
    with torch.no_grad():
        whole = conv(x)
        evaluated, committed = [], []
        for t in range(5):
            frame = x[:, :, t:t + 1]
            evaluated.append(conv(torch.cat([frame, frame]), cache.view(repeat=2)))  # [cond; uncond] rows
            committed.append(conv(frame, cache.view(commit=True)))
            cache.fill = [f + 1 for f in cache.fill]
    torch.testing.assert_close(torch.cat(committed, dim=2), whole, **tol)
    for t, out in enumerate(evaluated):
        torch.testing.assert_close(out, torch.cat([whole[:, :, t:t + 1]] * 2), **tol)
    several = StreamCache(batch=2, capacity=4, slots=1)  # two frames per call go through the plain conv
    with torch.no_grad():
        pairs = [conv(x[:, :, t:t + 2], several.view(commit=True)) for t in (0, 2)]
        pairs.append(conv(x[:, :, 4:5], several.view()))
    torch.testing.assert_close(torch.cat(pairs, dim=2), whole, **tol)
