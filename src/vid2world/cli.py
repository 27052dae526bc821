"""vid2world: turn pretrained video diffusion models into interactive world models.

The command line: argument parsing only; the work lives in the packages.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Sequence


def _write_json(path: str | None, result: dict) -> None:
    """Write a result for machines too, when --json asked for it."""
    if path:
        from .io.atomic import write_text

        write_text(path, json.dumps(result, indent=1))
        print(f"\nwrote {path}")


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo
    from .causal.study import format_study

    paths = run_demo(args.out, device=args.device, train_steps=args.train_steps, progress=not args.no_progress)
    print(format_study(json.loads(paths["json"].read_text())))
    report = json.loads(paths["report"].read_text())
    print(f"\nsquare world: 16-frame rollouts from one frame, PSNR {report['psnr']:.2f} dB following the actions, "
          f"{report['psnr_other_actions']:.2f} dB with another episode's actions")
    print(f"wrote {paths['picture']}, {paths['video']}, {paths['model']}/, {paths['report']}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from .train.config import load_config
    from .train.trainer import TrainingStopped, train

    config = load_config(args.config, args.overrides)
    try:
        result = train(config, resume=args.resume, progress=not args.no_progress)
    except TrainingStopped as stopped:  # Ctrl-C: one line, and the conventional status of a SIGINT exit
        newline = "\n" if sys.stderr.isatty() else ""  # past the progress bar and the terminal's ^C
        print(f"{newline}vid2world train: {stopped}", file=sys.stderr)
        return 130
    if result.model_dir:
        loss = "n/a" if result.last_loss is None else f"{result.last_loss:.5f}"
        print(f"trained {result.steps} steps (last logged loss {loss}); world model in {result.model_dir}, "
              f"checkpoints in {result.out}/checkpoints")
    return 0


def _bench_causal(args: argparse.Namespace) -> int:
    from .causal.study import format_study, run_study

    result = run_study(preset=args.preset, frames=args.frames, size=args.size, seed=args.seed,
                       leak_at=args.leak_at, device=args.device)
    print(format_study(result))
    _write_json(args.json, result)
    return 0


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {value}")
    return value


def _positive_int(text: str) -> int:
    """argparse type for counts, sizes and steps: an integer >= 1."""
    return _int_at_least(text, 1)


def _non_negative_int(text: str) -> int:
    """argparse type for seeds, warm-up steps, worker counts and the like: an integer >= 0."""
    return _int_at_least(text, 0)


def _ints(text: str) -> list[int]:
    """argparse type: comma-separated integers >= 1, at least one."""
    values = [_positive_int(v) for v in text.split(",") if v.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 1, got {text!r}")
    return values


def _floats(text: str) -> list[float]:
    """argparse type: comma-separated finite numbers, at least one."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated finite numbers, got {text!r}")
    return values


def _device(text: str) -> str:
    """argparse type of every --device: a torch device that this machine and this torch build have."""
    if text == "cpu":
        return text
    import torch

    try:
        device = torch.device(text)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        raise argparse.ArgumentTypeError(f"expected a torch device such as cpu, cuda, cuda:1 or mps, got {text!r}")
    if device.type == "cuda":
        if torch.version.cuda is None and torch.version.hip is None:
            raise argparse.ArgumentTypeError(
                f"{text}: this torch build ({torch.__version__}) has no CUDA; install one built for your CUDA "
                "version from the PyTorch index, e.g. pip install torch --index-url "
                "https://download.pytorch.org/whl/cu124 (see https://pytorch.org/get-started/locally/), or use cpu")
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise argparse.ArgumentTypeError(f"{text}: torch {torch.__version__} has CUDA, but no GPU is visible "
                                             "(check nvidia-smi, the driver and CUDA_VISIBLE_DEVICES), or use cpu")
        if (device.index or 0) >= count:
            raise argparse.ArgumentTypeError(f"{text}: only {count} GPU(s) visible, cuda:0 to cuda:{count - 1}")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"{text}: MPS is not available here (Apple-silicon Macs only); use cpu")
    return text


def _bench_rollout(args: argparse.Namespace) -> int:
    from .world.bench import format_bench, run_bench

    caches = {"on": [True], "off": [False], "both": [True, False]}[args.cache]
    if args.model and (args.preset or args.norm):
        raise ValueError(f"--model {args.model} has its own architecture and norm; give --model or --preset/--norm, "
                         "not both")
    result = run_bench(preset=args.preset or "tiny", size=args.size, histories=args.histories, steps=args.steps,
                       guidances=args.guidance, caches=caches, batch=args.batch, repeats=args.repeats,
                       norm=args.norm or "frame", device=args.device, dtype=args.dtype, model_dir=args.model)
    print(format_bench(result))
    _write_json(args.json, result)
    return 0


def _bench_cache(args: argparse.Namespace) -> int:
    from .world.bench import cache_exactness, format_exactness

    result = cache_exactness(frames=args.frames, steps=args.steps, size=args.size, seed=args.seed, model_dir=args.model)
    print(format_exactness(result))
    _write_json(args.json, result)
    return 0


def _size(text: str) -> tuple[int, int]:
    """'64' -> (64, 64); '150x280' -> (150, 280)."""
    parts = text.lower().split("x")
    try:
        h, w = (int(parts[0]), int(parts[0])) if len(parts) == 1 else (int(parts[0]), int(parts[1]))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size like 64 or 150x280, got {text!r}") from None
    if h < 1 or w < 1 or len(parts) > 2:
        raise argparse.ArgumentTypeError(f"expected a size like 64 or 150x280 (positive), got {text!r}")
    return h, w


def _data_record(args: argparse.Namespace) -> int:
    from .data.record import RecordConfig, record_dataset

    cfg = RecordConfig(env=args.env, episodes=args.episodes, steps=args.steps, policy=args.policy, size=args.size,
                       seed=args.seed, actions=not args.no_actions, val_episodes=args.val_episodes,
                       workers=args.workers)
    dataset = record_dataset(cfg, args.out, progress=not args.no_progress)
    print(f"wrote {dataset.root}: {len(dataset)} episodes, {dataset.num_frames} frames, "
          f"{dataset.meta.action_dim}-d actions")
    return 0


def _data_convert(args: argparse.Namespace) -> int:
    from .data.importers import FORMATS

    options = {"size": args.size, "skip_bad": args.skip_bad, "progress": not args.no_progress}
    if args.format == "rlds":
        options["split"] = args.rlds_split
    else:
        options["split_file"] = args.split_file
    dataset, report = FORMATS[args.format](args.src, args.out, **options)
    print(report.summary())
    print(f"wrote {dataset.root}: {len(dataset)} episodes, {dataset.num_frames} frames")
    return 0


def _data_info(args: argparse.Namespace) -> int:
    from .data.inspect import dataset_info, format_info
    from .data.store import open_dataset

    info = dataset_info(open_dataset(args.dir))
    print(format_info(info))
    _write_json(args.json, info)
    return 0


def _data_preview(args: argparse.Namespace) -> int:
    from .data.inspect import write_preview
    from .data.store import open_dataset

    out = args.out or str(args.dir).rstrip("/") + "_preview.mp4"
    path = write_preview(open_dataset(args.dir), out, episodes=args.episodes, frames=args.frames, scale=args.scale,
                         seed=args.seed)
    print(f"wrote {path}")
    return 0


def _bench_loader(args: argparse.Namespace) -> int:
    from .data.bench import loader_throughput

    result = loader_throughput(args.data, length=args.length, batch=args.batch, workers=args.workers,
                               batches=args.batches, size=args.size, augment=not args.no_augment)
    print(f"{result['clips_per_s']:.1f} clips/s ({result['clips']} clips of {result['length']} frames at "
          f"{result['size'][0]}x{result['size'][1]}, batch {result['batch']}, {result['workers']} workers, "
          f"augment {result['augment']}; {result['skipped_short']} episodes shorter than a clip skipped)")
    _write_json(args.json, result)
    return 0


def _bench_train(args: argparse.Namespace) -> int:
    from .train.bench import BenchTrainConfig, bench_train, format_bench_train

    cfg = BenchTrainConfig(preset=args.preset, batch=args.batch, frames=args.frames, latent=args.latent,
                           precision=args.precision, checkpointing=args.checkpointing, steps=args.steps,
                           warmup=args.warmup, action_dim=args.action_dim)
    result = bench_train(cfg, progress=not args.no_progress)
    print(format_bench_train(result))
    _write_json(args.json, result)
    return 0


def _bench_convert(args: argparse.Namespace) -> int:
    from .world.bench_convert import convert_end_to_end, format_convert

    result = convert_end_to_end(args.preset, args.dir, action_dim=args.action_dim, size=args.size, steps=args.steps)
    print(format_convert(result))
    _write_json(args.json, result)
    return 0


def _bench_index(args: argparse.Namespace) -> int:
    from .data.bench import index_scale

    r = index_scale(episodes=args.episodes, length=args.length)
    print(f"{r['episodes']} episodes of {r['length']} frames: written in {r['write_s']:.2f} s, opened in "
          f"{1000 * r['open_s']:.0f} ms ({r['index_bytes'] / 1e6:.1f} MB index), {r['fetch_us']:.0f} us per clip")
    _write_json(args.json, r)
    return 0


def _action_space(args: argparse.Namespace):
    """--action-dim A (continuous) or --action-space continuous:A | discrete:K (multi-hot)."""
    from .models.config import ActionSpace

    if args.action_dim is not None and args.action_space is not None:
        raise ValueError("give --action-dim or --action-space, not both")
    if args.action_dim is not None:
        return ActionSpace.continuous(args.action_dim)
    if args.action_space is None:
        return None
    kind, _, width = args.action_space.partition(":")
    kinds = {"continuous": ActionSpace.continuous, "discrete": ActionSpace.multi_hot,
             "multi_hot": ActionSpace.multi_hot}
    if kind not in kinds or not width.isdigit():
        raise ValueError(f"--action-space: expected continuous:A or discrete:K (multi-hot over K), got "
                         f"{args.action_space!r}")
    return kinds[kind](int(width))


def _convert(args: argparse.Namespace) -> int:
    from .world.convert import ConvertOptions, convert, load_unet_config

    unet_config, schedule = load_unet_config(args.unet_config) if args.unet_config else (None, None)
    options = ConvertOptions(preset=args.preset, transfer=args.transfer, norm=args.norm,
                             action_space=_action_space(args), official=args.official,
                             out_conv_height_causal=args.out_conv_height_causal, fps=args.fps, seed=args.seed,
                             trust_pickle=args.trust_pickle, unet_config=unet_config, schedule=schedule)
    report = convert(args.base, args.out, options, overwrite=args.overwrite)
    print(report.summary())
    print(f"wrote {args.out}/ (load it with vid2world.WorldModel.from_pretrained)")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from .world.inspect import format_inspection, inspect_checkpoint

    info = inspect_checkpoint(args.file, trust_pickle=args.trust_pickle)
    print(format_inspection(info))
    _write_json(args.json, info)
    return 0


def _add_progress_flag(parser: argparse.ArgumentParser) -> None:
    """The one --no-progress of every command that reports progress (a bar on a terminal, plain lines in logs)."""
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress output (a bar on a terminal, a line every ~10%% in logs otherwise)")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="vid2world", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"vid2world {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="the main job on the bundled model, offline")
    demo.add_argument("--out", default="out/demo", help="directory for the demo's outputs (default: out/demo)")
    demo.add_argument("--device", type=_device, default="cpu",
                      help="torch device, e.g. cpu, cuda, cuda:1 (default: cpu)")
    demo.add_argument("--train-steps", type=_positive_int, default=320,
                      help="training steps of the square-world model when OUT has none yet (default: 320)")
    _add_progress_flag(demo)
    demo.set_defaults(func=_demo)

    conv = sub.add_parser("convert", help="a pretrained video model (or a released Vid2World one) into a world model")
    conv.add_argument("--base", required=True, help="checkpoint: DynamiCrafter model.ckpt, released Vid2World, or a "
                      "UNet-only state dict (.ckpt/.pt/.safetensors)")
    conv.add_argument("--preset", default="dynamicrafter-512",
                      help="architecture of the file: dynamicrafter-256|512|1024, tiny (default: dynamicrafter-512)")
    conv.add_argument("--unet-config", default=None, help="JSON UNet architecture for a UNet-only file that matches "
                      "no preset (a UNetConfig, or a world-model config.json)")
    conv.add_argument("--transfer", default="extrapolative", choices=["extrapolative", "masked", "shift"],
                      help="causal temporal-conv weight transfer (default: extrapolative)")
    conv.add_argument("--norm", default=None, choices=["frame", "causal", "clip"],
                      help="temporal GroupNorm mode (default: frame; clip with --official)")
    conv.add_argument("--action-dim", type=_positive_int, default=None, help="continuous actions of this width")
    conv.add_argument("--action-space", default=None, help="continuous:A or discrete:K (multi-hot over K, CS:GO: 51)")
    conv.add_argument("--official", action="store_true",
                      help="a released Vid2World checkpoint: no transfer, official quirks kept")
    conv.add_argument("--out-conv-height-causal", action=argparse.BooleanOptionalAction, default=None,
                      help="the official height-causal output conv (default: on with --official, off otherwise)")
    conv.add_argument("--fps", type=_positive_int, default=3, help="frame-rate condition (Vid2World: 3)")
    conv.add_argument("--seed", type=_non_negative_int, default=0, help="initialisation of new action layers")
    conv.add_argument("--trust-pickle", action="store_true",
                      help="unpickle arbitrary objects in the file (only for files you trust)")
    conv.add_argument("--out", required=True, help="world-model directory to write (atomically): new or empty")
    conv.add_argument("--overwrite", action="store_true", help="replace the world model already in --out")
    conv.set_defaults(func=_convert)

    insp = sub.add_parser("inspect", help="what a checkpoint file or a world-model directory holds: format, preset, "
                          "parts, actions, dtype")
    insp.add_argument("file", help="a checkpoint file, or a world-model directory (convert's output)")
    insp.add_argument("--trust-pickle", action="store_true", help="unpickle arbitrary objects (trusted files only)")
    insp.add_argument("--json", default=None, help="also write the result as JSON to this path")
    insp.set_defaults(func=_inspect)

    train = sub.add_parser("train", help="pretrain a video model or fine-tune a world model (YAML config)",
                           description="Train from a YAML config with key=value overrides, e.g. `vid2world train "
                           "configs/tiny.yaml data.path=data/doom train.steps=200`. Several processes: launch with "
                           "`torchrun --nproc_per_node N -m vid2world.cli train ...` or `accelerate launch`.")
    train.add_argument("config", help="YAML config (see configs/ and docs/training.md)")
    train.add_argument("overrides", nargs="*", help="key=value overrides of config keys, e.g. train.steps=100")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in the config's out directory from its newest checkpoint, exactly")
    _add_progress_flag(train)
    train.set_defaults(func=_train)

    bench = sub.add_parser("bench", help="measurements, as tables and JSON")
    bench_sub = bench.add_subparsers(dest="bench", required=True)
    causal = bench_sub.add_parser("causal", help="future leak and feature preservation of every transfer x norm")
    causal.add_argument("--preset", default="tiny", help="UNet preset (default: tiny; random stand-in weights)")
    causal.add_argument("--frames", type=_positive_int, default=8, help="clip length (default: 8)")
    causal.add_argument("--size", type=_positive_int, default=16, help="latent height and width (default: 16)")
    causal.add_argument("--leak-at", type=_non_negative_int, default=3,
                        help="perturb the frames after this one (default: 3)")
    causal.add_argument("--seed", type=_non_negative_int, default=0, help="seed of the weights and inputs (default: 0)")
    causal.add_argument("--device", type=_device, default="cpu", help="torch device (default: cpu)")
    causal.add_argument("--json", help="also write the result to this JSON file")
    causal.set_defaults(func=_bench_causal)

    rollout = bench_sub.add_parser("rollout", help="per-frame latency vs history: cached/recompute, guided/unguided")
    rollout.add_argument("--preset", default=None, help="UNet preset with random weights (default: tiny, pixel "
                         "space; dynamicrafter-*: 4-channel latents)")
    rollout.add_argument("--model", default=None, help="a world-model directory (from `vid2world convert` or "
                         "training) to time instead of a random preset")
    rollout.add_argument("--size", type=_positive_int, default=16, help="latent height and width (default: 16)")
    rollout.add_argument("--histories", type=_ints, default="1,3,7,15",
                         help="history lengths, comma-separated (default: 1,3,7,15)")
    rollout.add_argument("--steps", type=_ints, default="10",
                         help="denoising steps per frame, comma-separated (default: 10)")
    rollout.add_argument("--guidance", type=_floats, default="1,2.5",
                         help="guidance scales, comma-separated; 1 = off (default: 1,2.5)")
    rollout.add_argument("--cache", choices=["on", "off", "both"], default="both", help="KV cache (default: both)")
    rollout.add_argument("--norm", default=None, choices=["frame", "causal"],
                         help="temporal norm mode of the random model (default: frame)")
    rollout.add_argument("--batch", type=_positive_int, default=1, help="rollouts in parallel (default: 1)")
    rollout.add_argument("--repeats", type=_positive_int, default=3,
                         help="timed frames per cell, median reported (default: 3)")
    rollout.add_argument("--device", type=_device, default="cpu", help="torch device (default: cpu)")
    rollout.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"], help="weights dtype")
    rollout.add_argument("--json", help="also write the result to this JSON file")
    rollout.set_defaults(func=_bench_rollout)

    cache = bench_sub.add_parser("cache", help="cached vs recomputed rollouts: largest difference per norm mode")
    cache.add_argument("--frames", type=_positive_int, default=16,
                       help="rollout length incl. the context frame (default: 16)")
    cache.add_argument("--steps", type=_positive_int, default=10, help="denoising steps per frame (default: 10)")
    cache.add_argument("--size", type=_positive_int, default=16, help="frame height and width (default: 16)")
    cache.add_argument("--seed", type=_non_negative_int, default=0, help="seed (default: 0)")
    cache.add_argument("--model", default=None, help="a world-model directory (from `vid2world convert` or "
                       "training) to measure instead of random models in every norm mode")
    cache.add_argument("--json", help="also write the result to this JSON file")
    cache.set_defaults(func=_bench_cache)

    bconv = bench_sub.add_parser("convert", help="a full-size stand-in checkpoint: write, convert, load, one frame")
    bconv.add_argument("--preset", default="dynamicrafter-512", help="pretrained layout (default: dynamicrafter-512)")
    bconv.add_argument("--dir", default="out/bench_convert", help="where the checkpoint and model go (about 20 GB at "
                       "full size; free space is checked first)")
    bconv.add_argument("--action-dim", type=_positive_int, default=13,
                       help="continuous action width (default: 13, RT-1)")
    bconv.add_argument("--size", type=_positive_int, default=64,
                       help="frame size of the one-frame rollout (default: 64)")
    bconv.add_argument("--steps", type=_positive_int, default=1, help="denoising steps of that frame (default: 1)")
    bconv.add_argument("--json", help="also write the result to this JSON file")
    bconv.set_defaults(func=_bench_convert)

    btrain = bench_sub.add_parser("train", help="training step time and peak memory (random weights, synthetic clips)")
    btrain.add_argument("--preset", default="dynamicrafter-512", help="model preset (default: dynamicrafter-512)")
    btrain.add_argument("--batch", type=_positive_int, default=2, help="clips per step (default: 2)")
    btrain.add_argument("--frames", type=_positive_int, default=16, help="frames per clip (default: 16)")
    btrain.add_argument("--latent", type=_size, default=(40, 64),
                        help="latent HxW; frames are 8x that for latent presets (default: 40x64, i.e. 320x512)")
    btrain.add_argument("--precision", default="bf16", choices=["fp32", "bf16", "fp16"], help="(default: bf16)")
    btrain.add_argument("--checkpointing", action=argparse.BooleanOptionalAction, default=True,
                        help="gradient checkpointing (default: on)")
    btrain.add_argument("--steps", type=_positive_int, default=6, help="optimiser steps (default: 6)")
    btrain.add_argument("--warmup", type=_non_negative_int, default=2, help="steps left out of the timing (default: 2)")
    btrain.add_argument("--action-dim", type=_positive_int, default=13,
                        help="continuous action width (default: 13, RT-1)")
    _add_progress_flag(btrain)
    btrain.add_argument("--json", help="also write the result to this JSON file")
    btrain.set_defaults(func=_bench_train)

    loader = bench_sub.add_parser("loader", help="clip-loader throughput in clips/s")
    loader.add_argument("--data", required=True, help="dataset directory")
    loader.add_argument("--length", type=_positive_int, default=16, help="frames per clip (default: 16)")
    loader.add_argument("--batch", type=_positive_int, default=8, help="clips per batch (default: 8)")
    loader.add_argument("--workers", type=_non_negative_int, default=2, help="DataLoader worker processes (default: 2)")
    loader.add_argument("--batches", type=_positive_int, default=50, help="timed batches (default: 50)")
    loader.add_argument("--size", type=_size, help="resize clips to this size, e.g. 64 or 320x512")
    loader.add_argument("--no-augment", action="store_true", help="skip colour jitter and shift")
    loader.add_argument("--json", help="also write the result to this JSON file")
    loader.set_defaults(func=_bench_loader)

    index = bench_sub.add_parser("index", help="dataset index at scale: write, open and fetch with many episodes")
    index.add_argument("--episodes", type=_positive_int, default=100_000, help="episodes (default: 100000)")
    index.add_argument("--length", type=_positive_int, default=20,
                       help="frames per episode, 8 x 8 pixels (default: 20)")
    index.add_argument("--json", help="also write the result to this JSON file")
    index.set_defaults(func=_bench_index)

    data = sub.add_parser("data", help="record, import and look at datasets")
    data_sub = data.add_subparsers(dest="data", required=True)
    record = data_sub.add_parser("record", help="simulator episodes into a dataset (offline)")
    record.add_argument("--env", required=True,
                        help="vizdoom:<scenario> (deathmatch, my_way_home, health_gathering, defend_the_center, ...), "
                             "atari:<Game> (any ALE game, e.g. atari:Breakout), or crafter")
    record.add_argument("--episodes", type=_positive_int, required=True, help="number of episodes")
    record.add_argument("--steps", type=_positive_int, default=200,
                        help="frames per episode; fewer if the game ends (200)")
    record.add_argument("--policy", choices=["random", "scripted"], default="scripted",
                        help="random: a new uniform action every step; scripted: purposeful actions held for "
                             "several steps (default)")
    record.add_argument("--size", type=_positive_int, default=64, help="frame height and width in pixels (default: 64)")
    record.add_argument("--seed", type=_non_negative_int, default=0,
                        help="the same seed gives the same episodes (default: 0)")
    record.add_argument("--workers", type=_positive_int, default=1, help="recording processes (default: 1)")
    record.add_argument("--val-episodes", type=_non_negative_int, default=0,
                        help="the last K episodes form split 'val' (0)")
    record.add_argument("--no-actions", action="store_true", help="store video only (for passive pretraining)")
    record.add_argument("--out", required=True, help="dataset directory to create (must not exist)")
    _add_progress_flag(record)
    record.set_defaults(func=_data_record)

    convert = data_sub.add_parser("convert", help="RT-1 / CS:GO / RECON into a dataset")
    convert.add_argument("--format", required=True, choices=["rt1", "rlds", "csgo", "recon"],
                         help="rt1: official npz files (image, action); rlds: an RLDS/TFDS builder directory (needs "
                              "the rlds extra); csgo: DIAMOND's HDF5 files; recon: NoMaD trajectory folders")
    convert.add_argument("--src", required=True, help="source directory")
    convert.add_argument("--out", required=True, help="dataset directory to create (must not exist)")
    convert.add_argument("--size", type=_size, help="resize frames to HxW while importing (default: keep)")
    convert.add_argument("--split-file", help="held-out names (DIAMOND test_split.txt, NoMaD traj_names.txt, or a "
                                              "JSON list): those episodes get split 'test'")
    convert.add_argument("--rlds-split", default="train", help="rlds: the TFDS split to read (default: train)")
    convert.add_argument("--skip-bad", action="store_true",
                         help="skip unreadable source files and list them in the summary (default: stop at the first)")
    _add_progress_flag(convert)
    convert.set_defaults(func=_data_convert)

    info = data_sub.add_parser("info", help="counts, lengths and action statistics")
    info.add_argument("dir", help="dataset directory")
    info.add_argument("--json", help="also write the result to this JSON file")
    info.set_defaults(func=_data_info)

    preview = data_sub.add_parser("preview", help="an mp4 or GIF grid of episodes with their actions written on")
    preview.add_argument("dir", help="dataset directory")
    preview.add_argument("--out", help="output .mp4 or .gif (default: DIR_preview.mp4)")
    preview.add_argument("--episodes", type=_positive_int, default=4, help="episodes in the grid (default: 4)")
    preview.add_argument("--frames", type=_positive_int, default=64, help="frames shown (default: 64)")
    preview.add_argument("--scale", type=_positive_int, default=2, help="pixel upscaling (default: 2)")
    preview.add_argument("--seed", type=_non_negative_int, default=0, help="which episodes (default: 0)")
    preview.set_defaults(func=_data_preview)
    return parser


# The library's messages name its keywords ("pass trust_pickle=True"); the command line names its flags instead.
_FLAGS_FOR_KEYWORDS = {"trust_pickle=True": "--trust-pickle", "skip_bad=True": "--skip-bad",
                       "overwrite=True": "--overwrite"}


def _cli_wording(message: str) -> str:
    """An error message as the command line says it: its flags where the library names a keyword argument."""
    for keyword, flag in _FLAGS_FOR_KEYWORDS.items():
        message = message.replace(f"pass {keyword}", f"pass {flag}")
    return message


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors that are the input's fault: one line and exit status 2, no traceback."""
    errors: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, FileExistsError)
    trainer = sys.modules.get("vid2world.train.trainer")
    return errors + ((trainer.TrainingError,) if trainer else ())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "train":  # key=value overrides may follow flags: `train c.yaml --resume train.steps=9`
        args.overrides += [e for e in extra if "=" in e and not e.startswith("-")]
        extra = [e for e in extra if e not in args.overrides]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args)
    except _user_errors() as err:
        print(f"vid2world {args.command}: error: {_cli_wording(str(err))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `vid2world ... | head` closed its end: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush cannot fail again
        return 141


if __name__ == "__main__":
    sys.exit(main())
