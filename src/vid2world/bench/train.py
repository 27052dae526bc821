"""`vid2world bench train`: the real training loop (`train`) on a synthetic dataset, timed step by step.

The architecture of a preset with random weights (DynamiCrafter-512: every part, 2.2B parameters of which the UNet
and Resampler train), B clips x T frames at a given latent size, a chosen precision and gradient checkpointing.
Reports the median optimiser-step time after warm-up, clips/s and, on a GPU, the peak memory allocated.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..checkpoints.registry import PRETRAINED
from ..data.spec import ActionSpec, DatasetMeta
from ..data.writer import DatasetWriter
from ..io.args import add_progress_flag, frame_size, non_negative_int, positive_int, write_json
from ..train.config import load_config
from ..train.monitor import read_metrics
from ..train.trainer import train


@dataclass(frozen=True)
class BenchTrainConfig:
    preset: str = "dynamicrafter-512"
    batch: int = 2  # clips per step
    frames: int = 16
    latent: tuple[int, int] = (40, 64)  # latent h, w (frames are 8x larger for latent presets)
    precision: str = "bf16"
    checkpointing: bool = True
    steps: int = 6
    warmup: int = 2  # steps left out of the timing (allocator, autotuning)
    action_dim: int = 13


def _synthetic_dataset(root: Path, cfg: BenchTrainConfig, size: tuple[int, int]) -> Path:
    meta = DatasetMeta("bench", 3.0, size, ActionSpec.continuous([f"a{i}" for i in range(cfg.action_dim)]),
                       source="synthetic")
    rng = np.random.default_rng(0)
    with DatasetWriter(root / "data", meta) as writer:
        for _ in range(cfg.batch):
            writer.add(rng.integers(0, 256, (cfg.frames, *size, 3), dtype=np.uint8),
                       rng.normal(size=(cfg.frames, cfg.action_dim)).astype(np.float32))
    return root / "data"


def bench_train(cfg: BenchTrainConfig, progress: bool = True) -> dict[str, Any]:
    """Run `cfg.steps` training steps; return the timing and memory figures (see module doc)."""
    if cfg.steps <= cfg.warmup:
        raise ValueError(f"bench train: steps ({cfg.steps}) must exceed warmup ({cfg.warmup})")
    factor = 8 if cfg.preset in PRETRAINED else 1
    size = (cfg.latent[0] * factor, cfg.latent[1] * factor)
    with tempfile.TemporaryDirectory(prefix="v2w-bench-train-") as tmp:
        root = Path(tmp)
        data = _synthetic_dataset(root, cfg, size)
        config = load_config(None, [
            "mode=world-model", f"out={root / 'run'}", f"model.preset={cfg.preset}",
            f"model.gradient_checkpointing={str(cfg.checkpointing).lower()}", f"data.path={data}",
            f"data.length={cfg.frames}", f"data.size=[{size[0]},{size[1]}]", "data.augment=false", "data.workers=0",
            f"train.steps={cfg.steps}", f"train.batch_size={cfg.batch}", f"train.precision={cfg.precision}",
            "log.every=1", f"log.save_every={cfg.steps + 1}", "log.tensorboard=false"])
        result = train(config, progress=progress, export=False, save_last=False)
        metrics = read_metrics(root / "run" / "metrics.jsonl")
    timed = [cfg.batch / m["clips_per_s"] for m in metrics[cfg.warmup:]]
    out: dict[str, Any] = {**asdict(cfg), "frame_size": list(size), "trainable_parameters": result.trainable,
                           "step_s": statistics.median(timed), "clips_per_s": cfg.batch / statistics.median(timed),
                           "gpu_peak_gb": metrics[-1].get("gpu_peak_gb"), "device": result.device,
                           "last_loss": result.last_loss}
    return out


def format_bench_train(r: dict[str, Any]) -> str:
    peak = "n/a (CPU)" if r["gpu_peak_gb"] is None else f"{r['gpu_peak_gb']:.1f} GB"
    return (f"{r['preset']}: {r['batch']} clips x {r['frames']} frames at {r['latent'][0]}x{r['latent'][1]} latents "
            f"({r['frame_size'][0]}x{r['frame_size'][1]} frames), {r['precision']}, gradient checkpointing "
            f"{'on' if r['checkpointing'] else 'off'}, {r['trainable_parameters']:,} trainable parameters on "
            f"{r['device']}\n  step {r['step_s']:.3f} s (median of {r['steps'] - r['warmup']}), "
            f"{r['clips_per_s']:.2f} clips/s, peak memory {peak}")


def _bench_train(args: argparse.Namespace) -> int:
    cfg = BenchTrainConfig(preset=args.preset, batch=args.batch, frames=args.frames, latent=args.latent,
                           precision=args.precision, checkpointing=args.checkpointing, steps=args.steps,
                           warmup=args.warmup, action_dim=args.action_dim)
    result = bench_train(cfg, progress=not args.no_progress)
    print(format_bench_train(result))
    write_json(args.json, result)
    return 0


def register(bench_sub) -> None:
    """The `bench train` command."""
    btrain = bench_sub.add_parser("train", help="training step time and peak memory (random weights, synthetic clips)")
    btrain.add_argument("--preset", default="dynamicrafter-512", help="model preset (default: dynamicrafter-512)")
    btrain.add_argument("--batch", type=positive_int, default=2, help="clips per step (default: 2)")
    btrain.add_argument("--frames", type=positive_int, default=16, help="frames per clip (default: 16)")
    btrain.add_argument("--latent", type=frame_size, default=(40, 64),
                        help="latent HxW; frames are 8x that for latent presets (default: 40x64, i.e. 320x512)")
    btrain.add_argument("--precision", default="bf16", choices=["fp32", "bf16", "fp16"], help="(default: bf16)")
    btrain.add_argument("--checkpointing", action=argparse.BooleanOptionalAction, default=True,
                        help="gradient checkpointing (default: on)")
    btrain.add_argument("--steps", type=positive_int, default=6, help="optimiser steps (default: 6)")
    btrain.add_argument("--warmup", type=non_negative_int, default=2, help="steps left out of the timing (default: 2)")
    btrain.add_argument("--action-dim", type=positive_int, default=13,
                        help="continuous action width (default: 13, RT-1)")
    add_progress_flag(btrain)
    btrain.add_argument("--json", help="also write the result to this JSON file")
    btrain.set_defaults(func=_bench_train)
