"""Counted FLOPs and the machine's matmul rates, so a training step's speed reads as a fraction of what the
hardware does on its best kernel, measured in the same run (machines differ and are noisy)."""

from __future__ import annotations

import time
from typing import Callable

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

# the kernels that do a step's counted FLOPs: matrix products, convolutions (both directions), fused attention
_FLOP_KERNELS = ("aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm", "aten::mkldnn_convolution",
                 "aten::convolution_backward", "aten::_scaled_dot_product")


def counted_flops(step: Callable[[], object]) -> int:
    """FLOPs of one call of `step` (matmuls and convolutions, forward and backward), counted by torch."""
    with FlopCounterMode(display=False) as counter:
        step()
    return int(counter.get_total_flops())


def matmul_rate(dtype: torch.dtype, n: int = 1024, seconds: float = 1.0, device: str = "cpu") -> float:
    """GFLOP/s of an n x n matmul in `dtype`: the best of repeated timings over about `seconds`."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    torch.mm(a, b)  # warm-up: kernel selection, allocation
    best, spent = float("inf"), 0.0
    while spent < seconds:
        start = time.perf_counter()
        for _ in range(4):
            torch.mm(a, b)
        if device != "cpu":
            torch.cuda.synchronize()
        took = (time.perf_counter() - start) / 4
        best, spent = min(best, took), spent + 4 * took
    return 2 * n ** 3 / best / 1e9


def machine_rates(device: str = "cpu") -> dict[str, float]:
    """Matmul GFLOP/s in float32 and bfloat16 on `device`."""
    return {"fp32": matmul_rate(torch.float32, device=device), "bf16": matmul_rate(torch.bfloat16, device=device)}


def flop_kernel_share(step: Callable[[], object]) -> dict[str, float]:
    """Where one call of `step` spends its CPU time, from torch's profiler: seconds in the kernels that do the
    counted FLOPs (matmuls, convolutions, fused attention) and in everything else (normalisation, activations,
    copies, the optimiser). The first bounds what any amount of fusing the second could gain."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) / 1e6
    kernels = sum(e.self_cpu_time_total for e in events if e.key.startswith(_FLOP_KERNELS)) / 1e6
    return {"flop_kernels_s": kernels, "other_s": total - kernels}
