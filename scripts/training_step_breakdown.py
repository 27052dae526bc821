"""Where the bundled models' training step spends its time, by kind of work (docs/performance.md, issue 15):

    python scripts/training_step_breakdown.py            # the compiled step (a cold compile takes ~2.5 minutes)
    python scripts/training_step_breakdown.py --eager

The step is `vid2world bench train --cached-latents`'s (latent-small, 8 clips x 8 frames of 16x16 latents, bf16
autocast, actions, no checkpointing). Its FLOPs are counted on the eager step by torch's `FlopCounterMode` and split
into matmuls and convolutions; the time of two steps comes from torch's profiler, with inductor's generated kernels
named (`cpp.enable_kernel_profile`) so the fused normalisations and activations can be told apart. The last lines
give what the issue's target (the whole step at 50% of the bf16 matmul rate) would leave for everything that is not
a matmul or a convolution, if those kept their measured rate."""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch
import torch._inductor.config as inductor_config
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from vid2world.bench.flops import machine_rates
from vid2world.bench.train import BenchTrainConfig, _latent_world_model
from vid2world.train.in_memory import FitConfig, fit_world_model

MATMULS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")
CONVOLUTIONS = ("aten::mkldnn_convolution", "aten::convolution_backward")
OPTIMISER = ("aten::_fused_adamw_", "aten::linalg_vector_norm", "aten::_foreach_", "aten::mul_", "aten::zero_",
             "aten::fill_", "aten::add_")  # AdamW, gradient clipping, zeroing and accumulating gradients
# the memory-bound rest, by the first of these an op's name contains (inductor's fused kernels name the ops they
# fuse; the order decides: GELU kernels often carry a LayerNorm backward too)
KINDS = (("gelu", "GELU of the feed-forward (GEGLU)"), ("group_norm", "GroupNorm (+ SiLU, pads)"),
         ("layer_norm", "LayerNorm (+ residual adds)"), ("softmax", "attention softmax and mask"))


def _category(name: str) -> str:
    if name.startswith(MATMULS):
        return "matmuls (mm, addmm, bmm)"
    if name.startswith(CONVOLUTIONS):
        return "convolutions (forward, backward)"
    kind = next((label for key, label in KINDS if key in name), None)
    if name.startswith("graph_"):  # inductor's generated kernels
        return f"fused: {kind or 'other (copies, casts, adds, pads)'}"
    if kind:
        return kind
    if name.startswith(OPTIMISER):
        return "optimiser, clipping, gradient zeroing"
    if name.startswith(("aten::copy_", "aten::_to_copy")):
        return "eager copies and casts"
    if name.startswith("## Call CompiledFxGraph"):
        return "compiled graphs' own time (wrappers, small ops)"
    return "everything else"


def counted(step) -> dict[str, float]:
    """FLOPs of one step: matmuls and convolutions (forward and backward)."""
    with FlopCounterMode(display=False) as counter:
        step()
    ops = {str(op).split(".")[-1]: n for op, n in counter.get_flop_counts()["Global"].items()}
    conv = sum(n for op, n in ops.items() if op.startswith("convolution"))
    return {"matmuls (mm, addmm, bmm)": sum(ops.values()) - conv, "convolutions (forward, backward)": conv}


def copy_bandwidth(elements: int = 1 << 24, repeats: int = 20) -> float:
    """GB/s read + written by copying a bf16 tensor of `elements` (16.7 M: the size of the largest GELU input)."""
    src = torch.randn(elements).bfloat16()
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    start = time.perf_counter()
    for _ in range(repeats):
        dst.copy_(src)
    return 2 * 2 * elements * repeats / (time.perf_counter() - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eager", action="store_true", help="the eager step instead of the compiled one")
    args = parser.parse_args()
    inductor_config.cpp.enable_kernel_profile = True
    model = _latent_world_model(BenchTrainConfig(preset="latent-small", checkpointing=False, action_dim=12))
    rng = np.random.default_rng(0)
    latents = [rng.normal(size=(16, 4, 16, 16)).astype(np.float16) for _ in range(8)]
    actions = [rng.normal(size=(16, 12)).astype(np.float32) for _ in range(8)]
    fit = FitConfig(steps=1, batch=8, clip=8, precision="bf16", compile=not args.eager)
    flops = counted(lambda: fit_world_model(model, latents, actions, replace(fit, compile=False), latents=True))
    fit_world_model(model, latents, actions, replace(fit, steps=3), latents=True)  # compile, warm up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fit_world_model(model, latents, actions, replace(fit, steps=2), latents=True)
    seconds: dict[str, float] = {}
    for event in prof.key_averages():
        key = _category(event.key)
        seconds[key] = seconds.get(key, 0.0) + event.self_cpu_time_total / 2e6  # per step
    rates = machine_rates()
    step, total_flops = sum(seconds.values()), sum(flops.values())
    print(f"{'eager' if args.eager else 'compiled'} step, profiled: {step:.3f} s, {total_flops / 1e9:.0f} GFLOP "
          f"counted; matmul here: fp32 {rates['fp32']:.0f}, bf16 {rates['bf16']:.0f} GFLOP/s")
    for key, s in sorted(seconds.items(), key=lambda kv: -kv[1]):
        rate = (f"  {flops[key] / 1e9:.0f} GFLOP at {flops[key] / s / 1e9:.0f} GFLOP/s "
                f"({flops[key] / s / 1e9 / rates['bf16']:.0%} of bf16)") if key in flops else ""
        print(f"  {1000 * s:6.1f} ms  {s / step:4.0%}  {key}{rate}")
    fused = sorted((e for e in prof.key_averages() if e.key.startswith("graph_")), key=lambda e: -e.self_cpu_time_total)
    for e in fused[:3]:  # what bounds them: compare with the bytes they move at the copy bandwidth below
        print(f"  largest fused kernels: {e.self_cpu_time_total / 2e3:5.1f} ms per step, {e.count // 2}x: {e.key[:100]}")
    print(f"copying 16.7 M bf16 elements: {copy_bandwidth():.0f} GB/s read + written")
    flop_s = sum(seconds.get(k, 0.0) for k in flops)
    target = total_flops / (0.5 * rates["bf16"] * 1e9)
    print(f"whole step: {total_flops / step / 1e9:.0f} GFLOP/s, {total_flops / step / 1e9 / rates['bf16']:.0%} of "
          f"bf16 matmul. At 50% the step would take {target:.3f} s: with the matmuls and convolutions at their "
          f"rate ({flop_s:.3f} s), {max(target - flop_s, 0.0):.3f} s would be left for the other "
          f"{step - flop_s:.3f} s of work.")
    norm_act = sum(t for k, t in seconds.items() if "GroupNorm" in k or "GELU" in k)
    print(f"with every GroupNorm and GELU kernel free ({norm_act:.3f} s less), the step would take "
          f"{step - norm_act:.3f} s: {total_flops / (step - norm_act) / 1e9 / rates['bf16']:.0%} of bf16 matmul.")


if __name__ == "__main__":
    main()
