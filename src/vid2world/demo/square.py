"""The square world end to end: train a tiny causal world model on CPU, roll it out, show it.

Used by `vid2world demo` until bundled simulator models ship. Everything is generated here: no data, no weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..data.synthetic import SquareWorld
from ..diffusion.schedule import ScheduleConfig
from ..io.video import upscale, write_video
from ..models.config import ActionSpace, CausalConfig, UNetConfig
from ..models.unet import VideoUNet
from ..train.in_memory import FitConfig, fit_world_model
from ..world.world_model import SamplerConfig, WorldModel

WORLD = SquareWorld(size=8, square=2, speed=1)


def square_world_model() -> WorldModel:
    """An untrained causal pixel-space world model for the square world (2-d continuous actions: dx, dy)."""
    # pixel-tiny with the temporal-conv dropout the demo has always trained with
    cfg = UNetConfig.preset("pixel-tiny", temporal_conv_dropout=0.1, temporal_length=17,
                            action_space=ActionSpace.continuous(2, ("dx", "dy")), causal=CausalConfig("frame"))
    return WorldModel(VideoUNet(cfg), schedule=ScheduleConfig(dynamic_rescale=None),
                      sampler=SamplerConfig(steps=10, history_level="clean", eta=0.0),
                      metadata={"env": "square-world", "world": vars(WORLD) | {"hold": list(WORLD.hold)}})


def train_square_world(steps: int = 320, seed: int = 0, progress: bool = True) -> tuple[WorldModel, list[float]]:
    torch.manual_seed(seed)
    model = square_world_model()
    frames, actions = WORLD.dataset(episodes=400, frames=8, seed=seed)
    losses = fit_world_model(model, frames, actions, FitConfig(steps=steps, batch=16, seed=seed),
                             progress=progress)
    return model, losses


def _psnr(pred: np.ndarray, truth: np.ndarray, axis: tuple[int, ...] | None = None) -> np.ndarray:
    """PSNR of the mean squared error over `axis` (all when None), pixel range 1."""
    mse = (((pred.astype(np.float64) - truth.astype(np.float64)) / 255.0) ** 2).mean(axis=axis)
    return 10 * np.log10(1.0 / np.maximum(mse, 1e-10))


def _panel(frame: np.ndarray, label: str, action: np.ndarray | None, scale: int) -> Image.Image:
    big = Image.fromarray(upscale(frame[None], scale)[0])
    canvas = Image.new("RGB", (big.width, big.height + 28), "black")
    canvas.paste(big, (0, 28))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 2), label, fill="white")
    if action is not None:  # an arrow for the action the frame follows
        cx, cy = big.width - 14, 14
        dx, dy = float(action[0]), float(action[1])
        draw.line([cx, cy, cx + 9 * dx, cy + 9 * dy], fill="yellow", width=3)
        draw.ellipse([cx - 2, cy - 2, cx + 2, cy + 2], fill="yellow")
    return canvas


def rollout_video(model: WorldModel, out: Path, episodes: int = 4, horizon: int = 16, seed: int = 123,
                  scale: int = 12, progress: bool = True) -> dict[str, Any]:
    """Roll out held-out episodes; write `rollout.mp4` (rows: episodes; columns: truth, world model, world model
    with another episode's actions) and return per-frame PSNR."""
    rng = np.random.default_rng(seed)
    held = [WORLD.episode(horizon + 1, rng) for _ in range(episodes)]
    truth, acts = np.stack([f for f, _ in held]), np.stack([a for _, a in held])
    pred = model.rollout(truth[:, :1], acts[:, :horizon], guidance=2.5, seed=0, progress=progress)
    other = np.roll(acts[:, :horizon], 1, axis=0)
    shuffled = model.rollout(truth[:, :1], other, guidance=2.5, seed=0, progress=progress)
    frames = []
    for t in range(horizon + 1):
        rows = []
        for e in range(episodes):
            a = acts[e, t - 1] if t else None
            panels = [_panel(truth[e, t], "truth", a, scale),
                      _panel(pred[e, t - 1] if t else truth[e, 0], "world model", a, scale),
                      _panel(shuffled[e, t - 1] if t else truth[e, 0], "other actions", other[e, t - 1] if t else None,
                             scale)]
            row = Image.new("RGB", (sum(p.width for p in panels) + 8 * len(panels), panels[0].height), "gray")
            for i, p in enumerate(panels):
                row.paste(p, (i * (p.width + 8), 0))
            rows.append(row)
        sheet = Image.new("RGB", (rows[0].width, sum(r.height + 8 for r in rows)), "gray")
        for i, r in enumerate(rows):
            sheet.paste(r, (0, i * (r.height + 8)))
        frames.append(np.asarray(sheet))
    write_video(np.stack(frames), out / "rollout.mp4", fps=3)
    Image.fromarray(frames[-1]).save(out / "rollout_last_frame.png")
    frozen = np.repeat(truth[:, :1], horizon, axis=1)
    return {"psnr_per_frame": _psnr(pred, truth[:, 1:], axis=(0, 2, 3, 4)).tolist(),
            "psnr": float(_psnr(pred, truth[:, 1:])), "psnr_other_actions": float(_psnr(shuffled, truth[:, 1:])),
            "psnr_frozen_first_frame": float(_psnr(frozen, truth[:, 1:])), "episodes": episodes, "horizon": horizon}
