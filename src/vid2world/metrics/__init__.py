"""Video and image metrics, following method.md 10.1 exactly (value ranges, clamping, windows, aggregation).

Pixel metrics need no weights. The network metrics (LPIPS, FID, FVD) load their networks from files the user gives;
without them a metric is skipped and says so, never approximated.
"""

from .frechet import frechet_distance
from .pixel import FRAME_METRICS, FrameMetric, SSIMConfig, mse, psnr, ssim

__all__ = ["FRAME_METRICS", "FrameMetric", "SSIMConfig", "frechet_distance", "mse", "psnr", "ssim"]
