"""What a run reports while it trains: scalars to TensorBoard and `metrics.jsonl` (one JSON line per log step).

Besides the mean loss: the loss per noise-level bucket (is the model learning the clean end or only the noisy
end?) and per frame position (does later context help?), the learning rate, the gradient norm, throughput.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..io.atomic import write_text

LEVEL_BUCKETS = 10  # 1000 levels in buckets of 100


class LossTally:
    """Sums of per-frame losses by noise-level bucket and by frame position since the last report."""

    def __init__(self, frames: int, levels: int = 1000) -> None:
        self.frames, self.levels = frames, levels
        self.reset()

    def reset(self) -> None:
        self.by_level = torch.zeros(2, LEVEL_BUCKETS, dtype=torch.float64)  # [sum, count]
        self.by_frame = torch.zeros(2, self.frames, dtype=torch.float64)

    def add(self, per_frame: Tensor, levels: Tensor) -> None:
        """`per_frame` [B, T] losses at noise `levels` [B, T]."""
        loss, lv = per_frame.detach().double().cpu(), levels.detach().cpu()
        bucket = (lv * LEVEL_BUCKETS // self.levels).clamp(0, LEVEL_BUCKETS - 1).flatten()
        self.by_level[0].index_add_(0, bucket, loss.flatten())
        self.by_level[1].index_add_(0, bucket, torch.ones_like(loss.flatten()))
        self.by_frame[0] += loss.sum(0)
        self.by_frame[1] += loss.shape[0]

    def packed(self) -> Tensor:
        """One tensor to sum across ranks."""
        return torch.cat([self.by_level.flatten(), self.by_frame.flatten()])

    def scalars(self, packed: Tensor) -> dict[str, float]:
        """`loss` (the mean per-frame loss) and its split by level bucket and frame position, from `packed`."""
        n = 2 * LEVEL_BUCKETS
        level, frame = packed[:n].view(2, -1), packed[n:].view(2, -1)
        width = self.levels // LEVEL_BUCKETS
        out = {"loss": float(frame[0].sum() / frame[1].sum())}
        out.update({f"loss_by_level/{i * width:03d}-{(i + 1) * width - 1:03d}": float(level[0, i] / level[1, i])
               for i in range(LEVEL_BUCKETS) if level[1, i] > 0})
        out.update({f"loss_by_frame/{t:02d}": float(frame[0, t] / frame[1, t])
                    for t in range(self.frames) if frame[1, t] > 0})
        return out


class Monitor:
    """Rank 0's writer: TensorBoard event files under `OUT/tensorboard` and `OUT/metrics.jsonl`."""

    def __init__(self, out: Path, tensorboard: bool, resume_step: int | None) -> None:
        self.path = out / "metrics.jsonl"
        if resume_step is not None and self.path.is_file():  # drop lines after the checkpoint being resumed
            kept = [line for line in self.path.read_text().splitlines()
                    if line and json.loads(line)["step"] <= resume_step]
            write_text(self.path, "".join(line + "\n" for line in kept))
        elif resume_step is None and self.path.exists():
            self.path.unlink()
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(out / "tensorboard"), purge_step=resume_step)

    def log(self, step: int, scalars: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, **scalars}) + "\n")
        if self.writer is not None:
            for name, value in scalars.items():
                self.writer.add_scalar(name, value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The lines of a run's `metrics.jsonl`."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line]
