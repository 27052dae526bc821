"""Wan2.1-T2V-1.3B, causalized with actions (random weights, the real config), on one GPU: training step time
and peak memory, and cached per-latent-frame rollout latency, at 480x832 and 256x256 video.

    PYTHONPATH=src python3 scripts/device/wan_gpu.py --out $OUT          # one GPU, a few minutes
    python scripts/device/wan_gpu.py --tiny --device cpu --out /tmp/x    # a tiny config, seconds (the test)

Training: float32 master weights under bf16 autocast (accelerate's mixed_precision="bf16"), every block
recomputed in the backward pass (`set_gradient_checkpointing(True)`), AdamW, batch 1, a 21-latent-frame clip
(81 video frames), one rectified-flow noise level per frame (Diffusion Forcing), T5-sized text tokens.
Rollout: the model in bf16, a cache of window 21 filled with 20 committed frames, then each new latent frame
is `steps` timed `predict` calls at decreasing levels and one committing call. Writes OUT/wan_gpu.json and
prints a table.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from vid2world.causal import causalize
from vid2world.checkpoints.wan import WAN_SCHEDULE  # Wan 2.1's rectified flow, as `convert` gives it
from vid2world.diffusion import NoiseSchedule, ddim_update
from vid2world.models.backbone import Conditioning
from vid2world.models.config import ActionSpace
from vid2world.models.wan import WanConfig, WanTransformer

PRESET = "wan2.1-t2v-1.3b"
VIDEO = {"480x832": (480, 832), "256x256": (256, 256)}  # video pixels; Wan's VAE compresses space 8x
TINY = dict(num_attention_heads=2, attention_head_dim=12, text_dim=32, freq_dim=16, ffn_dim=48, num_layers=2)
GIB = 2 ** 30


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for wan_gpu.json")
    p.add_argument("--tiny", action="store_true", help="a tiny config and latents (tests it on CPU)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--frames", type=int, default=21, help="latent frames of a training clip (81 video)")
    p.add_argument("--window", type=int, default=21, help="rollout window: the cache keeps window - 1")
    p.add_argument("--text-tokens", type=int, help="text tokens (default 512: Wan pads T5 prompts; tiny 8)")
    p.add_argument("--action-dim", type=int, default=13, help="one video frame's action (RT-1: 13)")
    p.add_argument("--train-steps", type=int, help="timed steps after one warm-up step (default 3; tiny 1)")
    p.add_argument("--rollout-frames", type=int, help="timed frames after a warm-up (default 4; tiny 1)")
    p.add_argument("--steps", type=int, nargs="+", default=[4, 8], help="denoising calls per latent frame")
    p.add_argument("--resolutions", nargs="+", default=list(VIDEO), choices=list(VIDEO))
    args = p.parse_args(argv)
    for name, full, tiny in (("text_tokens", 512, 8), ("train_steps", 3, 1), ("rollout_frames", 4, 1)):
        if getattr(args, name) is None:
            setattr(args, name, tiny if args.tiny else full)
    for name in ("frames", "window", "text_tokens", "action_dim", "train_steps", "rollout_frames"):
        if getattr(args, name) < 1:
            raise ValueError(f"wan_gpu.py --{name.replace('_', '-')}: expected >= 1, "
                             f"got {getattr(args, name)}")
    if args.window < 2 or min(args.steps) < 1:
        raise ValueError(f"wan_gpu.py: expected --window >= 2 and --steps >= 1, "
                         f"got {args.window}, {args.steps}")
    return args


def latent_size(resolution: str, tiny: bool) -> tuple[int, int]:
    """Latent height and width (8x spatial compression; tiny: a 4x4 or 2x4 token grid after the 2x2 patch)."""
    if tiny:
        return {"480x832": (4, 8), "256x256": (4, 4)}[resolution]
    h, w = VIDEO[resolution]
    return h // 8, w // 8


def build_model(args: argparse.Namespace) -> WanTransformer:
    """The preset's passive DiT with random weights, causalized with a continuous action per video frame."""
    config = WanConfig.preset(PRESET, **(TINY if args.tiny else {}))
    with torch.device(args.device):
        passive = WanTransformer(config)
    model, _ = causalize(passive, action_space=ActionSpace.continuous(args.action_dim))
    return model


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> dict[str, float | None]:
    if device.type != "cuda":
        return {"peak_allocated_gib": None, "peak_reserved_gib": None}
    return {"peak_allocated_gib": torch.cuda.max_memory_allocated(device) / GIB,
            "peak_reserved_gib": torch.cuda.max_memory_reserved(device) / GIB}


def clip_inputs(model: WanTransformer, args: argparse.Namespace, hw: tuple[int, int], frames: int,
                dtype: torch.dtype, seed: int) -> dict[str, torch.Tensor]:
    cfg, device = model.config, torch.device(args.device)
    g = torch.Generator(device).manual_seed(seed)
    rand = lambda *shape: torch.randn(*shape, generator=g, device=device, dtype=dtype)  # noqa: E731
    return dict(x=rand(1, cfg.in_channels, frames, *hw), noise=rand(1, cfg.in_channels, frames, *hw),
                context=rand(1, args.text_tokens, cfg.text_dim),
                actions=rand(1, frames, cfg.action_space.dim),
                levels=torch.randint(0, 1000, (1, frames), generator=g, device=device))


def bench_train(model: WanTransformer, optimizer: torch.optim.Optimizer, args: argparse.Namespace,
                resolution: str) -> dict:
    """Seconds per AdamW step (mean of the timed steps) and the peak memory of the steps."""
    device, hw = torch.device(args.device), latent_size(resolution, args.tiny)
    schedule = NoiseSchedule(WAN_SCHEDULE)
    model.train().set_gradient_checkpointing(True)
    times = []
    reset_peak(device)
    for step in range(args.train_steps + 1):  # step 0 warms up (kernel choice, allocator)
        b = clip_inputs(model, args, hw, args.frames, torch.float32, seed=step)
        sync(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16):
            x0 = b["x"] * schedule.scale(b["levels"], b["x"])
            out = model(schedule.add_noise(x0, b["levels"], b["noise"]), b["levels"], b["context"],
                        actions=b["actions"])
        loss = (out.float() - schedule.target(x0, b["noise"], b["levels"]).float()).square().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync(device)
        times.append(time.perf_counter() - start)
    tokens = args.frames * (hw[0] // 2) * (hw[1] // 2)
    return {"resolution": resolution, "latent": [args.frames, *hw], "tokens": tokens,
            "step_s": sum(times[1:]) / len(times[1:]), "step_s_each": times, "loss": loss.item(),
            **peak_gib(device)}


@torch.inference_mode()
def bench_rollout(model: WanTransformer, args: argparse.Namespace, resolution: str, steps: int) -> dict:
    """Per-latent-frame latency on a full cache: `steps` query calls and one commit."""
    device, hw = torch.device(args.device), latent_size(resolution, args.tiny)
    dtype = next(model.parameters()).dtype
    reset_peak(device)
    history = clip_inputs(model, args, hw, args.window - 1, dtype, seed=100)
    conditioning = Conditioning(context=history["context"])
    cache = model.new_cache(1, args.window)
    sync(device)
    start = time.perf_counter()
    model.predict(history["x"], torch.zeros_like(history["levels"]), conditioning, history["actions"],
                  cache=cache.view(commit=True), commit=True)
    sync(device)
    prefill = time.perf_counter() - start
    schedule = NoiseSchedule(WAN_SCHEDULE)
    levels = torch.linspace(999, 0, steps + 1, device=device).round().long().view(-1, 1, 1)  # DDIM descent
    query, commit = [], []
    for frame in range(args.rollout_frames + 1):  # frame 0 warms up
        new = clip_inputs(model, args, hw, 1, dtype, seed=200 + frame)
        x = new["x"]
        sync(device)
        start = time.perf_counter()
        for level, next_level in zip(levels[:-1], levels[1:]):
            out = model.predict(x, level, conditioning, new["actions"], cache=cache.view())
            x, _ = ddim_update(schedule, x, out, level, next_level, eta=0.0, noise=None)
        sync(device)
        middle = time.perf_counter()
        model.predict(x, torch.zeros_like(new["levels"]), conditioning, new["actions"],
                      cache=cache.view(commit=True), commit=True)
        sync(device)
        query.append(middle - start)
        commit.append(time.perf_counter() - middle)
    frame_s = (sum(query[1:]) + sum(commit[1:])) / args.rollout_frames
    return {"resolution": resolution, "steps": steps, "window": args.window, "prefill_ms": prefill * 1e3,
            "query_ms": sum(query[1:]) / args.rollout_frames / steps * 1e3,
            "commit_ms": sum(commit[1:]) / args.rollout_frames * 1e3, "frame_ms": frame_s * 1e3,
            "latent_fps": 1 / frame_s, "video_fps": 4 / frame_s, "cache_gib": cache.nbytes() / GIB,
            "fill": cache.fill[0], "finite": bool(torch.isfinite(x).all()), **peak_gib(device)}


def guarded(run, *args) -> dict:
    """A case's result, or the error that stopped it (an out-of-memory leaves the other cases to run)."""
    try:
        return run(*args)
    except torch.OutOfMemoryError as error:
        torch.cuda.empty_cache()
        return {"error": f"OutOfMemoryError: {str(error).splitlines()[0]}"}


def markdown(results: dict) -> str:
    lines = ["| what | resolution | steps | ms | peak GiB |", "| --- | --- | --- | --- | --- |"]
    gib = lambda r: "n/a" if r.get("peak_allocated_gib") is None else f"{r['peak_allocated_gib']:.1f}"  # noqa
    for r in results["train"]:
        ms = r.get("error") or f"{r['step_s'] * 1e3:.0f} per step"
        lines.append(f"| train (bf16 autocast, ckpt, AdamW) | {r.get('resolution', '?')} | - | {ms} "
                     f"| {gib(r)} |")
    for r in results["rollout"]:
        ms = r.get("error") or (f"{r['frame_ms']:.1f} per latent frame ({r['query_ms']:.1f} per call, "
                                f"commit {r['commit_ms']:.1f})")
        lines.append(f"| rollout (bf16, cache {r.get('window', '?')}) | {r.get('resolution', '?')} | "
                     f"{r.get('steps', '?')} | {ms} | {gib(r)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = build_model(args)
    results = {"preset": PRESET, "tiny": args.tiny, "device": torch.cuda.get_device_name(device)
               if device.type == "cuda" else platform.processor() or "cpu", "torch": torch.__version__,
               "parameters": sum(p.numel() for p in model.parameters()), "args": {
                   k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=device.type == "cuda")
    results["train"] = [guarded(bench_train, model, optimizer, args, r) for r in args.resolutions]
    del optimizer
    model = model.to(torch.bfloat16).eval()
    for p in model.parameters():
        p.grad = None
    results["rollout"] = [guarded(bench_rollout, model, args, r, s) for r in args.resolutions
                          for s in args.steps]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "wan_gpu.json").write_text(json.dumps(results, indent=1))
    print(markdown(results))
    return results


if __name__ == "__main__":
    main()
