"""FVD's detector: StyleGAN-V's I3D TorchScript (`i3d_torchscript.pt`, Kinetics-400), called with one convention.

The call, fixed here and written into every output (`FVD_CONVENTION`):

    detector(x, rescale=True, resize=True, return_features=True) -> [B, 400]

with `x` the videos as uint8 [B, 3, T, H, W] (contiguous) in [0, 255] at their own size. This is exactly how
StyleGAN-V scores FVD (`src/metrics/frechet_video_distance.py`: `detector_kwargs = dict(rescale=True, resize=True,
return_features=True)`; `metric_utils.py` feeds the dataset's uint8 clips, and generated frames converted to uint8,
permuted to B x C x T x H x W). With those flags the module itself rescales [0, 255] to the [-1, 1] the network was
trained on and resizes every frame to 224x224, and returns the 400 pre-softmax logits, the layer FVD is defined on.
The alternative call (rescale=False, resize=False on videos the caller already resized to 224x224 in [-1, 1]) is
the one StyleGAN-V's fvd-comparison used to show the TorchScript matches TF's I3D; the module's own preprocessing is
chosen so that no resize of ours stands between the videos and the reference pipeline.

Not used: videos in [0, 1] with rescale=True, which some ports of this code feed (method.md 10.1, [R]): a module
that expects [0, 255] would read them as almost-black video. `scripts/check_metric_parity.py` compares these calls
on the real file (GPU machine).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .inputs import uint8_rgb

FEATURES = 400
DETECTOR_KWARGS = {"rescale": True, "resize": True, "return_features": True}
FVD_CONVENTION = ("stylegan-v i3d: uint8 videos [B,3,T,H,W] in [0,255] at native size, "
                  "detector(x, rescale=True, resize=True, return_features=True) -> 400-d pre-softmax features")


class I3DFeatures:
    """StyleGAN-V's I3D TorchScript read from `path` onto `device` (`torch.jit.load`: pure torch, no downloads)."""

    def __init__(self, path: str | os.PathLike, device: str | torch.device = "cpu"):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such file (expected StyleGAN-V's i3d_torchscript.pt)")
        try:
            with warnings.catch_warnings():  # the file is TorchScript: torch 2.13 deprecates the loader, not the file
                warnings.simplefilter("ignore", DeprecationWarning)
                self.detector = torch.jit.load(str(self.path), map_location=device).eval()
        except Exception as err:  # a zip that is no TorchScript archive, a truncated download, a state dict
            reason = (str(err).strip().splitlines() or [""])[0][:160]
            raise ValueError(f"{self.path}: not a TorchScript archive, or a corrupt one ({type(err).__name__}: "
                             f"{reason}); expected StyleGAN-V's i3d_torchscript.pt") from None
        self.device = torch.device(device)
        self.convention = f"{FVD_CONVENTION} ({self.path.name})"

    def __call__(self, videos: Tensor) -> Tensor:
        """uint8 [B,T,H,W,3] (already checked) -> [B, 400] features from one detector call."""
        x = videos.to(self.device).permute(0, 4, 1, 2, 3).contiguous()
        out = self.detector(x, **DETECTOR_KWARGS)
        if not isinstance(out, Tensor) or out.shape != (len(videos), FEATURES):
            shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(f"{self.path}: returned {shape} for {len(videos)} videos, expected [B, {FEATURES}] "
                             "pre-softmax features (is it StyleGAN-V's i3d_torchscript.pt?)")
        return out


def fvd_features(net: I3DFeatures, videos: Any, batch_size: int = 8) -> Tensor:
    """I3D features of uint8 videos [B,T,H,W,3] -> float32 [B, 400] on the CPU, `batch_size` videos per detector
    call (the convention is `net.convention`)."""
    clips = uint8_rgb(videos, "videos", "B,T,H,W,3")
    if batch_size < 1:
        raise ValueError(f"batch_size {batch_size}: expected >= 1")
    out = []
    with torch.no_grad():
        for start in range(0, len(clips), batch_size):
            out.append(net(clips[start:start + batch_size]).float().cpu())
    features = torch.cat(out)
    if not bool(torch.isfinite(features).all()):
        raise ValueError(f"{net.path}: returned NaN or inf features")
    return features
