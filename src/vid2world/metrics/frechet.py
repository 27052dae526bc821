"""The Frechet distance between two sets of features (FID, FVD), each summarised as a Gaussian:

    d = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2))

with means and unbiased covariances (ddof = 1), as pytorch-fid and StyleGAN-V compute them. The trace term is taken
from the symmetric positive semi-definite matrix sqrt(S_a) S_b sqrt(S_a), which has the same eigenvalues as S_a S_b,
through symmetric eigendecompositions in float64: it stays real and finite when the covariances are singular (more
dimensions than samples), where scipy.linalg.sqrtm of the non-symmetric product may turn complex or blow up.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor


def _features(x: Any, name: str, device: torch.device | None) -> Tensor:
    if isinstance(x, np.ndarray):
        if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
            raise ValueError(f"{name}: expected real-valued features [N, D], got dtype {x.dtype}")
        x = torch.from_numpy(x.astype(np.float64))  # a copy: read-only arrays are welcome
    elif not isinstance(x, Tensor):
        raise ValueError(f"{name}: expected features [N, D] as a numpy array or torch tensor, got {type(x).__name__}")
    elif x.is_complex() or x.dtype == torch.bool:
        raise ValueError(f"{name}: expected real-valued features [N, D], got dtype {x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"{name}: expected features [N, D], got shape {tuple(x.shape)}")
    if x.shape[0] < 2:
        raise ValueError(f"{name}: a covariance needs at least 2 samples, got shape {tuple(x.shape)}")
    x = x.to(device=device if device is not None else x.device, dtype=torch.float64)
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name}: features contain NaN or inf")
    return x


def _rank_floor(values: Tensor) -> Tensor:
    """Eigenvalues of a PSD matrix with those at round-off level (numpy's matrix_rank tolerance) set to 0: their
    square roots would add sqrt(eps)-sized noise per null direction."""
    tolerance = values.abs().max() * values.numel() * torch.finfo(values.dtype).eps
    return torch.where(values > tolerance, values, torch.zeros_like(values))


def _psd_sqrt(matrix: Tensor) -> Tensor:
    """The symmetric square root of a symmetric PSD matrix."""
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * _rank_floor(values).sqrt()) @ vectors.T


def trace_sqrt_product(cov_a: Tensor, cov_b: Tensor) -> Tensor:
    """tr((S_a S_b)^(1/2)) for symmetric PSD S_a, S_b, as the sum of the square roots of the eigenvalues of
    sqrt(S_a) S_b sqrt(S_a) (similar to S_a S_b, but symmetric)."""
    root = _psd_sqrt(cov_a)
    middle = root @ cov_b @ root
    middle = (middle + middle.T) / 2  # exact symmetry for eigh; the product drifts by round-off
    return _rank_floor(torch.linalg.eigvalsh(middle)).sqrt().sum()


def frechet_distance(features_a: Any, features_b: Any) -> float:
    """Frechet distance between the Gaussians fitted to features [N, D] and [M, D] (numpy or torch; N, M >= 2).

    Computed in float64 on the device of the first tensor given (CPU for numpy). A result below zero can only be
    round-off (the distance of a set to itself), and is returned as 0."""
    device = next((x.device for x in (features_a, features_b) if isinstance(x, Tensor)), None)
    a = _features(features_a, "features_a", device)
    b = _features(features_b, "features_b", device)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"features_a and features_b: expected the same feature width D, got shapes "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    mean_a, mean_b = a.mean(dim=0), b.mean(dim=0)
    cov_a, cov_b = torch.cov(a.T, correction=1), torch.cov(b.T, correction=1)
    if a.shape[1] == 1:  # torch.cov returns a 0-d tensor for one variable
        cov_a, cov_b = cov_a.reshape(1, 1), cov_b.reshape(1, 1)
    distance = ((mean_a - mean_b).square().sum() + cov_a.trace() + cov_b.trace()
                - 2.0 * trace_sqrt_product(cov_a, cov_b))
    return max(float(distance), 0.0)
