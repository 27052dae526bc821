"""Pixel metrics (PSNR, SSIM, MSE) and the Frechet distance against closed forms and independent implementations."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
import scipy.ndimage
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torchmetrics.functional.image import structural_similarity_index_measure

from vid2world import metrics
from vid2world.metrics import pixel


def _videos(seed: int, shape=(2, 3, 24, 31, 3), noise: float = 40.0) -> tuple[np.ndarray, np.ndarray]:
    """A structured target (gradients, stripes, a square) and a noisy prediction of it, both uint8."""
    rng = np.random.default_rng(seed)
    b, t, h, w, _ = shape
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / w, yy * 255 / h, 127.5 + 127.5 * np.sin(xx / 2.0)], axis=-1)
    base[h // 4:h // 2, w // 4:w // 2] = [250, 10, 30]
    shift = rng.integers(0, 60, size=(b, t, 1, 1, 3))
    target = np.clip(base + shift, 0, 255).astype(np.uint8)
    pred = np.clip(target + rng.normal(0, noise, size=shape), 0, 255).astype(np.uint8)
    return pred, target


def test_psnr_and_mse_match_the_closed_form_of_constructed_errors():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 200, size=(2, 3, 12, 13, 3), dtype=np.uint8)
    offsets = np.array([[0, 1, 7], [25, 55, 3]])  # a constant error per frame (no clipping: target < 200)
    pred = (target + offsets[:, :, None, None, None]).astype(np.uint8)
    expected_mse01 = (offsets / 255.0) ** 2
    np.testing.assert_allclose(metrics.psnr(pred, target), 10 * np.log10(1 / (expected_mse01 + 1e-8)), rtol=1e-12)
    np.testing.assert_allclose(metrics.mse(pred, target), (2 * offsets / 255.0) ** 2, rtol=1e-12)
    assert metrics.psnr(pred, target)[0, 0] == pytest.approx(80.0, rel=1e-12)  # identical: 10 log10(1 / 1e-8)
    # errors on part of the frame only: one pixel of one channel off by 255
    half = target.copy()
    half[0, 0, 0, 0, 1] = 255 - half[0, 0, 0, 0, 1] if half[0, 0, 0, 0, 1] < 128 else 0
    mse01 = (int(half[0, 0, 0, 0, 1]) - int(target[0, 0, 0, 0, 1])) ** 2 / 255.0 ** 2 / (12 * 13 * 3)
    assert metrics.psnr(half, target)[0, 0] == pytest.approx(10 * np.log10(1 / (mse01 + 1e-8)), rel=1e-12)


def test_ssim_of_a_video_with_itself_is_one():
    _, target = _videos(1)
    np.testing.assert_allclose(metrics.ssim(target, target), 1.0, rtol=0, atol=1e-12)
    flat = np.full((1, 2, 11, 11, 3), 77, np.uint8)  # constant frames: zero variance, still exactly 1
    np.testing.assert_allclose(metrics.ssim(flat, flat), 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", [(2, 3, 24, 31, 3), (1, 2, 11, 40, 3), (1, 1, 11, 11, 3)])
def test_ssim_matches_torchmetrics_on_the_valid_region(shape):
    """torchmetrics reflect-pads by 5 and averages the whole map; cropping the padded border off its full map leaves
    exactly the windows that lie inside the image: piqa's "valid" map. Same kernel (11, sigma 1.5), same C1, C2."""
    pred, target = _videos(2, shape)
    x, y = (torch.from_numpy(v.reshape(-1, *shape[2:])).permute(0, 3, 1, 2).double() / 255 for v in (pred, target))
    _, full = structural_similarity_index_measure(x, y, gaussian_kernel=True, sigma=1.5, kernel_size=11,
                                                  data_range=1.0, reduction="none", return_full_image=True)
    expected = full[..., 5:-5, 5:-5].flatten(1).mean(dim=1).reshape(shape[:2]).numpy()
    got = metrics.ssim(pred, target)
    assert 0.05 < got.min() and got.max() < 0.99  # the comparison is not between two ones
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def _ssim_direct(x: np.ndarray, y: np.ndarray) -> float:
    """One float64 image [H, W, 3] in [0, 1]: means by scipy correlation with the 2-D window, (co)variances as
    window-weighted sums of centred products over every window position."""
    k = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5 ** 2))
    w2 = np.outer(k, k) / np.outer(k, k).sum()
    maps = []
    for c in range(3):
        mx, my = (scipy.ndimage.correlate(v[..., c], w2, mode="constant")[5:-5, 5:-5] for v in (x, y))
        wx, wy = (sliding_window_view(v[..., c], (11, 11)) for v in (x, y))
        dx, dy = wx - mx[..., None, None], wy - my[..., None, None]
        vx, vy, cxy = ((a * b * w2).sum(axis=(-1, -2)) for a, b in ((dx, dx), (dy, dy), (dx, dy)))
        c1, c2 = 0.01 ** 2, 0.03 ** 2
        maps.append((2 * mx * my + c1) * (2 * cxy + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2)))
    return float(np.mean(maps))


def test_ssim_matches_a_direct_windowed_implementation():
    pred, target = _videos(3, (1, 3, 17, 20, 3), noise=25.0)
    expected = [[_ssim_direct(pred[0, t] / 255.0, target[0, t] / 255.0) for t in range(3)]]
    np.testing.assert_allclose(metrics.ssim(pred, target), expected, rtol=1e-10)


@pytest.mark.parametrize("name", ["psnr", "ssim", "mse"])
def test_numpy_and_torch_inputs_give_identical_values_of_their_own_kind(name):
    fn = metrics.FRAME_METRICS[name].fn
    pred, target = _videos(4)
    from_numpy = fn(pred, target)
    from_torch = fn(torch.from_numpy(pred), torch.from_numpy(target))
    mixed = fn(pred, torch.from_numpy(target))
    assert isinstance(from_numpy, np.ndarray) and from_numpy.dtype == np.float64 and from_numpy.shape == (2, 3)
    assert isinstance(from_torch, torch.Tensor) and from_torch.dtype == torch.float64
    np.testing.assert_array_equal(from_torch.numpy(), from_numpy)
    np.testing.assert_array_equal(mixed.numpy(), from_numpy)


@pytest.mark.parametrize("name", ["psnr", "ssim", "mse"])
def test_chunked_frames_give_the_unchunked_values(name, monkeypatch):
    fn = metrics.FRAME_METRICS[name].fn
    pred, target = _videos(5, (2, 3, 16, 16, 3))
    whole = fn(pred, target)
    monkeypatch.setattr(pixel, "_CHUNK_ELEMENTS", 4 * 3 * 16 * 16)  # four frames per chunk: 4 + 2 frames
    np.testing.assert_allclose(fn(pred, target), whole, rtol=1e-14)
    read_only = pred.copy()
    read_only.flags.writeable = False  # as np.load(..., mmap_mode="r") gives
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(fn(read_only, target), whole, rtol=1e-14)


@pytest.mark.parametrize("name", ["psnr", "ssim", "mse"])
def test_registry_directions_agree_with_the_metrics(name):
    """Against the same target, a closer prediction scores better in the direction the registry states."""
    entry = metrics.FRAME_METRICS[name]
    close, target = _videos(6, noise=5.0)
    far, _ = _videos(6, noise=60.0)
    better = entry.fn(close, target) > entry.fn(far, target)
    assert better.all() if entry.higher_is_better else (~better).all()
    assert entry.name and entry.convention and isinstance(entry.unit, str)


def test_bad_videos_get_one_line_errors_naming_what_was_given():
    good = np.zeros((1, 2, 12, 12, 3), np.uint8)
    cases = [
        (good.astype(np.float32), good, r"pred: expected dtype uint8 \(0\.\.255\), got float32"),
        (good, good[..., :2], r"target: expected frames \[B, T, H, W, 3\], got shape \(1, 2, 12, 12, 2\)"),
        (good[0], good[0], r"pred: expected frames \[B, T, H, W, 3\], got shape \(2, 12, 12, 3\)"),
        (good, good[:, :1], r"expected the same shape, got \(1, 2, 12, 12, 3\) and \(1, 1, 12, 12, 3\)"),
        (good.tolist(), good, r"pred: expected uint8 frames .* got list"),
        (good[:, :0], good[:, :0], r"pred: expected at least one clip"),
        (torch.zeros(1, 2, 12, 12, 3), good, r"pred: expected dtype uint8 \(0\.\.255\), got torch.float32"),
    ]
    for pred, target, message in cases:
        for fn in (metrics.psnr, metrics.ssim, metrics.mse):
            with pytest.raises(ValueError, match=message):
                fn(pred, target)
    small = np.zeros((1, 1, 10, 32, 3), np.uint8)
    with pytest.raises(ValueError, match=r"11x11 window needs frames of at least 11x11 pixels, got H, W = 10, 32"):
        metrics.ssim(small, small)
    assert metrics.psnr(small, small).shape == (1, 1)  # only SSIM has a window


# ---------------------------------------------------------------------------------------------- Frechet distance

def _exact_samples(rng, mean: np.ndarray, cov: np.ndarray, n: int) -> np.ndarray:
    """n samples whose sample mean is `mean` and unbiased sample covariance is `cov`, up to round-off."""
    z = rng.normal(size=(n, len(mean)))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.atleast_2d(np.cov(z, rowvar=False)))).T  # whitened: covariance exactly I
    return z @ np.linalg.cholesky(cov).T + mean


def _closed_form(mean_a, cov_a, mean_b, cov_b) -> float:
    root = scipy.linalg.sqrtm(cov_a @ cov_b)
    return float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root).real)


def test_frechet_distance_matches_the_closed_form_of_two_gaussians():
    rng = np.random.default_rng(7)
    d = 6
    mean_a, mean_b = rng.normal(size=d), rng.normal(size=d) + 1.0
    ga, gb = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    cov_a, cov_b = ga @ ga.T + 0.1 * np.eye(d), gb @ gb.T + 0.5 * np.eye(d)
    a, b = _exact_samples(rng, mean_a, cov_a, 50), _exact_samples(rng, mean_b, cov_b, 80)
    expected = _closed_form(mean_a, cov_a, mean_b, cov_b)
    assert expected > 1.0
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-8)
    assert metrics.frechet_distance(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(expected, rel=1e-8)
    assert metrics.frechet_distance(a.astype(np.float32), b) == pytest.approx(expected, rel=1e-5)
    # one dimension: (mu_a - mu_b)^2 + (s_a - s_b)^2
    one_a, one_b = _exact_samples(rng, [2.0], [[9.0]], 10), _exact_samples(rng, [-1.0], [[4.0]], 12)
    assert metrics.frechet_distance(one_a, one_b) == pytest.approx(9.0 + 1.0, rel=1e-10)


def test_frechet_distance_of_a_set_to_itself_is_zero_and_arguments_commute():
    rng = np.random.default_rng(8)
    a = rng.normal(size=(40, 16)) * 30.0 + 5.0
    b = rng.normal(size=(30, 16)) * 20.0
    scale = np.trace(np.cov(a, rowvar=False))
    assert 0.0 <= metrics.frechet_distance(a, a) < 1e-9 * scale
    forward, backward = metrics.frechet_distance(a, b), metrics.frechet_distance(b, a)
    assert forward > 0.1 * scale and forward == pytest.approx(backward, rel=1e-10)


def test_frechet_distance_stays_real_with_rank_deficient_covariances():
    """D > N: both covariances are singular. The trace term is checked against the eigenvalues of the non-symmetric
    S_a S_b (numpy's general eigvals), the same spectrum as sqrt(S_a) S_b sqrt(S_a); eigenvalues at round-off level
    (numpy's matrix_rank tolerance) count as 0 in both, else their square roots add ~1e-8 noise each."""
    rng = np.random.default_rng(9)
    a, b = rng.normal(size=(6, 32)), rng.normal(size=(9, 32)) + 0.3
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    eig = np.linalg.eigvals(cov_a @ cov_b).real
    eig = np.where(eig > np.abs(eig).max() * len(eig) * np.finfo(np.float64).eps, eig, 0.0)
    assert np.count_nonzero(eig) <= 5  # rank of S_a is at most N - 1
    expected = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * np.sqrt(eig).sum()
    got = metrics.frechet_distance(a, b)
    assert isinstance(got, float) and np.isfinite(got) and got > 0
    assert got == pytest.approx(expected, rel=1e-10)
    assert got == pytest.approx(metrics.frechet_distance(b, a), rel=1e-10)
    assert 0.0 <= metrics.frechet_distance(a, a) < 1e-9 * np.trace(cov_a)


def test_bad_features_get_one_line_errors():
    good = np.zeros((4, 3))
    cases = [
        (good[:1], good, r"features_a: a covariance needs at least 2 samples, got shape \(1, 3\)"),
        (good, np.zeros((4, 5)), r"expected the same feature width D, got shapes \(4, 3\) and \(4, 5\)"),
        (good, np.zeros(4), r"features_b: expected features \[N, D\], got shape \(4,\)"),
        (np.where(np.eye(4, 3) > 0, np.nan, 0.0), good, r"features_a: features contain NaN or inf"),
        (good, torch.full((4, 3), float("inf")), r"features_b: features contain NaN or inf"),
        ([[0.0] * 3] * 4, good, r"features_a: expected features \[N, D\] as a numpy array or torch tensor, got list"),
    ]
    for a, b, message in cases:
        with pytest.raises(ValueError, match=message):
            metrics.frechet_distance(a, b)
