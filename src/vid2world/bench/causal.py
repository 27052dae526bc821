"""The causalization study behind `vid2world bench causal` and docs/causalization.md.

For every transfer mode x temporal-norm mode: the future leak of the causalized model and how much of the
original model's features survive (mean cosine similarity x 100, the paper's Table 6 measure). Measured on a
random-weight stand-in (no pretrained weights ship with the repo), on smooth synthetic clips.
"""

from __future__ import annotations

import argparse
import itertools
import time
from typing import Any

import torch

from ..causal.convert import causalize
from ..causal.diagnostics import ProbeInputs, feature_similarity, future_leak, mean_cosine, smooth_video
from ..causal.transfer import TRANSFER_MODES, transfer_conv_weight
from ..io.args import add_json_flag, non_negative_int, positive_int, torch_device, write_json
from ..models.config import TEMPORAL_NORM_MODES, ActionSpace, UNetConfig
from ..models.temporal import TemporalConv
from ..models.unet import VideoUNet
from ..testing import randomize_weights


def temporal_conv_similarity(transfer: str, channels: int = 64, frames: int = 16, seed: int = 0) -> float:
    """One (3,1,1) temporal conv with random weights on a smooth clip: cosine similarity x 100 between the
    original conv's output and the transferred causal conv's, on the frames where neither touches padding.
    Isolates the weight transfer from everything else in the network."""
    gen = torch.Generator().manual_seed(seed)
    original = TemporalConv(channels, channels, 3, causal=False)
    causal = TemporalConv(channels, channels, 3, causal=True)
    with torch.no_grad():
        original.weight.copy_(torch.randn(original.weight.shape, generator=gen) / channels ** 0.5)
        original.bias.zero_()
        causal.weight.copy_(transfer_conv_weight(original.weight, transfer))
        causal.bias.zero_()
        x = smooth_video(2, channels, frames, 8, 8, seed)
        a, b = original(x)[:, :, 2:-1], causal(x)[:, :, 2:-1]
    return 100 * mean_cosine(a, b)


def run_study(preset: str = "tiny", frames: int = 8, size: int = 16, seed: int = 0, leak_at: int = 3,
              device: str = "cpu") -> dict[str, Any]:
    """Leak and representation preservation for every (transfer, norm) pair; returns a JSON-ready dict."""
    if not 0 <= leak_at < frames - 1:  # the frames after leak_at are perturbed: there must be one
        raise ValueError(f"leak_at must lie in [0, frames - 1) = [0, {frames - 1}) so that a frame follows it, got "
                         f"{leak_at} with frames={frames}")
    start = time.perf_counter()
    base = randomize_weights(VideoUNet(UNetConfig.preset(preset)), seed).eval().to(device)

    def probe(model: VideoUNet) -> ProbeInputs:  # same clip, levels and context for every model
        return ProbeInputs.random(model, batch=2, frames=frames, size=size, seed=seed).to(device)

    clean = probe(base)
    base_leak = future_leak(base, clean, leak_at)
    rows = [{"model": "original (full-sequence)", "transfer": None, "temporal_norm": "clip",
             "leak_max_past": base_leak[: leak_at + 1].max().item(), "leak_per_frame": base_leak.tolist(),
             "similarity": {}}]
    for norm, transfer in itertools.product(TEMPORAL_NORM_MODES, TRANSFER_MODES):
        model, _ = causalize(base, transfer, norm, ActionSpace.continuous(7))
        leak = future_leak(model, probe(model), leak_at)
        sim = feature_similarity(base, model, clean)
        rows.append({"model": "causalized", "transfer": transfer, "temporal_norm": norm,
                     "leak_max_past": leak[: leak_at + 1].max().item(), "leak_per_frame": leak.tolist(),
                     "similarity": {k: 100 * v for k, v in sim.items()}})
    single = {t: temporal_conv_similarity(t, seed=seed) for t in TRANSFER_MODES}
    return {"preset": preset, "weights": f"random (randomize_weights seed {seed})", "frames": frames,
            "size": size, "leak_at": leak_at, "device": device, "torch": torch.__version__, "rows": rows,
            "single_temporal_conv_similarity": single, "seconds": time.perf_counter() - start}


def format_study(result: dict[str, Any]) -> str:
    """Markdown tables of a `run_study` result."""
    t = result["leak_at"]
    taps = list(next(r["similarity"] for r in result["rows"] if r["similarity"]))
    lines = [f"Preset `{result['preset']}`, {result['weights']}, {result['frames']} frames of "
             f"{result['size']}x{result['size']}; leak = largest output change on frames 0..{t} when frames "
             f"{t + 1}.. change (inputs, noise levels, actions).", "",
             "| transfer | temporal norm | leak into frames <= t | " + " | ".join(f"cos x100 `{k}`" for k in taps) + " |",
             "|---|---|---|" + "---|" * len(taps)]
    for r in result["rows"]:
        sims = " | ".join(f"{r['similarity'][k]:.2f}" if r["similarity"] else "-" for k in taps)
        lines.append(f"| {r['transfer'] or '(original)'} | {r['temporal_norm']} | {r['leak_max_past']:.3g} | {sims} |")
    lines += ["", "Single temporal conv (random kernel, smooth clip), cos x100 original vs transferred: " +
              ", ".join(f"{k} {v:.2f}" for k, v in result["single_temporal_conv_similarity"].items())]
    return "\n".join(lines)


def _bench_causal(args: argparse.Namespace) -> int:
    result = run_study(preset=args.preset, frames=args.frames, size=args.size, seed=args.seed,
                       leak_at=args.leak_at, device=args.device)
    print(format_study(result))
    write_json(args.json, result)
    return 0


def register(bench_sub) -> None:
    """The `bench causal` command."""
    causal = bench_sub.add_parser("causal", help="future leak and feature preservation of every transfer x norm")
    causal.add_argument("--preset", default="tiny", help="UNet preset (default: tiny; random stand-in weights)")
    causal.add_argument("--frames", type=positive_int, default=8, help="clip length (default: 8)")
    causal.add_argument("--size", type=positive_int, default=16, help="latent height and width (default: 16)")
    causal.add_argument("--leak-at", type=non_negative_int, default=3,
                        help="perturb the frames after this one (default: 3)")
    causal.add_argument("--seed", type=non_negative_int, default=0, help="seed of the weights and inputs (default: 0)")
    causal.add_argument("--device", type=torch_device, default="cpu", help="torch device (default: cpu)")
    add_json_flag(causal)
    causal.set_defaults(func=_bench_causal)
