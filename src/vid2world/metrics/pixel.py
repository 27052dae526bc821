"""Per-frame pixel metrics on uint8 videos [B, T, H, W, 3] (method.md 10.1): PSNR and SSIM as piqa computes them
(`piqa.PSNR(value_range=1, epsilon=1e-8)`, `piqa.SSIM()`) on frames mapped to [0, 1], and MSE on [-1, 1].

Every function returns per-frame values [B, T] in float64: a numpy array for numpy inputs, otherwise a tensor on the
input tensor's device. Frames are processed in chunks so memory stays bounded whatever the video length. uint8
frames are already inside the valid range, so the clamping method.md asks for is a no-op here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

# float64 elements per intermediate array of one chunk; SSIM holds about a dozen of them (~400 MB at most)
_CHUNK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class SSIMConfig:
    """The SSIM window and constants; the defaults are piqa.SSIM()'s (Wang et al. 2004)."""

    window: int = 11
    sigma: float = 1.5
    k1: float = 0.01
    k2: float = 0.03
    value_range: float = 1.0


def _check_video(video: Any, name: str) -> None:
    is_numpy = isinstance(video, np.ndarray)
    if not (is_numpy or isinstance(video, Tensor)):
        raise ValueError(f"{name}: expected uint8 frames [B, T, H, W, 3] as a numpy array or torch tensor, "
                         f"got {type(video).__name__}")
    shape = tuple(video.shape)
    if len(shape) != 5 or shape[-1] != 3:
        raise ValueError(f"{name}: expected frames [B, T, H, W, 3], got shape {shape}")
    if video.dtype != (np.uint8 if is_numpy else torch.uint8):
        raise ValueError(f"{name}: expected dtype uint8 (0..255), got {video.dtype}")
    if min(shape[:4]) < 1:
        raise ValueError(f"{name}: expected at least one clip of at least one non-empty frame, got shape {shape}")


def _per_frame(pred: Any, target: Any, frame_fn: Callable[[Tensor, Tensor], Tensor], min_side: int = 1) -> Any:
    """Checks both videos, then applies `frame_fn` (float64 [N, 3, H, W] in [0, 255] x2 -> [N]) chunk by chunk."""
    _check_video(pred, "pred")
    _check_video(target, "target")
    if tuple(pred.shape) != tuple(target.shape):
        raise ValueError(f"pred and target: expected the same shape, got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    if min(pred.shape[2:4]) < min_side:
        raise ValueError(f"pred and target: SSIM's {min_side}x{min_side} window needs frames of at least "
                         f"{min_side}x{min_side} pixels, got H, W = {pred.shape[2]}, {pred.shape[3]}")
    tensors = [v for v in (pred, target) if isinstance(v, Tensor)]
    device = tensors[0].device if tensors else torch.device("cpu")
    b, t, h, w, _ = pred.shape
    flat = [v.reshape(b * t, h, w, 3) for v in (pred, target)]
    step = max(1, _CHUNK_ELEMENTS // (3 * h * w))
    out = []
    for start in range(0, b * t, step):
        x, y = (_to_float(v[start:start + step], device) for v in flat)
        out.append(frame_fn(x, y))
    values = torch.cat(out).reshape(b, t)
    return values if tensors else values.numpy()


def _to_float(frames: Any, device: torch.device) -> Tensor:
    """uint8 [N, H, W, 3] -> float64 [N, 3, H, W] with values 0..255. numpy chunks are copied (read-only memory-mapped
    arrays are welcome and never written to)."""
    if isinstance(frames, np.ndarray):
        frames = torch.from_numpy(frames.astype(np.float64))
    return frames.to(device=device, dtype=torch.float64).permute(0, 3, 1, 2)


def _psnr_frames(x: Tensor, y: Tensor, epsilon: float = 1e-8) -> Tensor:
    mse = ((x - y) / 255.0).square().flatten(1).mean(dim=1)
    return 10.0 * torch.log10(1.0 / (mse + epsilon))


def _mse_frames(x: Tensor, y: Tensor) -> Tensor:
    # [0, 255] -> [-1, 1] scales differences by 2 / 255
    return ((x - y) / 127.5).square().flatten(1).mean(dim=1)


def gaussian_window(size: int, sigma: float, dtype: torch.dtype = torch.float64,
                    device: torch.device | str = "cpu") -> Tensor:
    """The 1-D Gaussian window [size], centred, normalised to sum 1 (piqa's `gaussian_kernel`)."""
    offsets = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    window = torch.exp(-offsets.square() / (2.0 * sigma ** 2))
    return window / window.sum()


def _ssim_frames(x: Tensor, y: Tensor, config: SSIMConfig) -> Tensor:
    """piqa.ssim: separable Gaussian blur without padding ("valid"), map = luminance * contrast-structure, mean over
    channels and pixels. Variances are E[x^2] - E[x]^2, as piqa computes them."""
    x, y = x / 255.0 * config.value_range, y / 255.0 * config.value_range
    stats = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # [N, 15, H, W]: one grouped blur for all five
    window = gaussian_window(config.window, config.sigma, x.dtype, x.device)
    groups = stats.shape[1]
    stats = F.conv2d(stats, window.view(1, 1, -1, 1).expand(groups, 1, -1, 1), groups=groups)
    stats = F.conv2d(stats, window.view(1, 1, 1, -1).expand(groups, 1, 1, -1), groups=groups)
    mu_x, mu_y, xx, yy, xy = stats.chunk(5, dim=1)
    c1 = (config.k1 * config.value_range) ** 2
    c2 = (config.k2 * config.value_range) ** 2
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    cs = (2.0 * (xy - mu_xy) + c2) / ((xx - mu_xx) + (yy - mu_yy) + c2)
    ssim_map = (2.0 * mu_xy + c1) / (mu_xx + mu_yy + c1) * cs
    return ssim_map.flatten(1).mean(dim=1)


def psnr(pred: Any, target: Any) -> Any:
    """Per-frame PSNR in dB [B, T] of uint8 videos [B, T, H, W, 3]: piqa.PSNR(value_range=1, epsilon=1e-8) on
    frames / 255, i.e. 10 log10(1 / (MSE + 1e-8)) with the MSE over channels and pixels (80 dB for equal frames)."""
    return _per_frame(pred, target, _psnr_frames)


def mse(pred: Any, target: Any) -> Any:
    """Per-frame mean squared error [B, T] of uint8 videos [B, T, H, W, 3] mapped to [-1, 1] (logged, not
    reported)."""
    return _per_frame(pred, target, _mse_frames)


def ssim(pred: Any, target: Any, config: SSIMConfig = SSIMConfig()) -> Any:
    """Per-frame SSIM [B, T] of uint8 videos [B, T, H, W, 3]: piqa.SSIM() on frames / 255 (11x11 Gaussian window,
    sigma 1.5, no padding, 3 channels, K1 0.01, K2 0.03). Frames must be at least `config.window` pixels each way."""
    return _per_frame(pred, target, lambda x, y: _ssim_frames(x, y, config), min_side=config.window)


@dataclass(frozen=True)
class FrameMetric:
    """A per-frame metric as reports describe it: `fn(pred, target)` maps uint8 videos to values [B, T]."""

    name: str
    fn: Callable[[Any, Any], Any]
    higher_is_better: bool
    unit: str
    convention: str


FRAME_METRICS: dict[str, FrameMetric] = {
    "psnr": FrameMetric("PSNR", psnr, True, "dB",
                        "piqa.PSNR(value_range=1, epsilon=1e-8) on uint8/255, per frame, mean over frames"),
    "ssim": FrameMetric("SSIM", ssim, True, "",
                        "piqa.SSIM() (11x11 Gaussian, sigma 1.5, valid region, K1 0.01, K2 0.03, value_range 1) "
                        "on uint8/255, per frame, mean over frames"),
    "mse": FrameMetric("MSE", mse, False, "",
                       "mean squared error on frames mapped to [-1, 1] (uint8/127.5 - 1), per frame, mean over "
                       "frames; logged, not reported"),
}
