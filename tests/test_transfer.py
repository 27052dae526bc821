"""Weight transfer as pure functions on kernels (method.md section 3.2.7)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vid2world.causal import extrapolation_coefficients, transfer_conv_weight, transfer_kernel


def conv_time(z: torch.Tensor, kernel: torch.Tensor, causal: bool) -> torch.Tensor:
    """Apply a [C_out, C_in, K] kernel along time to z [C_in, T]: symmetric or left-only zero padding."""
    k = kernel.shape[-1]
    padded = F.pad(z, (k - 1, 0)) if causal else F.pad(z, (k // 2, k // 2))
    return F.conv1d(padded[None], kernel)[0]


def linear_in_time(channels: int, frames: int, gen: torch.Generator) -> torch.Tensor:
    slope, offset = torch.randn(channels, 1, generator=gen), torch.randn(channels, 1, generator=gen)
    return slope * torch.arange(frames, dtype=torch.float64) + offset


@pytest.mark.parametrize("width", [3, 5, 7])
@pytest.mark.parametrize("seed", range(3))
def test_extrapolative_is_exact_on_linear_inputs(width, seed):
    gen = torch.Generator().manual_seed(seed)
    kernel = torch.randn(4, 5, width, generator=gen, dtype=torch.float64)
    z = linear_in_time(5, 12, gen)
    m = width // 2
    original = conv_time(z, kernel, causal=False)
    interior = slice(m, z.shape[1] - m)  # neither kernel touches padding (the causal one reads 2m past frames)
    interior_causal = slice(2 * m, z.shape[1] - m)
    for p in range(2, width + 1):
        causal = conv_time(z, transfer_kernel(kernel, "extrapolative", past_points=p), causal=True)
        torch.testing.assert_close(causal[:, interior_causal], original[:, interior_causal], atol=1e-10, rtol=0)
    for mode in ("masked", "shift"):
        other = conv_time(z, transfer_kernel(kernel, mode), causal=True)
        assert (other[:, interior] - original[:, interior]).abs().max() > 1e-3, mode


def test_kernel3_index_forms():
    w = torch.tensor([[1.0, 2.0, 3.0]])
    assert transfer_kernel(w, "shift").tolist() == [[1.0, 2.0, 3.0]]
    assert transfer_kernel(w, "masked").tolist() == [[0.0, 1.0, 2.0]]
    assert transfer_kernel(w, "extrapolative").tolist() == [[0.0, 1.0 - 3.0, 2.0 + 2 * 3.0]]


@pytest.mark.parametrize("width", [3, 5])
def test_masked_is_exact_when_future_taps_are_zero(width):
    gen = torch.Generator().manual_seed(0)
    kernel = torch.randn(3, 3, width, generator=gen, dtype=torch.float64)
    kernel[..., width // 2 + 1:] = 0
    z = torch.randn(3, 10, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(conv_time(z, transfer_kernel(kernel, "masked"), True), conv_time(z, kernel, False))


@pytest.mark.parametrize("width", [3, 5, 7])
def test_shift_delays_the_output_by_m(width):
    gen = torch.Generator().manual_seed(1)
    kernel = torch.randn(2, 3, width, generator=gen, dtype=torch.float64)
    z = torch.randn(3, 12, generator=gen, dtype=torch.float64)
    m = width // 2
    shifted = conv_time(z, transfer_kernel(kernel, "shift"), causal=True)
    torch.testing.assert_close(shifted[:, m:], conv_time(z, kernel, causal=False)[:, :-m])


def test_extrapolation_coefficients():
    gamma = extrapolation_coefficients(horizon=1, past_points=2)
    assert gamma.tolist() == [[2.0, -1.0]]  # z_{t+1} ~ 2 z_t - z_{t-1}
    for p in range(1, 6):
        g = extrapolation_coefficients(horizon=3, past_points=p)
        torch.testing.assert_close(g.sum(dim=1), torch.ones(3, dtype=torch.float64))  # intercept 0, bias unchanged
        if p == 1:  # one point: constant extrapolation
            assert g.tolist() == [[1.0]] * 3
            continue
        # Two or more points reproduce any line exactly: z_{t-j} = a (t - j) + b  ->  z_{t+k}
        past = 0.7 * (10 - torch.arange(p, dtype=torch.float64)) + 0.3
        torch.testing.assert_close(g @ past, 0.7 * (10 + torch.arange(1, 4, dtype=torch.float64)) + 0.3)


def test_conv_weight_axis_and_purity():
    w = torch.randn(4, 3, 3, 1, 1)
    before = w.clone()
    out = transfer_conv_weight(w, "extrapolative", axis=2)
    assert torch.equal(w, before)  # pure: input untouched
    assert out.shape == w.shape
    torch.testing.assert_close(out[:, :, :, 0, 0], transfer_kernel(w[:, :, :, 0, 0], "extrapolative"))
    kernel2d = torch.randn(4, 3, 3, 3)  # the output conv: causal along height (axis 2)
    out2d = transfer_conv_weight(kernel2d, "masked", axis=2)
    torch.testing.assert_close(out2d[:, :, 1:], kernel2d[:, :, :2])
    assert out2d[:, :, 0].abs().sum() == 0


def test_bad_transfer_arguments():
    with pytest.raises(ValueError, match="transfer mode must be one of"):
        transfer_kernel(torch.zeros(1, 3), "linear")
    with pytest.raises(ValueError, match="width must be odd"):
        transfer_kernel(torch.zeros(1, 4), "masked")
    with pytest.raises(ValueError, match="past_points must be in 1..3"):
        transfer_kernel(torch.zeros(1, 3), "extrapolative", past_points=4)
