"""Sample rollouts during training: one fixed clip, rolled out from its first frames with its own actions, written
as `OUT/samples/step-00000100.mp4` and `.gif` (left: ground truth, right: the model), so progress can be watched."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..data.clips import ClipDataset, eval_windows
from ..io.video import upscale, write_video
from ..world.world_model import WorldModel


def sample_clip(clips: ClipDataset, seed: int = 0) -> dict[str, np.ndarray]:
    """The clip every sample shows: the first evaluation window of the split (no augmentation)."""
    cfg = replace(clips.cfg, augment=None)
    window = eval_windows(clips.dataset, cfg, count=1, seed=seed)[0]
    clip = ClipDataset(clips.dataset, cfg, windows=[window]).clip(window)
    return {k: v.numpy() for k, v in clip.items() if k in ("frames", "actions")}


def side_by_side(truth: np.ndarray, generated: np.ndarray, context: int) -> np.ndarray:
    """[T, H, W, 3] ground truth beside [T - context, H, W, 3] generated (context frames repeated on the right,
    with a red bar under the generated ones)."""
    right = np.concatenate([truth[:context], generated])
    gap = np.full((truth.shape[0], truth.shape[1], 2, 3), 255, np.uint8)
    frames = np.concatenate([truth, gap, right], axis=2)
    bar = np.zeros((truth.shape[0], 2, frames.shape[2], 3), np.uint8)
    bar[context:, :, truth.shape[2] + 2:] = (220, 30, 30)
    return np.concatenate([frames, bar], axis=1)


@torch.no_grad()
def write_sample(model: WorldModel, clip: dict[str, np.ndarray], context: int, steps: int, out: Path,
                 step: int) -> list[Path]:
    """Roll `model` out over `clip` from `context` frames; write mp4 and GIF; return their paths."""
    frames = clip["frames"]
    actions = None if model.action_dim is None else clip["actions"][None, :-1]  # a_0 .. a_{T-2}
    # rollouts run in eval mode and give every submodule its own mode back (a blanket model.train() afterwards
    # would switch the frozen codec to train mode); the model's own sampler decides the cache
    generated = model.rollout(frames[None, :context], actions, steps=steps, seed=0, horizon=len(frames) - context)
    video = side_by_side(frames, generated[0], context)
    scale = max(1, 256 // video.shape[1])
    video = upscale(video, scale) if scale > 1 else video
    out.mkdir(parents=True, exist_ok=True)
    return [write_video(video, out / f"step-{step:08d}{ext}", fps=4) for ext in (".mp4", ".gif")]
