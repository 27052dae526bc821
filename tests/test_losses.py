"""Training objectives: Diffusion Forcing draws independent levels and action masks per frame."""

from __future__ import annotations

import torch

from vid2world.diffusion import NoiseSchedule, ScheduleConfig, diffusion_forcing_loss, full_sequence_loss


def record(store):
    def denoise(x_noisy, levels, mask):
        store.append((levels.clone(), mask.clone()))
        return torch.zeros_like(x_noisy)
    return denoise


def test_diffusion_forcing_levels_are_independent_and_uniform_per_frame():
    calls = []
    gen = torch.Generator().manual_seed(0)
    x0 = torch.zeros(64, 1, 8, 1, 1)
    for _ in range(40):
        diffusion_forcing_loss(record(calls), NoiseSchedule(), x0, generator=gen)
    levels = torch.cat([c[0] for c in calls]).double()  # [2560, 8]
    assert levels.min() >= 0 and levels.max() <= 999
    # Uniform on 0..999: mean 499.5, sd 288.7; 20480 draws -> the mean is within 499.5 +- 8 (4 sigma).
    assert abs(levels.mean().item() - 499.5) < 8
    counts = torch.histc(levels, bins=10, min=0, max=1000)
    expected = levels.numel() / 10
    assert ((counts - expected).square() / expected).sum().item() < 27.9  # chi2(9) at p = 0.001
    # Independent across frames: correlation between frames near 0 (sd ~ 1/sqrt(2560) = 0.02).
    corr = torch.corrcoef(levels.T)
    off_diagonal = corr[~torch.eye(8, dtype=torch.bool)]
    assert off_diagonal.abs().max().item() < 0.1
    assert (levels.std(dim=1) > 0).float().mean() > 0.99  # frames of a clip almost never share a level


def test_action_dropout_is_per_frame():
    calls = []
    gen = torch.Generator().manual_seed(1)
    for _ in range(40):
        diffusion_forcing_loss(record(calls), NoiseSchedule(), torch.zeros(64, 1, 8, 1, 1), 0.2, gen)
    mask = torch.cat([c[1] for c in calls])
    dropped = 1 - mask.mean().item()
    assert abs(dropped - 0.2) < 0.02  # 20480 Bernoulli draws: sd 0.003
    mixed = ((mask.sum(dim=1) > 0) & (mask.sum(dim=1) < 8)).float().mean().item()
    assert mixed > 0.7  # 1 - 0.8^8 - 0.2^8 = 0.83 of clips keep some actions and drop others
    corr = torch.corrcoef(mask.T.double())
    assert corr[~torch.eye(8, dtype=torch.bool)].abs().max().item() < 0.1


def test_full_sequence_shares_one_level_per_clip():
    calls = []
    full_sequence_loss(record(calls), NoiseSchedule(), torch.zeros(16, 1, 6, 1, 1))
    levels, mask = calls[0]
    assert (levels == levels[:, :1]).all() and levels[:, 0].unique().numel() > 1
    assert mask.eq(1).all()  # no action dropout by default


def test_loss_is_per_frame_mse_of_the_target_with_dynamic_rescale():
    schedule = NoiseSchedule()  # dynamic rescale on (DynamiCrafter)
    gen = torch.Generator().manual_seed(2)
    x0 = torch.randn(3, 4, 5, 2, 2, generator=gen)
    seen = {}

    def perfect(x_noisy, levels, mask):
        # The target v is computed from the *scaled* clean frames: x0 <- s(k) x0 before noising.
        scaled = x0 * schedule.scale(levels, x0)
        a = schedule.alpha_bar(levels, x0).float()
        noise = (x_noisy - a.sqrt() * scaled) / (1 - a).sqrt()
        seen["levels"] = levels
        return schedule.target(scaled, noise, levels)

    out = diffusion_forcing_loss(perfect, schedule, x0, generator=gen)
    assert out.per_frame.shape == (3, 5)
    assert out.loss.item() < 1e-8 and torch.equal(out.levels, seen["levels"])
    wrong = diffusion_forcing_loss(lambda x, lv, m: torch.zeros_like(x), schedule, x0, generator=gen)
    torch.testing.assert_close(wrong.loss, wrong.per_frame.mean())
    assert wrong.loss.item() > 0.1


def test_eps_prediction_target():
    s = NoiseSchedule(ScheduleConfig(zero_terminal_snr=False, prediction="eps", dynamic_rescale=None))
    x0, noise = torch.randn(1, 2, 3, 2, 2), torch.randn(1, 2, 3, 2, 2)
    levels = torch.tensor([[10, 500, 900]])
    assert torch.equal(s.target(x0, noise, levels), noise)
    x0_hat, eps_hat = s.split(s.add_noise(x0, levels, noise), levels, noise)
    torch.testing.assert_close(x0_hat, x0, atol=1e-4, rtol=1e-4)
