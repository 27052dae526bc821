"""`vid2world rollout`: one episode's window rolled out beside its ground truth, as a side-by-side mp4 with the
per-frame PSNR."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.clips import ClipConfig, ClipDataset, Window
from ..io.outputs import check_output_file
from ..metrics import psnr
from .inputs import model_layout, open_inputs
from .videos import write_pair


@dataclass(frozen=True)
class RolloutConfig:
    model: str
    data: str
    episode: int
    context: int
    horizon: int
    out: str
    start: int = 0  # first frame of the window in the episode
    steps: int | None = None
    preset: str | None = None  # "fast" | "quality": the model's sampling preset, when `steps` is not given
    guidance: float | None = None
    precision: str | None = None  # the UNet's (fp32 | bf16); None: the preset's
    seed: int = 0
    device: str = "cpu"
    overwrite: bool = False


def check_target(out: Path, overwrite: bool) -> None:
    """Before any sampling: a new .mp4 (or, with `overwrite`, an existing one) in a folder that can be written."""
    if out.suffix != ".mp4":
        raise ValueError(f"--out {out}: expected a .mp4 file name")
    check_output_file(out, overwrite, "--out")


def episode_window(dataset: Any, cfg: RolloutConfig) -> Window:
    """The window asked for, or a one-line error naming the episode, its length and what the window needs."""
    if not 0 <= cfg.episode < len(dataset):
        raise ValueError(f"--episode {cfg.episode}: out of range; {dataset.root} has {len(dataset)} episodes "
                         f"(0..{len(dataset) - 1})")
    length, need = int(dataset.lengths[cfg.episode]), cfg.start + cfg.context + cfg.horizon
    if length < need:
        raise ValueError(f"--episode {cfg.episode} ({dataset.names[cfg.episode]}) has {length} frames; --start "
                         f"{cfg.start} + --context {cfg.context} + --horizon {cfg.horizon} need {need}")
    return Window(cfg.episode, dataset.names[cfg.episode], cfg.start)


def rollout_episode(cfg: RolloutConfig, progress: bool = True) -> dict[str, Any]:
    """Roll out the window, write the video; returns {"video", "psnr" (per frame, dB), "context", "episode"}."""
    out = Path(cfg.out)
    check_target(out, cfg.overwrite)
    model, dataset = open_inputs(cfg.model, cfg.data, cfg.device)
    window = episode_window(dataset, cfg)
    sampling = model.sampling(cfg.preset, steps=cfg.steps, guidance=cfg.guidance, precision=cfg.precision)
    length = cfg.context + cfg.horizon
    clip = ClipDataset(dataset, ClipConfig(length, 1, model_layout(model, dataset), None, None),
                       windows=[window])[0]
    truth = np.asarray(clip["frames"])
    context = truth[None, : cfg.context]
    if model.action_dim is None:
        generated = model.rollout(context, horizon=cfg.horizon, seed=cfg.seed, progress=progress,
                                  sampling=sampling)
    else:
        actions = np.asarray(clip["actions"])[None, : length - 1]
        generated = model.rollout(context, actions, seed=cfg.seed, progress=progress, sampling=sampling)
    prediction = np.concatenate([truth[: cfg.context], generated[0]])
    values = psnr(prediction[None], truth[None])[0]
    write_pair(out, truth, prediction, cfg.context)
    return {"video": str(out), "psnr": [float(v) for v in values], "context": cfg.context,
            "episode": window.name, "start": window.start}
