"""Learning works end to end through the Wan backbone: a tiny Wan-layout DiT in pixel space is pretrained
passively (full-sequence attention, no actions, one noise level per clip) on recorded SquareWorld episodes,
causalized with a continuous action input, fine-tuned with Diffusion Forcing, and then follows the actions in
a 16-frame rollout from one context frame of held-out episodes (75-85 s of one CPU core)."""

from __future__ import annotations

import time

import numpy as np
import torch

import vid2world as v2w
from vid2world.causal.wan import causalize_wan
from vid2world.data import SquareWorld
from vid2world.diffusion import ScheduleConfig
from vid2world.models.wan import WanConfig, WanTransformer
from vid2world.train import FitConfig, fit_world_model

from .test_learning import held_out_scores

SCHEDULE = ScheduleConfig(dynamic_rescale=None)
SAMPLER = v2w.SamplerConfig(steps=10, history_level="clean", eta=0.0)
CLIP = 8  # training clips, and the rollout's sliding window (temporal_length)


def tiny_pixel_wan() -> WanTransformer:
    """Wan's layout at toy size: RGB pixels in and out, 2x2 patches of an 8x8 frame (16 tokens a frame), width
    96 = 6 heads x 16, no text context (cross-attention is skipped when context is None)."""
    cfg = WanConfig(patch_size=(1, 2, 2), num_attention_heads=6, attention_head_dim=16, in_channels=3,
                    out_channels=3, text_dim=8, freq_dim=32, ffn_dim=192, num_layers=3, temporal_length=CLIP)
    return WanTransformer(cfg)


def assert_causalized_starts_as_passive(passive: WanTransformer, causal: WanTransformer) -> None:
    """Before fine-tuning the causal model computes, for frame 0, what the passive model computes for that
    frame seen alone (in a clip, the passive frame 0 sees the later frames too); actions change nothing."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 5, 8, 8, generator=gen)
    levels = torch.randint(0, 1000, (2, 5), generator=gen)
    actions = torch.randn(2, 5, 2, generator=gen)
    with torch.no_grad():
        alone = passive.eval()(x[:, :, :1], levels[:, :1])
        with_actions = causal.eval()(x, levels, actions=actions)
        without_actions = causal(x, levels)
    assert torch.equal(with_actions, without_actions)  # the action MLP's last layer starts at zero
    error = (with_actions[:, :, :1] - alone).norm() / alone.norm()
    assert error < 1e-5, f"causal frame 0 differs from the passive model's by {error:.2e} (relative)"


def test_tiny_wan_pretrained_passively_then_causalized_follows_the_actions():
    start = time.perf_counter()
    torch.manual_seed(0)
    world = SquareWorld(size=8, square=2, speed=1)
    frames, actions = world.dataset(episodes=400, frames=CLIP, seed=0)

    # (1) passive pretraining: the video prior alone, no actions, one noise level per clip
    passive = tiny_pixel_wan()
    pretrain = fit_world_model(v2w.WorldModel(passive, schedule=SCHEDULE, sampler=SAMPLER), frames, None,
                               FitConfig(steps=200, batch=16, lr=1e-2, diffusion_forcing=False))
    assert np.mean(pretrain[-20:]) < 0.4 * np.mean(pretrain[:20])

    # (2) causalize: frame-causal attention plus a continuous action input, one video frame per "latent" frame
    causal, _ = causalize_wan(passive, v2w.ActionSpace.continuous(2), temporal_compression=1)
    assert_causalized_starts_as_passive(passive, causal)

    # (3) fine-tune with actions (Diffusion Forcing: a noise level per frame)
    model = v2w.WorldModel(causal, schedule=SCHEDULE, sampler=SAMPLER)
    finetune = fit_world_model(model, frames, actions,
                               FitConfig(steps=500, batch=16, lr=1e-2, warmup=20, decay=True, seed=1))
    assert np.mean(finetune[-20:]) < 0.5 * np.mean(finetune[:20])

    # (4) roll out 16 frames from one context frame of held-out episodes, never seen in training
    ours, wrong_actions, frozen = held_out_scores(model, world, start)
    # Thresholds, as in test_learning.py: ignoring the actions scores about the shuffled rollout and copying
    # the first frame scores `frozen`, both near 12 dB. Measured: 17.75 dB (shuffled 11.72, frozen 12.23) on
    # this configuration; other initial weights (torch seeds 1 and 2) gave 17.10 and 16.40 dB (shuffled 11.70
    # and 11.74), so the worst seed stands 4.2 dB over frozen and 4.7 over shuffled against the 3 dB asked.
    assert ours > 15.0
    assert ours > wrong_actions + 3.0
    assert ours > frozen + 3.0
