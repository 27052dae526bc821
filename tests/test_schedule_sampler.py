"""Noise schedule and per-frame DDIM against the official tables and sampler step (fixtures 4 and 6)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from vid2world.diffusion import (DDIMSampler, NoiseSchedule, ScheduleConfig, autoregressive_matrix, ddim_timesteps,
                                 ddim_update, full_sequence_matrix, history_level, pyramid_matrix, sample_matrix)
from vid2world.diffusion.guidance import GuidanceConfig

from .conftest import load_json


@pytest.fixture(scope="module")
def tables(official):
    return load_file(official / "schedule.safetensors")


# The float64 tables agree within their own rounding error, not bit for bit: computed exactly (60 digits), the
# official betas are off by up to 2.6e-14 relative at the zero-SNR tail (cancellation in sqrt(abar) - sqrt(abar_T))
# and by ~5 eps of 1.0 where beta = 1 - alpha is small, so two correct float64 implementations (another CPU's
# vectorised kernels) differ by that much: an AVX-512 Zen 4 measured 5.1e-15 where the old bound was 1e-15 absolute.
BETAS_F64 = {"rtol": 1e-13, "atol": 16 * torch.finfo(torch.float64).eps}  # atol: ulps of the alphas betas come from
ALPHAS_CUMPROD_F64 = {"rtol": 1e-13, "atol": 0.0}


def test_schedule_tables_equal_the_official_ones(tables):
    s = NoiseSchedule()
    torch.testing.assert_close(s.betas_float64, tables["betas_float64"], **BETAS_F64)
    torch.testing.assert_close(s.alphas_cumprod_float64, tables["alphas_cumprod_float64"], **ALPHAS_CUMPROD_F64)
    assert torch.equal(s.alphas_cumprod, tables["alphas_cumprod"])
    assert torch.equal(s.scale_table, tables["scale_arr"])
    assert s.alphas_cumprod[-1] == 0 and abs(s.alphas_cumprod[0].item() - 0.99915) < 1e-5
    plain = NoiseSchedule(ScheduleConfig(zero_terminal_snr=False, prediction="eps", dynamic_rescale=None))
    torch.testing.assert_close(plain.betas_float64, tables["betas_float64_before_zsnr_rescale"], **BETAS_F64)


def test_schedule_equals_diffusers_ddim_scheduler():
    diffusers = pytest.importorskip("diffusers", reason="diffusers (dev extra) cross-check")
    ref = diffusers.DDIMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                                  beta_schedule="scaled_linear", rescale_betas_zero_snr=True,
                                  prediction_type="v_prediction", timestep_spacing="trailing",
                                  set_alpha_to_one=False, clip_sample=False)
    # diffusers builds its betas in float32, the official code (and vid2world) in float64: 5e-7 apart.
    torch.testing.assert_close(NoiseSchedule().alphas_cumprod, ref.alphas_cumprod, atol=1e-6, rtol=0)
    ref.set_timesteps(50)
    assert ddim_timesteps(50, "trailing").flip(0).tolist() == ref.timesteps.tolist()
    x0, noise = torch.randn(2, 4, 3, 4, 4), torch.randn(2, 4, 3, 4, 4)
    levels = torch.tensor([[0, 500, 999], [19, 39, 979]])
    ours = NoiseSchedule().target(x0, noise, levels)
    flat = lambda t: t.permute(0, 2, 1, 3, 4).reshape(6, 4, 4, 4)  # noqa: E731  per-frame samples for diffusers
    theirs = ref.get_velocity(flat(x0), flat(noise), levels.reshape(6))
    torch.testing.assert_close(flat(ours), theirs, atol=5e-6, rtol=0)  # same float32-vs-float64 tables


@pytest.mark.parametrize("spacing,name", [("trailing", "uniform_trailing"), ("uniform", "uniform")])
def test_ddim_tables(tables, spacing, name):
    s = NoiseSchedule()
    ts = ddim_timesteps(50, spacing)
    assert torch.equal(ts, tables[f"ddim50_{name}_timesteps"])
    assert torch.equal(s.alphas_cumprod[ts], tables[f"ddim50_{name}_alphas"])
    prev = torch.cat([s.alphas_cumprod[:1], s.alphas_cumprod[ts[:-1]]])
    assert torch.equal(prev, tables[f"ddim50_{name}_alphas_prev"])
    assert torch.equal(s.scale_table[ts], tables[f"ddim50_{name}_scale_arr"])


def test_other_spacings_and_history_levels():
    assert ddim_timesteps(10, "trailing").tolist() == [99, 199, 299, 399, 499, 599, 699, 799, 899, 999]
    assert ddim_timesteps(10, "leading").tolist() == list(range(0, 1000, 100))
    assert ddim_timesteps(3, "linspace").tolist() == [0, 500, 999]
    ts = ddim_timesteps(50, "trailing")
    assert history_level(ts, "penultimate") == 39 and history_level(ts, 20) == 20 and history_level(ts, "clean") == 0
    with pytest.raises(ValueError, match="steps must be in 1..1000"):
        ddim_timesteps(0)
    with pytest.raises(ValueError, match="spacing must be one of"):
        ddim_timesteps(10, "cosine")
    with pytest.raises(ValueError, match="history_level must be"):
        history_level(ts, "last")


def _official_case(official, case):
    io = load_file(official / "ddim_ar_step.safetensors")
    meta = load_json(official / "ddim_ar_step.json")["step_cases"][case]
    return {k.split(".", 1)[1]: v for k, v in io.items() if k.startswith(case + ".")}, meta


@pytest.mark.parametrize("case", ["first", "mid", "last", "mid_eta0_nocfg"])
def test_one_autoregressive_step_matches_the_official_sampler(official, case):
    io, meta = _official_case(official, case)
    guidance = GuidanceConfig(scale=meta["unconditional_guidance_scale"], rescale=meta["guidance_rescale"])
    v = io["v_cond"] if not guidance.active else guidance.apply(io["v_cond"][:, :, -1:], io["v_uncond"][:, :, -1:],
                                                                *_history_moments(io, guidance))
    ts = ddim_timesteps(50, "trailing")
    index = meta["ddim_index"]
    levels = io["ts"][:, -1:]
    next_level = torch.full_like(levels, int(ts[index - 1]) if index > 0 else -1)
    x_new, x0 = ddim_update(NoiseSchedule(), io["x"][:, :, -1:], v[:, :, -1:], levels, next_level,
                            meta["ddim_eta"], io["noise"][:, :, -1:])
    torch.testing.assert_close(x0, io["pred_x0"][:, :, -1:], atol=1e-5, rtol=0)
    expected = io["x_prev"][:, :, -1:]
    if case == "first":
        # k=999, eta=1: sqrt(1 - abar' - sigma^2) is exactly 0; the official code computes it in float32 and gets
        # sqrt(5.96e-8) = 2.44e-4 instead. Remove that artefact from its output and the rest matches.
        a_prev = torch.tensor(meta["a_prev"], dtype=torch.float32)
        sigma = torch.tensor(meta["sigma_t"], dtype=torch.float32)
        artefact = (1.0 - a_prev - sigma ** 2).sqrt()
        assert 1e-4 < artefact < 1e-3
        eps = NoiseSchedule().split(io["x"][:, :, -1:], levels, v[:, :, -1:])[1]
        expected = expected - artefact * eps
    torch.testing.assert_close(x_new, expected, atol=1e-5, rtol=0)


def _history_moments(io, guidance):
    from vid2world.diffusion.guidance import Moments, combine
    vc, vu = io["v_cond"][:, :, :-1], io["v_uncond"][:, :, :-1]
    return Moments.of(vc), Moments.of(combine(vc, vu, guidance.cfg_scale))


def test_matrices():
    ts = ddim_timesteps(4, "trailing")  # 249, 499, 749, 999
    assert full_sequence_matrix(ts, 2).tolist() == [[999, 999], [749, 749], [499, 499], [249, 249], [-1, -1]]
    ar = autoregressive_matrix(ts, history=2, level_of_history=39)
    assert ar[:, :2].eq(39).all() and ar[:, 2].tolist() == [999, 749, 499, 249, -1]
    pyr = pyramid_matrix(ts, 3, lag=1)
    assert pyr.shape == (7, 3)
    assert pyr[0].tolist() == [999, 999, 999] and pyr[1].tolist() == [749, 999, 999] and pyr[-1].tolist() == [-1] * 3
    assert (pyr[:, :-1] <= pyr[:, 1:]).all()  # earlier frames are never noisier


def test_sample_matrix_leaves_frames_whose_level_does_not_change():
    s = NoiseSchedule()
    x = torch.randn(1, 2, 3, 2, 2)
    ts = ddim_timesteps(5, "trailing")
    matrix = autoregressive_matrix(ts, history=2, level_of_history=39)
    calls = []

    def denoise(x_, levels):
        calls.append(levels.clone())
        return torch.zeros_like(x_)

    out = sample_matrix(DDIMSampler(s, ts, eta=0.0), denoise, x.clone(), matrix)
    assert torch.equal(out[:, :, :2], x[:, :, :2])  # history untouched
    assert len(calls) == 5 and all(c[0, :2].eq(39).all() for c in calls)
    assert not torch.equal(out[:, :, 2], x[:, :, 2])


def test_ddim_sampler_walks_the_autoregressive_column_and_steps_like_ddim_update():
    s, ts = NoiseSchedule(), ddim_timesteps(4, "trailing")
    sampler = DDIMSampler(s, ts, eta=1.0)
    assert sampler.transitions() == [(999, 749), (749, 499), (499, 249), (249, -1)]
    assert sampler.needs_noise and not DDIMSampler(s, ts, eta=0.0).needs_noise
    gen = torch.Generator().manual_seed(0)
    x, v, noise = (torch.randn(2, 3, 1, 4, 4, generator=gen) for _ in range(3))
    expected, _ = ddim_update(s, x, v, torch.tensor([499]), torch.tensor([249]), 1.0, noise)
    assert torch.equal(sampler.step(x, v, 499, 249, noise), expected)
