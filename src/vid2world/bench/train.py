"""`vid2world bench train`: a training loop on synthetic data, timed step by step.

Two loops: the real trainer (`train`, on a synthetic dataset: DynamiCrafter-512 has every part, 2.2B parameters of
which the UNet and Resampler train), or, with `--cached-latents`, the in-memory loop the bundled models train with
(`fit_world_model` on latents encoded ahead of time: the UNet alone). B clips x T frames at a given latent size, a
chosen precision and gradient checkpointing. Reports the median optimiser-step time after warm-up, clips/s, on a GPU
the peak memory allocated, and for the in-memory loop the FLOPs of a step (counted by torch) and the achieved rate
as a fraction of this machine's fp32 and bf16 matmul rates, measured in the same run.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoints.registry import PRETRAINED
from ..data.spec import ActionSpec, DatasetMeta
from ..data.writer import DatasetWriter
from ..io.args import (add_json_flag, add_progress_flag, frame_size, int_list, non_negative_int, positive_int,
                       write_json)
from ..train.config import load_config
from ..train.monitor import read_metrics
from ..train.in_memory import EpisodeSampler, FitConfig, fit_world_model
from ..train.trainer import train
from ..world.world_model import WorldModel


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
    cached_latents: bool = False  # the in-memory loop on cached latents (the bundled models' loop)
    compile: bool = False  # that loop's step under torch.compile (`FitConfig.compile`); the compile is a warm-up step
    channels: int | None = None  # with cached_latents: the preset's width replaced, to weigh a wider or narrower UNet
    channel_mult: tuple[int, ...] | None = None  # with cached_latents: the preset's per-level widths replaced


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
    if cfg.cached_latents:
        return _bench_in_memory(cfg, progress)
    if cfg.compile or cfg.channels is not None or cfg.channel_mult is not None:
        flag = "--compile" if cfg.compile else ("--channels" if cfg.channels is not None else "--channel-mult")
        raise ValueError(f"bench train: {flag} applies to the in-memory loop; add --cached-latents")
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


def _bench_in_memory(cfg: BenchTrainConfig, progress: bool) -> dict[str, Any]:
    from .flops import counted_flops, flop_kernel_share, machine_rates

    model = _latent_world_model(cfg)
    rng = np.random.default_rng(0)
    channels = model.unet.config.in_channels
    latents = [rng.normal(size=(cfg.frames * 2, channels, *cfg.latent)).astype(np.float16) for _ in range(8)]
    actions = [rng.normal(size=(cfg.frames * 2, cfg.action_dim)).astype(np.float32) for _ in range(8)]
    fit = FitConfig(steps=1, batch=cfg.batch, clip=cfg.frames, precision=cfg.precision)
    flops = counted_flops(lambda: fit_world_model(model, latents, actions, fit, latents=True))  # eager: every op
    fit = replace(fit, compile=cfg.compile)
    times: list[float] = []
    clock = [time.perf_counter()]

    def tick(step: int, loss: float) -> None:
        now = time.perf_counter()
        times.append(now - clock[0])
        clock[0] = now

    losses = fit_world_model(model, latents, actions, replace(fit, steps=cfg.steps), progress=progress,
                             on_step=tick, latents=True)
    step_s = statistics.median(times[cfg.warmup:])
    share = flop_kernel_share(lambda: fit_world_model(model, latents, actions, fit, latents=True))
    loader_s = _batch_time(latents, actions, cfg)
    rates = machine_rates()
    achieved = flops / step_s / 1e9
    kernel_rate = flops / share["flop_kernels_s"] / 1e9
    parameters = sum(p.numel() for p in model.unet.parameters())
    return {**asdict(cfg), "frame_size": list(cfg.latent), "trainable_parameters": parameters,
            "fp16_mib": parameters * 2 / 2 ** 20, "model_channels": model.unet.config.model_channels,
            "levels": list(model.unet.config.channel_mult),
            "step_s": step_s, "clips_per_s": cfg.batch / step_s,
            "gpu_peak_gb": None, "device": "cpu", "last_loss": losses[-1], "flops_per_step": flops,
            "achieved_gflops": achieved, "matmul_gflops": rates,
            "fraction_of_matmul": {k: achieved / v for k, v in rates.items()}, "profiled_step": share,
            "flop_kernels_gflops": kernel_rate, "flop_kernels_fraction": {k: kernel_rate / v for k, v in rates.items()},
            "batch_s": loader_s}


def _batch_time(latents: list[np.ndarray], actions: list[np.ndarray], cfg: BenchTrainConfig, repeats: int = 20
                ) -> float:
    """Seconds the in-memory loop spends drawing one batch of clips (its whole data loading), mean of `repeats`."""
    sampler = EpisodeSampler(latents, actions, cfg.frames, "latents")
    gen = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for _ in range(repeats):
        sampler.batch(cfg.batch, gen)
    return (time.perf_counter() - start) / repeats


def _latent_world_model(cfg: BenchTrainConfig) -> WorldModel:
    from ..models.codec import IdentityCodec
    from ..models.config import ActionSpace, CausalConfig, UNetConfig
    from ..models.unet import VideoUNet

    unet_cfg = UNetConfig.preset(cfg.preset, action_space=ActionSpace.continuous(cfg.action_dim),
                                 causal=CausalConfig("frame"), gradient_checkpointing=cfg.checkpointing)
    if cfg.channels is not None:
        if cfg.channels % math.lcm(unet_cfg.norm_groups, unet_cfg.num_head_channels):
            raise ValueError(f"--channels {cfg.channels}: preset {cfg.preset!r} needs a multiple of its norm groups "
                             f"({unet_cfg.norm_groups}) and head width ({unet_cfg.num_head_channels})")
        unet_cfg = replace(unet_cfg, model_channels=cfg.channels)
    if cfg.channel_mult is not None:
        unet_cfg = replace(unet_cfg, channel_mult=tuple(cfg.channel_mult))
    if unet_cfg.context_dim is not None:
        raise ValueError(f"--cached-latents trains the UNet alone: preset {cfg.preset!r} needs an image context; "
                         "use a preset without one (latent-small, pixel-tiny, pixel-64)")
    torch.manual_seed(0)
    return WorldModel(VideoUNet(unet_cfg), IdentityCodec(unet_cfg.in_channels))


def format_bench_train(r: dict[str, Any]) -> str:
    peak = "n/a (CPU)" if r["gpu_peak_gb"] is None else f"{r['gpu_peak_gb']:.1f} GB"
    if r.get("flops_per_step"):
        frac = r["fraction_of_matmul"]
        return (f"{r['preset']}: {r['batch']} clips x {r['frames']} frames of cached {r['latent'][0]}x{r['latent'][1]} "
                f"latents, {r['precision']}{', torch.compile' if r['compile'] else ''}, "
                f"{r['trainable_parameters']:,} trainable parameters ({r['model_channels']} channels x "
                f"{tuple(r['levels'])}, "
                f"{r['fp16_mib']:.1f} MiB in fp16) on {r['device']}\n"
                f"  step {r['step_s']:.3f} s (median of {r['steps'] - r['warmup']}), {r['clips_per_s']:.2f} clips/s, "
                f"{r['flops_per_step'] / 1e9:.0f} GFLOP/step counted, {r['achieved_gflops']:.0f} GFLOP/s achieved\n"
                f"  matmul on this machine: fp32 {r['matmul_gflops']['fp32']:.0f}, bf16 "
                f"{r['matmul_gflops']['bf16']:.0f} GFLOP/s; achieved = {frac['fp32']:.0%} of fp32, "
                f"{frac['bf16']:.0%} of bf16\n"
                f"  one profiled step: {r['profiled_step']['flop_kernels_s']:.3f} s in matmul/conv/attention kernels "
                f"({r['flop_kernels_gflops']:.0f} GFLOP/s, {r['flop_kernels_fraction']['bf16']:.0%} of bf16 matmul), "
                f"{r['profiled_step']['other_s']:.3f} s in everything else\n"
                f"  drawing a batch (the loop's data loading): {1000 * r['batch_s']:.2f} ms, "
                f"{r['batch_s'] / r['step_s']:.2%} of the step")
    return (f"{r['preset']}: {r['batch']} clips x {r['frames']} frames at {r['latent'][0]}x{r['latent'][1]} latents "
            f"({r['frame_size'][0]}x{r['frame_size'][1]} frames), {r['precision']}, gradient checkpointing "
            f"{'on' if r['checkpointing'] else 'off'}, {r['trainable_parameters']:,} trainable parameters on "
            f"{r['device']}\n  step {r['step_s']:.3f} s (median of {r['steps'] - r['warmup']}), "
            f"{r['clips_per_s']:.2f} clips/s, peak memory {peak}")


def _bench_train(args: argparse.Namespace) -> int:
    cfg = BenchTrainConfig(preset=args.preset, batch=args.batch, frames=args.frames, latent=args.latent,
                           precision=args.precision, checkpointing=args.checkpointing, steps=args.steps,
                           warmup=args.warmup, action_dim=args.action_dim, cached_latents=args.cached_latents,
                           compile=args.compile, channels=args.channels,
                           channel_mult=None if args.channel_mult is None else tuple(args.channel_mult))
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
    btrain.add_argument("--cached-latents", action="store_true",
                        help="the bundled models' in-memory loop on cached latents (UNet only), with FLOPs counted "
                             "and the achieved fraction of this machine's matmul rates, e.g. --preset latent-small "
                             "--latent 16x16 --batch 8 --frames 8 --action-dim 12 --no-checkpointing")
    btrain.add_argument("--compile", action="store_true",
                        help="with --cached-latents: the step under torch.compile, as the bundled models' long stages "
                             "train (the first step compiles: minutes cold; keep --warmup at 2 or more)")
    btrain.add_argument("--channels", type=positive_int,
                        help="with --cached-latents: the preset's model_channels replaced, to weigh a wider or "
                             "narrower UNet (FLOPs, rate, fp16 size; scripts/training_width_sweep.py sweeps it)")
    btrain.add_argument("--channel-mult", type=int_list, metavar="M,M,...",
                        help="with --cached-latents: the preset's channel multiplier per level replaced (e.g. 1,1: "
                             "two levels of equal width; attention stays at the preset's resolutions)")
    add_progress_flag(btrain)
    add_json_flag(btrain)
    btrain.set_defaults(func=_bench_train)
