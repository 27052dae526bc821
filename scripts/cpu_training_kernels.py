"""The measurements behind the CPU training fast paths (docs/performance.md, issue 15):

    python scripts/cpu_training_kernels.py             # the kernel comparisons, about a minute
    python scripts/cpu_training_kernels.py --compile   # also torch.compile of the training step (minutes)
    python scripts/cpu_training_kernels.py --compile --inductor-mode max-autotune-no-cudagraphs

Each line times forward + backward of one layer at the shapes of the bundled model's training step (latent-small,
8 clips x 8 frames of 16x16 latents, bf16), the way the fast path runs it against the way it ran before:
a 3x3 convolution on contiguous against channels-last features, GroupNorm on channels-last features against a
contiguous copy, self-attention through the fused kernel against two matmuls and a softmax, and AdamW foreach
against fused. With `--compile`,
GroupNorm + SiLU eager against inductor's fused kernel, and the in-memory loop's step eager against `torch.compile`
of the denoiser (first step = compile time)."""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from typing import Callable
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F

from vid2world.bench.train import BenchTrainConfig, _latent_world_model
from vid2world.models.attention import self_attention
from vid2world.models.temporal import group_norm
from vid2world.train import in_memory
from vid2world.train.in_memory import FitConfig, fit_world_model

BF16 = torch.bfloat16
CL = torch.channels_last


def ms(fn: Callable[[], object], repeats: int = 20) -> float:
    """Median milliseconds of `fn` after two warm-up calls."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def _leaf(*shape: int, layout=torch.contiguous_format) -> torch.Tensor:
    return torch.randn(*shape, dtype=BF16).contiguous(memory_format=layout).requires_grad_()


def convolution() -> str:
    weight = torch.randn(64, 64, 3, 3, dtype=BF16, requires_grad=True)
    rows = []
    for layout in (torch.contiguous_format, CL):
        x, grad = _leaf(64, 64, 16, 16, layout=layout), torch.randn(64, 64, 16, 16, dtype=BF16).contiguous(
            memory_format=layout)
        rows.append(ms(lambda: F.conv2d(x, weight, padding=1).backward(grad)))
    return f"3x3 conv, 64 frames x 64 ch x 16x16: contiguous {rows[0]:.2f} ms, channels-last {rows[1]:.2f} ms"


def groupnorm() -> str:
    w, b = torch.ones(64, requires_grad=True), torch.zeros(64, requires_grad=True)
    x, grad = _leaf(64, 64, 16, 16, layout=CL), torch.randn(64, 64, 16, 16, dtype=BF16).contiguous(memory_format=CL)
    native = ms(lambda: F.group_norm(x, 16, w, b).backward(grad))
    converted = ms(lambda: group_norm(x, 16, w, b, 1e-5).backward(grad))
    return f"GroupNorm on channels-last bf16 features: native kernel {native:.2f} ms, via a contiguous copy {converted:.2f} ms"


def groupnorm_silu_compiled() -> list[str]:
    """GroupNorm + SiLU (the ResBlocks' norm and activation) forward and backward at the step's four shapes, eager
    against inductor's fused kernel: whether fusing the normalisations could shorten the step's memory-bound half."""
    fused = torch.compile(lambda x, w, b: F.silu(group_norm(x, 16, w, b, 1e-5)))
    lines = []
    for shape, layout in (((64, 128, 8, 8), CL), ((64, 64, 16, 16), CL), ((8, 64, 8, 16, 16), torch.channels_last_3d),
                          ((8, 128, 8, 8, 8), torch.channels_last_3d)):
        w, b = torch.ones(shape[1], requires_grad=True), torch.zeros(shape[1], requires_grad=True)
        x, grad = _leaf(*shape, layout=layout), torch.randn(*shape, dtype=BF16).contiguous(memory_format=layout)
        eager = ms(lambda: F.silu(group_norm(x, 16, w, b, 1e-5)).backward(grad))
        compiled = ms(lambda: fused(x, w, b).backward(grad))
        lines.append(f"GroupNorm + SiLU {list(shape)}: eager {eager:.2f} ms, compiled {compiled:.2f} ms")
    return lines


def attention() -> list[str]:
    lines = []
    for batch, heads, length in ((64, 4, 64), (512, 4, 8), (2048, 8, 8)):
        q, k, v = (_leaf(batch, heads, length, 32) for _ in range(3))
        grad = torch.randn(batch, heads, length, 32, dtype=BF16)
        fused = ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True).backward(grad), 8)
        matmuls = ms(lambda: self_attention(q, k, v, True).backward(grad), 8)
        lines.append(f"causal self-attention [{batch}, {heads}, {length}, 32]: fused kernel {fused:.1f} ms, "
                     f"matmuls {matmuls:.1f} ms")
    return lines


def optimiser() -> str:
    """AdamW over the bundled UNet's 8.0 M parameters, foreach (torch's default) against fused."""
    unet = _latent_world_model(BenchTrainConfig(preset="latent-small", checkpointing=False, action_dim=12)).unet
    for p in unet.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    rows = [ms(torch.optim.AdamW(unet.parameters(), lr=1e-4, fused=fused).step) for fused in (False, True)]
    return f"AdamW step over {sum(p.numel() for p in unet.parameters()):,} parameters: foreach {rows[0]:.1f} ms, " \
           f"fused {rows[1]:.1f} ms"


def compiled_step(steps: int = 10, inductor_mode: str | None = None) -> str:
    """Eager against compiled steps; `inductor_mode` passes torch.compile's `mode` (e.g. max-autotune-no-cudagraphs)
    to the loop's compile, which `FitConfig.compile` leaves at the default."""
    rng = np.random.default_rng(0)
    latents = [rng.normal(size=(16, 4, 16, 16)).astype(np.float16) for _ in range(8)]
    actions = [rng.normal(size=(16, 12)).astype(np.float32) for _ in range(8)]
    results = {}
    for mode in ("eager", "compiled"):
        model = _latent_world_model(BenchTrainConfig(preset="latent-small", checkpointing=False, action_dim=12))
        times, clock = [], [time.perf_counter()]

        def tick(step: int, loss: float) -> None:
            now = time.perf_counter()
            times.append(now - clock[0])
            clock[0] = now

        compile_with = functools.partial(torch.compile, mode=inductor_mode)
        with mock.patch.object(in_memory.torch, "compile", compile_with):
            fit_world_model(model, latents, actions, FitConfig(steps=steps, batch=8, clip=8, precision="bf16",
                                                                    compile=mode == "compiled"),
                            on_step=tick, latents=True)
        results[mode] = (times[0], statistics.median(times[3:]))
    (_, eager), (first, compiled) = results["eager"], results["compiled"]
    return (f"training step: eager {eager:.3f} s; torch.compile (mode {inductor_mode or 'default'}) first step "
            f"{first:.0f} s, then {compiled:.3f} s ({eager / compiled:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compile", action="store_true", help="also time torch.compile of the training step")
    parser.add_argument("--inductor-mode", default=None, help="torch.compile's mode for --compile (default: default)")
    args = parser.parse_args()
    compiled = [*groupnorm_silu_compiled(), compiled_step(inductor_mode=args.inductor_mode)] if args.compile else []
    for line in [convolution(), groupnorm(), *attention(), optimiser()] + compiled:
        print(line, flush=True)


if __name__ == "__main__":
    main()
