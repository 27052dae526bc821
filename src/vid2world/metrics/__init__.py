"""Video and image metrics, following method.md 10.1 exactly (value ranges, clamping, windows, aggregation).

Pixel metrics need no weights. The network metrics (LPIPS, FID, FVD) load their networks from files the user gives;
without them a metric is skipped and says so, never approximated.
"""

from .i3d import FVD_CONVENTION, I3DFeatures, fvd_features
from .inception import InceptionFeatures, fid_features
from .lpips import LPIPS, lpips_frames, lpips_net_for
from .weights import ENV_VAR, WEIGHT_FILES, Skip, WeightsDir, add_weights_flag
