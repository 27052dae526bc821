"""How the training step's share of the bf16 matmul rate grows with the UNet's width (docs/performance.md, issue 15):

    python scripts/training_width_sweep.py                  # widths 64 96 128 192 256, eager, ~4 minutes
    python scripts/training_width_sweep.py 64 128 --compile  # compiled (a cold compile takes minutes per width)
    python scripts/training_width_sweep.py 96 128 --channel-mult 1,1   # two levels of equal width

Each width is `vid2world bench train --cached-latents --preset latent-small --channels C` on the bundled models'
step (8 clips x 8 frames of 16x16 latents, bf16, actions, no checkpointing). Matmul and convolution FLOPs grow with
the width squared, the normalisations, activations and copies with the width, so a wider UNet spends a larger share
of its step in the FLOP kernels. Its weights grow with the width squared too: the table says which widths fit the
zoo's limits (16 MiB per file, 40 MiB for every bundled file together) in fp16."""

from __future__ import annotations

import argparse

from vid2world.bench.train import BenchTrainConfig, bench_train
from vid2world.io.args import int_list

FILE_LIMIT_MIB, BUNDLE_LIMIT_MIB = 16, 40  # the zoo's limits (tests/test_zoo.py)


def _fits(mib: float) -> str:
    if mib <= FILE_LIMIT_MIB:
        return "yes"
    return "no: over 16 MiB per file" if mib <= BUNDLE_LIMIT_MIB else "no: over 40 MiB in all"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("widths", nargs="*", type=int, default=[64, 96, 128, 192, 256])
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--channel-mult", type=int_list, default=None, help="per-level multipliers (default: 1,2)")
    args = parser.parse_args()
    rows = []
    for width in args.widths:
        cfg = BenchTrainConfig(preset="latent-small", batch=8, frames=8, latent=(16, 16), precision="bf16",
                               checkpointing=False, steps=args.steps, warmup=2 + args.compile, action_dim=12,
                               cached_latents=True, compile=args.compile, channels=width,
                               channel_mult=None if args.channel_mult is None else tuple(args.channel_mult))
        r = bench_train(cfg, progress=False)
        rows.append(r)
        print(f"width {width}: step {r['step_s']:.3f} s, {r['fraction_of_matmul']['bf16']:.0%} of bf16", flush=True)
    base = rows[0]["step_s"]
    print(f"\nlevels: {tuple(rows[0]['levels'])}\n")
    print(f"| channels | parameters | fp16 | fits the zoo | step | vs {rows[0]['model_channels']} | GFLOP/step "
          "| achieved | bf16 matmul | fraction of bf16 | FLOP kernels / rest |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        share = r["profiled_step"]
        print(f"| {r['model_channels']} | {r['trainable_parameters'] / 1e6:.1f} M | {r['fp16_mib']:.1f} MiB "
              f"| {_fits(r['fp16_mib'])} | {r['step_s']:.3f} s | {r['step_s'] / base:.2f}x "
              f"| {r['flops_per_step'] / 1e9:.0f} | {r['achieved_gflops']:.0f} GFLOP/s "
              f"| {r['matmul_gflops']['bf16']:.0f} GFLOP/s | **{r['fraction_of_matmul']['bf16']:.0%}** "
              f"| {share['flop_kernels_s']:.3f} / {share['other_s']:.3f} s |")


if __name__ == "__main__":
    main()
