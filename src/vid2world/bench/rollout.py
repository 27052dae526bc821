"""`vid2world bench rollout`: per-frame latency against history length, cached vs recompute, guided vs unguided.

Random weights (timing does not depend on them), or a saved world model (`--model DIR`). Each cell starts a session
with `history` context frames and times `repeats` single-frame steps at exactly that history (a fresh session per
repeat); the median is reported.
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import time
from typing import Any, Iterable

import torch

from ..io.args import (add_json_flag, float_list, int_list, non_negative_int, positive_int, torch_device,
                       write_json)
from ..models.codec import IdentityCodec
from ..models.config import ActionSpace, CausalConfig, UNetConfig
from ..models.unet import VideoUNet
from ..testing import randomize_weights
from ..world.world_model import WorldModel


def bench_model(preset: str, norm: str, action_dim: int, window: int, device: str) -> tuple[WorldModel, int, int]:
    """A random-weight world model for timing; returns (model, latent channels, latent size)."""
    cfg = UNetConfig.preset(preset)  # pixel-*: RGB in and out; the others: latents with the first-frame concat
    channels = cfg.out_channels
    cfg = cfg.replace(action_space=ActionSpace.continuous(action_dim), causal=CausalConfig(norm), temporal_length=window)
    unet = randomize_weights(VideoUNet(cfg), 0).eval().to(device)
    return WorldModel(unet, IdentityCodec(channels)), channels, cfg.downsample_factor


def load_bench_model(directory: str, device: str, caches: Iterable[bool] = ()) -> WorldModel:
    """A saved world model (`vid2world convert` or training) to measure instead of a random one; refuses a
    cached run of a model that has no exact cache, naming the flag that avoids it."""
    model = WorldModel.from_pretrained(directory, device=device)
    if any(caches) and not model.unet.config.strictly_causal:
        raise ValueError(f"--model {directory}: its UNet is not strictly causal (causal={model.unet.config.causal}), "
                         "so it has no exact cache; pass --cache off")
    return model


def random_context(model: WorldModel, batch: int, device: str, dtype: torch.dtype,
                   generator: torch.Generator | None = None) -> torch.Tensor | None:
    """Stand-in cross-attention context (77 text + 16 image tokens) for UNets that have cross-attention."""
    width = model.unet.config.context_dim
    if width is None:
        return None
    return torch.randn(batch, 77 + 16, width, generator=generator).to(device=device, dtype=dtype)


def time_step(model: WorldModel, history: int, size: int, steps: int, guidance: float, cache: bool,
              batch: int, repeats: int, device: str, context: torch.Tensor | None) -> float:
    """Median seconds to generate one frame after `history` frames."""
    channels = model.unet.config.out_channels
    gen = torch.Generator().manual_seed(0)
    latents = torch.randn(batch, channels, history, size, size, generator=gen).to(device)
    actions = None if model.action_dim is None else torch.zeros(batch, history, model.action_dim, device=device)
    step_action = None if model.action_dim is None else torch.zeros(batch, model.action_dim, device=device)
    times = []
    for r in range(repeats + 1):  # the first run warms up
        sess = model.latent_session(latents, actions, steps=steps, guidance=guidance, cache=cache, seed=r,
                                    context=context)
        _sync(device)
        start = time.perf_counter()
        sess.step_latent(step_action)
        _sync(device)
        if r:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def _sync(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def _check_bench_args(histories: list[int], steps: list[int], guidances: list[float], caches: list[bool],
                     **counts: int) -> None:
    """Raise ValueError naming the first argument of `run_bench` that cannot be timed (empty, < 1, not finite)."""
    for name, values in (("histories", histories), ("steps", steps), ("guidances", guidances), ("caches", caches)):
        if not values:
            raise ValueError(f"{name}: expected at least one value, got none")
    for name, values in (("histories", histories), ("steps", steps)):
        if min(values) < 1:
            raise ValueError(f"{name}: every value must be >= 1, got {values}")
    if not all(math.isfinite(g) for g in guidances):
        raise ValueError(f"guidances: every value must be finite, got {guidances}")
    for name, value in counts.items():
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


def run_bench(preset: str = "pixel-tiny", size: int = 16, histories: Iterable[int] = (1, 3, 7, 15),
              steps: Iterable[int] = (10,), guidances: Iterable[float] = (1.0, 2.5), caches: Iterable[bool] = (True, False),
              batch: int = 1, repeats: int = 3, norm: str = "frame", device: str = "cpu",
              dtype: str = "float32", model_dir: str | None = None) -> dict[str, Any]:
    """Per-frame latency table of a random `preset` model, or of the saved world model in `model_dir`."""
    histories, steps, guidances, caches = list(histories), list(steps), list(guidances), list(caches)
    _check_bench_args(histories, steps, guidances, caches, size=size, batch=batch, repeats=repeats)
    model = (load_bench_model(model_dir, device, caches) if model_dir
             else bench_model(preset, norm, 7, max(histories) + 1, device)[0])
    model = model.to(getattr(torch, dtype))
    context = random_context(model, batch, device, getattr(torch, dtype))
    rows = []
    with torch.inference_mode():
        for h, n, g, c in itertools.product(histories, steps, guidances, caches):
            seconds = time_step(model, h, size, n, g, c, batch, repeats, device, context)
            rows.append({"history": h, "steps": n, "guidance": g, "cache": c, "seconds_per_frame": seconds})
    if model_dir:
        norm = model.unet.config.causal.temporal_norm if model.unet.config.causal else "none (not causal)"
    return {"preset": preset, "model": model_dir, "size": size, "batch": batch, "norm": norm, "device": str(device),
            "dtype": dtype, "torch": torch.__version__, "threads": torch.get_num_threads(), "repeats": repeats,
            "rows": rows, "ratios": ratios(rows)}


def _find(rows: list[dict], **match: Any) -> float | None:
    hits = [r["seconds_per_frame"] for r in rows if all(r[k] == v for k, v in match.items())]
    return hits[0] if hits else None


def ratios(rows: list[dict]) -> dict[str, float]:
    """The acceptance ratios, where the table has the cells they need."""
    out: dict[str, float] = {}
    hs = sorted({r["history"] for r in rows})
    lo, hi = hs[0], hs[-1]
    for n in sorted({r["steps"] for r in rows}):
        for g in sorted({r["guidance"] for r in rows}):
            a, b = _find(rows, history=hi, steps=n, guidance=g, cache=True), _find(rows, history=lo, steps=n,
                                                                                   guidance=g, cache=True)
            if a and b:
                out[f"cached h{hi}/h{lo} (steps {n}, guidance {g})"] = a / b
            r = _find(rows, history=hi, steps=n, guidance=g, cache=False)
            if a and r:
                out[f"recompute/cached at h{hi} (steps {n}, guidance {g})"] = r / a
        gs = sorted({r["guidance"] for r in rows})
        if 1.0 in gs and len(gs) > 1:
            guided = _find(rows, history=hi, steps=n, guidance=gs[-1], cache=True)
            plain = _find(rows, history=hi, steps=n, guidance=1.0, cache=True)
            if guided and plain:
                out[f"guided {gs[-1]}/unguided, cached at h{hi} (steps {n})"] = guided / plain
    return out


def format_bench(result: dict[str, Any]) -> str:
    source = f"model {result['model']}" if result.get("model") else f"preset {result['preset']}"
    lines = [f"{source}, {result['size']}x{result['size']} latents, batch {result['batch']}, "
             f"{result['dtype']} on {result['device']} ({result['threads']} threads), median of {result['repeats']}",
             "", "| history | steps | guidance | cache | ms / frame |", "|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['history']} | {r['steps']} | {r['guidance']} | {'on' if r['cache'] else 'off'} | "
                     f"{1000 * r['seconds_per_frame']:.1f} |")
    lines += ["", "| ratio | value |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in result["ratios"].items()]
    return "\n".join(lines)


def cache_exactness(frames: int = 16, steps: int = 10, size: int = 16, seed: int = 0,
                    dtypes: Iterable[str] = ("float32", "float64"), model_dir: str | None = None) -> dict[str, Any]:
    """Largest |cached - recomputed| over a rollout's latents, per norm mode and dtype (random-weight tiny model),
    or per dtype for the saved world model in `model_dir`.

    `clip` has no cache at all (a clip-wide norm makes every history feature depend on the newest frame).
    """
    if model_dir:
        saved = WorldModel.from_pretrained(model_dir)
        if saved.unet.config.causal is None:
            raise ValueError(f"--model {model_dir}: not a causal UNet (a passive video model); bench cache measures "
                             "world models")
        cases = [(saved.unet.config.causal.temporal_norm, dtype, saved) for dtype in dtypes]
    else:
        cases = [(norm, dtype, bench_model("pixel-tiny", norm, 2, frames, "cpu")[0])
                 for norm, dtype in itertools.product(("frame", "causal"), dtypes)]
    rows = [{"norm": norm, "dtype": dtype, **_cache_difference(model.to(getattr(torch, dtype)), frames, steps, size,
                                                               seed)} for norm, dtype, model in cases]
    return {"frames": frames, "steps": steps, "size": size, "model": model_dir, "rows": rows}


def _cache_difference(model: WorldModel, frames: int, steps: int, size: int, seed: int) -> dict[str, Any]:
    """One rollout from a random latent, cached and recomputed; how far apart their latents are, per frame."""
    dtype, exact = next(model.unet.parameters()).dtype, model.unet.config.strictly_causal
    gen = torch.Generator().manual_seed(seed)
    latents = torch.rand(1, model.unet.config.out_channels, 1, size, size, generator=gen).to(dtype) * 2 - 1
    actions = None
    if model.action_dim is not None:
        actions = torch.randint(-1, 2, (1, frames, model.action_dim), generator=gen).float()
    context = random_context(model, 1, "cpu", dtype, gen)
    runs = []
    for cache in (True, False):
        sess = model.latent_session(latents, None if actions is None else actions[:, :1] * 0, steps=steps, seed=seed,
                                    cache=cache, context=context)
        with torch.inference_mode():
            runs.append(torch.cat([latents] + [sess.step_latent(None if actions is None else actions[:, i])
                                               for i in range(frames - 1)], dim=2))
    diff = (runs[0] - runs[1]).abs().amax(dim=(0, 1, 3, 4))
    return {"max_abs_diff": diff.max().item(), "per_frame": diff.tolist(), "latent_abs_max": runs[1].abs().max().item(),
            "exact_cache": exact}


def format_exactness(result: dict[str, Any]) -> str:
    source = f"model {result['model']}: " if result.get("model") else ""
    space = "latents" if result.get("model") else "pixels"
    size = f"{result['size']}x{result['size']}"
    lines = [f"{source}{result['frames']} frames, {result['steps']} steps, {size} {space}", "",
             "| temporal norm | dtype | max abs(cached - recomputed) | max abs latent | cache |", "|---|---|---|---|---|"]
    for r in result["rows"]:
        kind = "exact" if r["exact_cache"] else "approximate (measurement only)"
        lines.append(f"| {r['norm']} | {r['dtype']} | {r['max_abs_diff']:.2e} | {r['latent_abs_max']:.2f} | {kind} |")
    return "\n".join(lines)


def _bench_rollout(args: argparse.Namespace) -> int:
    caches = {"on": [True], "off": [False], "both": [True, False]}[args.cache]
    if args.model and (args.preset or args.norm):
        raise ValueError(f"--model {args.model} has its own architecture and norm; give --model or --preset/--norm, "
                         "not both")
    result = run_bench(preset=args.preset or "pixel-tiny", size=args.size, histories=args.histories, steps=args.steps,
                       guidances=args.guidance, caches=caches, batch=args.batch, repeats=args.repeats,
                       norm=args.norm or "frame", device=args.device, dtype=args.dtype, model_dir=args.model)
    print(format_bench(result))
    write_json(args.json, result)
    return 0


def _bench_cache(args: argparse.Namespace) -> int:
    result = cache_exactness(frames=args.frames, steps=args.steps, size=args.size, seed=args.seed, model_dir=args.model)
    print(format_exactness(result))
    write_json(args.json, result)
    return 0


def register(bench_sub) -> None:
    """The `bench rollout` and `bench cache` commands."""
    rollout = bench_sub.add_parser("rollout", help="per-frame latency vs history: cached/recompute, guided/unguided")
    rollout.add_argument("--preset", default=None, help="UNet preset with random weights (default: pixel-tiny, "
                         "pixel space; tiny, dynamicrafter-*: 4-channel latents)")
    rollout.add_argument("--model", default=None, help="a world-model directory (from `vid2world convert` or "
                         "training) to time instead of a random preset")
    rollout.add_argument("--size", type=positive_int, default=16, help="latent height and width (default: 16)")
    rollout.add_argument("--histories", type=int_list, default="1,3,7,15",
                         help="history lengths, comma-separated (default: 1,3,7,15)")
    rollout.add_argument("--steps", type=int_list, default="10",
                         help="denoising steps per frame, comma-separated (default: 10)")
    rollout.add_argument("--guidance", type=float_list, default="1,2.5",
                         help="guidance scales, comma-separated; 1 = off (default: 1,2.5)")
    rollout.add_argument("--cache", choices=["on", "off", "both"], default="both", help="KV cache (default: both)")
    rollout.add_argument("--norm", default=None, choices=["frame", "causal"],
                         help="temporal norm mode of the random model (default: frame)")
    rollout.add_argument("--batch", type=positive_int, default=1, help="rollouts in parallel (default: 1)")
    rollout.add_argument("--repeats", type=positive_int, default=3,
                         help="timed frames per cell, median reported (default: 3)")
    rollout.add_argument("--device", type=torch_device, default="cpu", help="torch device (default: cpu)")
    rollout.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"], help="weights dtype")
    add_json_flag(rollout)
    rollout.set_defaults(func=_bench_rollout)

    cache = bench_sub.add_parser("cache", help="cached vs recomputed rollouts: largest difference per norm mode")
    cache.add_argument("--frames", type=positive_int, default=16,
                       help="rollout length incl. the context frame (default: 16)")
    cache.add_argument("--steps", type=positive_int, default=10, help="denoising steps per frame (default: 10)")
    cache.add_argument("--size", type=positive_int, default=16, help="frame height and width (default: 16)")
    cache.add_argument("--seed", type=non_negative_int, default=0, help="seed (default: 0)")
    cache.add_argument("--model", default=None, help="a world-model directory (from `vid2world convert` or "
                       "training) to measure instead of random models in every norm mode")
    add_json_flag(cache)
    cache.set_defaults(func=_bench_cache)
