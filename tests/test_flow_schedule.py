"""Wan's rectified-flow schedule inside vid2world's DDIM: a DDIM move at eta 0 is flow matching's Euler step (the
update diffusers' FlowMatchEulerDiscreteScheduler makes), and noising / targets / splitting invert each other."""

from __future__ import annotations

import pytest
import torch

from vid2world.diffusion.sampler import DDIMSampler, ddim_update
from vid2world.diffusion.schedule import NoiseSchedule, ScheduleConfig
from vid2world.diffusion.timesteps import ddim_timesteps

FLOW = ScheduleConfig(prediction="flow", zero_terminal_snr=False, dynamic_rescale=None)


def test_flow_noising_target_and_split_invert_each_other():
    schedule = NoiseSchedule(FLOW)
    gen = torch.Generator().manual_seed(0)
    x0, eps = (torch.randn(2, 3, 4, 5, 5, generator=gen, dtype=torch.float64) for _ in range(2))
    levels = torch.tensor([[0, 250, 600, 999], [999, 10, 500, 1]])
    x_t = schedule.add_noise(x0, levels, eps)
    s = (levels + 1).double() / 1000
    assert torch.allclose(x_t, (1 - s)[:, None, :, None, None] * x0 + s[:, None, :, None, None] * eps, rtol=1e-15)
    assert torch.equal(schedule.target(x0, eps, levels), eps - x0)  # Wan's velocity
    x0_hat, eps_hat = schedule.split(x_t, levels, eps - x0)
    assert (x0_hat - x0).abs().max() < 1e-13 and (eps_hat - eps).abs().max() < 1e-13


@pytest.mark.parametrize("level,next_level", [(999, 700), (700, 100), (100, 0)])
def test_ddim_at_eta_zero_is_the_flow_euler_step(level, next_level):
    schedule = NoiseSchedule(FLOW)
    gen = torch.Generator().manual_seed(1)
    x, v = (torch.randn(1, 4, 1, 6, 6, generator=gen, dtype=torch.float64) for _ in range(2))
    moved, _ = ddim_update(schedule, x, v, torch.tensor([[level]]), torch.tensor([[next_level]]), 0.0, None)
    sigma, sigma_next = (level + 1) / 1000, (next_level + 1) / 1000
    euler = x + (sigma_next - sigma) * v  # FlowMatchEulerDiscreteScheduler.step
    assert (moved - euler).abs().max() <= 1e-12 * euler.abs().max()


def test_a_flow_sampler_recovers_a_point_mass_exactly():
    # A model that always predicts the velocity toward one x0 must land on it after any DDIM path at eta 0.
    schedule = NoiseSchedule(FLOW)
    gen = torch.Generator().manual_seed(2)
    target, x = (torch.randn(1, 2, 1, 4, 4, generator=gen, dtype=torch.float64) for _ in range(2))
    sampler = DDIMSampler(schedule, ddim_timesteps(7, "trailing"), eta=0.0, final_alpha_one=True)
    first = sampler.transitions()[0][0]
    x = schedule.add_noise(target, torch.tensor([[first]]), x)
    for level, next_level in sampler.transitions():
        s = (level + 1) / 1000
        eps = (x - (1 - s) * target) / s
        x = sampler.step(x, eps - target, level, next_level, None)
    assert (x - target).abs().max() < 1e-10


def test_flow_refuses_vp_only_settings():
    with pytest.raises(ValueError, match="flow schedule has its own noise levels"):
        ScheduleConfig(prediction="flow")


def test_a_timestep_shift_moves_the_steps_toward_noise_as_diffusers_does():
    steps = ddim_timesteps(10, "trailing", 1000, shift=5.0)
    s = torch.linspace(1, 0, 11, dtype=torch.float64)[:-1]  # diffusers' flow sigmas before the shift, 10 steps
    want = torch.round(1000 * 5 * s / (1 + 4 * s)).long() - 1
    assert torch.equal(steps, want.flip(0))
    assert torch.equal(ddim_timesteps(10, "trailing", 1000, shift=1.0), ddim_timesteps(10, "trailing"))
    assert steps[0] > ddim_timesteps(10, "trailing")[0]  # the lowest step sits at more noise
    with pytest.raises(ValueError, match="shift must be a finite number > 0"):
        ddim_timesteps(10, "trailing", 1000, shift=0.0)
