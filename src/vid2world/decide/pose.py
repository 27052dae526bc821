"""A pose reader: one frame in, the block's pose out (Push-T's x, y in pixels of the simulation and its angle),
trained on real frames with the simulator's state beside them. `plan --goal --pose-reader DIR` scores candidates
by the pose it reads off their frames against the pose it reads off the goal's frame, a distance that still
points the way when the imagined block does not overlap the goal's (a pixel distance is flat there).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..data.clips import to_model_input
from ..io.progress import progress_bar
from ..train.optim import lr_at, optimizer_step, set_lr
from .heads import head_files, save_head

SCALE = 512.0  # Push-T's workspace: positions are read as fractions of it


@dataclass(frozen=True)
class PoseReaderConfig:
    env: str
    frame_size: int = 64
    width: int = 32
    steps: int = 2000
    batch: int = 64
    lr: float = 2e-3
    seed: int = 0


class PoseReader(nn.Module):
    """Frames [B, H, W, 3] uint8 -> (x / 512, y / 512, cos angle, sin angle) [B, 4]. Strided convolutions then a
    linear layer over the whole map: where the block is matters, so nothing is pooled away."""

    def __init__(self, config: PoseReaderConfig) -> None:
        super().__init__()
        self.config, w = config, config.width
        layers, c = [], 3
        for out in (w, w, 2 * w, 2 * w):
            layers += [nn.Conv2d(c, out, 3, 2, 1), nn.GroupNorm(8, out), nn.SiLU()]
            c = out
        side = -(-config.frame_size // 16)
        self.body = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * side * side, 128), nn.SiLU(),
                                  nn.Linear(128, 4))

    def forward(self, frames: Tensor) -> Tensor:
        return self.body(to_model_input(frames[:, None])[:, :, 0])

    @torch.no_grad()
    def read(self, frames: np.ndarray, batch: int = 512) -> np.ndarray:
        """The poses [N, 3] (x, y, angle in [0, 2 pi)) of frames [N, H, W, 3] uint8."""
        was = self.training
        self.eval()
        out = [self(torch.from_numpy(np.ascontiguousarray(frames[lo:lo + batch]))).double().numpy()
               for lo in range(0, len(frames), batch)]
        self.train(was)
        v = np.concatenate(out) if out else np.zeros((0, 4))
        return np.stack([v[:, 0] * SCALE, v[:, 1] * SCALE, np.arctan2(v[:, 3], v[:, 2]) % (2 * np.pi)], 1)


def pose_targets(poses: np.ndarray) -> np.ndarray:
    """Poses [N, 3] (x, y, angle) as the reader's outputs [N, 4]."""
    p = np.asarray(poses, np.float64)
    return np.stack([p[:, 0] / SCALE, p[:, 1] / SCALE, np.cos(p[:, 2]), np.sin(p[:, 2])], 1).astype(np.float32)


def pose_errors(read: np.ndarray, poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: position error (pixels) and angle error (degrees, the shorter way) of poses [N, 3]."""
    turn = np.abs(read[:, 2] - poses[:, 2]) % (2 * np.pi)
    return np.linalg.norm(read[:, :2] - poses[:, :2], axis=1), np.degrees(np.minimum(turn, 2 * np.pi - turn))


def fit_pose_reader(config: PoseReaderConfig, frames: np.ndarray, poses: np.ndarray,
                    progress: bool = True) -> PoseReader:
    """Mean squared error on `pose_targets`, the shared optimiser step and schedule (train/optim.py)."""
    torch.manual_seed(config.seed)
    reader = PoseReader(config)
    targets = torch.from_numpy(pose_targets(poses))
    optimizer = torch.optim.AdamW(reader.parameters(), lr=config.lr, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(config.seed)
    for step in progress_bar(range(config.steps), desc="pose reader", unit="step", enabled=progress):
        set_lr(optimizer, lr_at(step, config.steps, config.lr, warmup=50))
        idx = torch.randint(0, len(targets), (config.batch,), generator=gen)
        loss = nn.functional.mse_loss(reader(torch.from_numpy(frames[idx.numpy()])), targets[idx])
        loss.backward()
        optimizer_step(optimizer, list(reader.parameters()), 1.0)
    return reader.eval()


def reader_scores(reader: PoseReader, frames: np.ndarray, poses: np.ndarray) -> dict[str, Any]:
    position, angle = pose_errors(reader.read(frames), poses)
    return {"frames": int(len(frames)), "position_px": {"mean": float(position.mean()),
                                                        "median": float(np.median(position))},
            "angle_deg": {"mean": float(angle.mean()), "median": float(np.median(angle))}}


def save_pose_reader(reader: PoseReader, out: Path, scores: dict[str, Any]) -> Path:
    return save_head(reader, out, scores, kind="pose")


def check_reader_size(reader: PoseReader, size: int, whose: str) -> None:
    """A reader reads frames of the size it was trained on: `whose` frames (e.g. "the model draws") must match."""
    n = reader.config.frame_size
    if n != size:
        raise ValueError(f"--pose-reader: reads {n}x{n} frames, {whose} {size}x{size} (train it with head pose "
                         f"--size {size})")


def load_pose_reader(path: str | Path) -> PoseReader:
    record, state = head_files(path, "pose", "not a pose reader (expected head.json of kind 'pose' and "
                               "head.safetensors; train one: vid2world head pose --env pusht)")
    reader = PoseReader(PoseReaderConfig(**record["config"]))
    reader.load_state_dict(state)
    reader.heldout = record.get("heldout", {})
    return reader.eval()
