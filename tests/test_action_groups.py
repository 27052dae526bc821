"""Actions grouped per latent frame (temporal compression k): counts, grouping, its inverse, k = 1."""

from __future__ import annotations

import pytest
import torch

from vid2world.models.action_groups import (grouped_action_space, group_actions, latent_frame_count,
                                            ungroup_actions, video_frame_count)
from vid2world.models.config import ActionSpace
from vid2world.models.embeddings import followed_actions


def test_frame_counts():
    assert [latent_frame_count(n, 4) for n in (1, 5, 9, 81)] == [1, 2, 3, 21]
    assert [video_frame_count(t, 4) for t in (1, 2, 21)] == [1, 5, 81]
    assert latent_frame_count(7, 1) == 7
    for n in (0, 4, 80):
        expected = rf"video frames: expected 1 \+ 4 x \(latent frames - 1\).*got {n}"
        with pytest.raises(ValueError, match=expected):
            latent_frame_count(n, 4)
    with pytest.raises(ValueError, match="temporal compression k: expected an integer >= 1, got 0"):
        video_frame_count(3, 0)


def test_each_latent_frame_follows_the_actions_of_its_video_frames():
    k, a = 4, 2
    video = torch.arange(8 * a, dtype=torch.float64).reshape(1, 8, a)  # 9 video frames -> 3 latent frames
    groups = group_actions(video, k)
    assert groups.shape == (1, 3, k * a)
    assert not groups[0, 0].any()  # latent frame 0 is video frame 0: it follows no action
    for j in (1, 2):  # latent frame j (video frames 4(j-1)+1 .. 4j) follows a_{4(j-1)} .. a_{4j-1}
        assert torch.equal(groups[0, j].reshape(k, a), video[0, k * (j - 1):k * j])


def test_ungroup_inverts_group():
    video = torch.randn(3, 20, 5)  # 21 video frames -> 6 latent frames at k = 4
    assert torch.equal(ungroup_actions(group_actions(video, 4), 4), video)
    groups = torch.cat([torch.zeros(3, 1, 8), torch.randn(3, 4, 8)], dim=1)
    assert torch.equal(group_actions(ungroup_actions(groups, 4), 4), groups)


def test_k_equal_one_is_the_one_frame_shift():
    video = torch.randn(2, 6, 3)
    assert torch.equal(group_actions(video, 1), followed_actions(video))
    assert torch.equal(ungroup_actions(followed_actions(video), 1), video)


def test_wrong_lengths_are_named():
    with pytest.raises(ValueError, match=r"video_actions: 6 actions .* for 7 video frames; video frames: "):
        group_actions(torch.zeros(1, 6, 2), 4)
    with pytest.raises(ValueError, match=r"video_actions: expected \[B, N-1, A\], got shape \(6, 2\)"):
        group_actions(torch.zeros(6, 2), 4)
    with pytest.raises(ValueError, match=r"groups: expected \[B, T, k\*A\] with k=4 .* shape \(1, 3, 6\)"):
        ungroup_actions(torch.zeros(1, 3, 6), 4)


def test_grouped_action_space():
    space = grouped_action_space(ActionSpace.continuous(2, ("x", "y")), 3)
    assert space == ActionSpace.continuous(6, ("x@0", "y@0", "x@1", "y@1", "x@2", "y@2"))
    assert grouped_action_space(ActionSpace.multi_hot(5), 4) == ActionSpace.multi_hot(20)


# ---- action ranges: continuous actions enter the embedding scaled to [-1, 1] -----------------------------------------
def test_a_ranged_space_scales_onto_minus_one_to_one_and_round_trips():
    space = ActionSpace.continuous(3, ("x", "y", "still"), low=(0, -2, 5), high=(512, 2, 5))
    a = torch.tensor([[0.0, -2.0, 5.0], [512.0, 2.0, 5.0], [256.0, 1.0, 6.0]], dtype=torch.float64)
    assert torch.equal(space.scaled(a), torch.tensor([[-1.0, -1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.5, 1.0]],
                                                     dtype=torch.float64))  # a constant entry is only centred
    assert ActionSpace.from_dict(space.to_dict()) == space
    plain = ActionSpace.continuous(3)
    assert plain.scaled(a) is a and "low" not in plain.to_dict()  # the official models' raw actions stay raw
    grouped = grouped_action_space(space, 2)
    assert grouped.low == space.low * 2 and grouped.high == space.high * 2


@pytest.mark.parametrize("bad, match", [
    (dict(kind="multi_hot", dim=2, low=(0, 0), high=(1, 1)), r"continuous space's 2 entries each.*multi_hot"),
    (dict(kind="continuous", dim=2, low=(0,), high=(1, 1)), r"2 entries each, got 1 and 2"),
    (dict(kind="continuous", dim=1, low=(1,), high=(0,)), r"high >= low"),
    (dict(kind="continuous", dim=1, low=(float("nan"),), high=(0,)), r"finite"),
])
def test_bad_ranges_are_named(bad, match):
    with pytest.raises(ValueError, match=match):
        ActionSpace(**bad)


def test_a_datasets_ranges_reach_the_model_space():
    from vid2world.data.spec import ActionSpec

    spec = ActionSpec.continuous(("x", "y"), (0.0, 0.0), (512.0, 512.0), name="target")
    assert spec.model_space() == ActionSpace.continuous(2, ("target.x", "target.y"), (0, 0), (512, 512))
    assert ActionSpec.continuous(("x", "y")).model_space().low == ()  # no range known: raw


def test_the_unet_and_the_wan_transformer_embed_scaled_actions():
    import vid2world as v2w
    from vid2world.models.wan.transformer import WanTransformer
    from tests.test_wan_transformer import inputs, random_model, tiny

    ranged = ActionSpace.continuous(2, low=(0, 0), high=(512, 64))
    raw = torch.tensor([[[0.0, 64.0], [128.0, 16.0], [512.0, 0.0]]], dtype=torch.float64)
    scaled = ranged.scaled(raw)
    a, b = (v2w.VideoUNet(v2w.UNetConfig.preset("pixel-tiny", action_space=s)).double()
            for s in (ranged, ActionSpace.continuous(2)))
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.action_embedding(raw), b.action_embedding(scaled))
    assert not torch.equal(a.action_embedding(raw), b.action_embedding(raw))
    a = random_model(tiny(action_space=ranged))
    b = WanTransformer(tiny(action_space=ActionSpace.continuous(2))).double().eval()
    b.load_state_dict(a.state_dict())
    feed = inputs(a.config, b=1, t=3)
    with torch.no_grad():
        assert torch.equal(a(**{**feed, "actions": raw}), b(**{**feed, "actions": scaled}))
