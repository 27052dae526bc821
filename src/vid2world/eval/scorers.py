"""The metrics an evaluation computes, as one registry: a metric is an entry, not a branch.

Two kinds (method.md 10.1):
- `PerFrame`: a value per scored frame against its ground truth (PSNR, SSIM, MSE, LPIPS); averaged over every scored
  frame of every window, and per horizon step for the curves.
- `Pooled`: features of every window pooled over the whole set, then the Frechet distance between the predicted
  and the real features (FID: each scored frame an independent image; FVD: the protocol's video clip).

Each entry's `load(context)` returns the callable and the exact convention string, or a `Skip` saying why not (a
missing weights file, named). To add a metric, add an entry to `METRICS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from ..data.transforms import FrameLayout, resize_uint8
from ..metrics import FRAME_METRICS, I3DFeatures, InceptionFeatures, LPIPS, Skip, SSIMConfig, WeightsDir
from ..metrics import fid_features, fvd_features, lpips_frames
from .protocols import Protocol
from .results import MetricInfo


@dataclass(frozen=True)
class ScoreContext:
    weights: WeightsDir
    device: str
    protocol: Protocol
    frame_size: tuple[int, int]  # (H, W) the frames are scored at


Loaded = tuple[Callable[..., Any], str]  # (the callable, its convention)


@dataclass(frozen=True)
class PerFrame:
    """`load` gives fn(pred, target) on uint8 videos [B, T, H, W, 3] -> per-frame values [B, T]."""

    name: str
    higher_is_better: bool
    unit: str
    load: Callable[[ScoreContext], Loaded | Skip]


@dataclass(frozen=True)
class Pooled:
    """`load` gives fn(videos uint8 [B, T, H, W, 3]) -> features [N, D]; `frames` picks the protocol's frames."""

    name: str
    higher_is_better: bool
    unit: str
    load: Callable[[ScoreContext], Loaded | Skip]
    frames: Callable[[Protocol], tuple[int, ...]]


@dataclass(frozen=True)
class LoadedMetric:
    entry: PerFrame | Pooled
    fn: Callable[..., Any]


def _frame_metric(key: str, min_side: int = 1) -> PerFrame:
    """A pixel metric as `metrics.FRAME_METRICS` describes it (direction, unit, convention: said once, there);
    skipped for frames smaller than `min_side` (SSIM's window)."""
    metric = FRAME_METRICS[key]

    def load(ctx: ScoreContext) -> Loaded | Skip:
        if min(ctx.frame_size) < min_side:
            return Skip(key, f"frames of {ctx.frame_size[0]}x{ctx.frame_size[1]} are smaller than its "
                             f"{min_side}x{min_side} window")
        return (lambda pred, target: np.asarray(metric.fn(pred, target), dtype=np.float64)), metric.convention
    return PerFrame(key, metric.higher_is_better, metric.unit, load)


def _lpips(ctx: ScoreContext) -> Loaded | Skip:
    net = ctx.protocol.lpips_net
    found = ctx.weights.find(f"lpips-{net}")
    if isinstance(found, Skip):
        return Skip("lpips", found.reason)
    model = LPIPS(net, found).to(ctx.device)
    return (lambda pred, target: lpips_frames(model, pred, target).double().numpy()), model.convention


def _fid(ctx: ScoreContext) -> Loaded | Skip:
    found = ctx.weights.find("fid")
    if isinstance(found, Skip):
        return found
    model = InceptionFeatures(found, ctx.device)
    return (lambda videos: fid_features(model, torch.from_numpy(videos).flatten(0, 1)).double().numpy(),
            model.convention)


def _fvd(ctx: ScoreContext) -> Loaded | Skip:
    found = ctx.weights.find("fvd")
    if isinstance(found, Skip):
        return found
    model = I3DFeatures(found, ctx.device)
    return (lambda videos: fvd_features(model, videos).double().numpy()), model.convention


METRICS: dict[str, PerFrame | Pooled] = {
    "psnr": _frame_metric("psnr"),
    "ssim": _frame_metric("ssim", min_side=SSIMConfig().window),
    "lpips": PerFrame("lpips", False, "", _lpips),
    "mse": _frame_metric("mse"),
    "fid": Pooled("fid", False, "", _fid, lambda p: p.frames),
    "fvd": Pooled("fvd", False, "", _fvd, lambda p: p.video_frames),
}


def load_metrics(ctx: ScoreContext, windows: int) -> tuple[list[LoadedMetric], list[MetricInfo], list[str]]:
    """Every registered metric, loaded or skipped with its reason."""
    loaded, infos, notes = [], [], []
    for name, entry in METRICS.items():
        got = Skip(name, f"needs at least 2 windows, the evaluation has {windows}") \
            if isinstance(entry, Pooled) and windows < 2 else entry.load(ctx)
        if isinstance(got, Skip):
            infos.append(MetricInfo(name, entry.higher_is_better, entry.unit, skipped=got.reason))
            notes.append(str(got))
        else:
            loaded.append(LoadedMetric(entry, got[0]))
            infos.append(MetricInfo(name, entry.higher_is_better, entry.unit, convention=got[1]))
    return loaded, infos, notes


def scoring_frames(protocol: Protocol, layout: FrameLayout | None) -> Callable[[np.ndarray], np.ndarray]:
    """Clips [B, T, H, W, 3] as they are scored: at the protocol's `score_size` when it has one (frames padded by a
    `resize_pad` layout are first cropped back to the picture, so the padding is not scored), else unchanged."""
    if protocol.score_size is None:
        return lambda clips: clips
    size = protocol.score_size

    def prepare(clips: np.ndarray) -> np.ndarray:
        if layout is not None and layout.mode == "resize_pad":
            (h, w), (ih, iw) = clips.shape[2:4], layout.inner
            top, left = (h - ih) // 2, (w - iw) // 2
            clips = clips[:, :, max(0, top): top + ih, max(0, left): left + iw]
        return np.stack([resize_uint8(video, size) for video in clips])
    return prepare
