"""Video and image metrics, following method.md 10.1 exactly (value ranges, clamping, windows, aggregation).

Pixel metrics need no weights. The network metrics (LPIPS, FID, FVD) load their networks from files the user gives;
without them a metric is skipped and says so, never approximated.
"""

from .frechet import frechet_distance
from .i3d import FVD_CONVENTION, I3DFeatures, fvd_features
from .inception import InceptionFeatures, fid_features
from .lpips import LPIPS, lpips_frames, lpips_net_for
from .motion import horizontal_shift, view_shifts
from .pixel import FRAME_METRICS, FrameMetric, SSIMConfig, mse, psnr, ssim
from .weights import ENV_VAR, WEIGHT_FILES, Skip, WeightsDir, add_weights_flag

__all__ = ["ENV_VAR", "FRAME_METRICS", "FVD_CONVENTION", "FrameMetric", "I3DFeatures", "InceptionFeatures", "LPIPS",
           "SSIMConfig", "Skip", "WEIGHT_FILES", "WeightsDir", "add_weights_flag", "fid_features", "frechet_distance",
           "fvd_features", "horizontal_shift", "lpips_frames", "lpips_net_for", "mse", "psnr", "ssim",
           "view_shifts"]
