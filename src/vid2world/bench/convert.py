"""`vid2world bench convert`: a full-size checkpoint end to end, with random weights in the real layout.

Writes a stand-in `model.ckpt` (every part of the preset, seeded random weights; in a child process, so its memory
is not counted), converts it, loads the world-model directory and rolls out one frame. Reports seconds per stage,
peak memory while converting (anonymous and file-backed apart) and file sizes: what a user with the real 10 GB file
can expect.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import resource
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..io.args import add_json_flag, positive_int, write_json
from ..io.resources import check_disk as check_free_disk
from ..models.config import ActionSpace


def _write(preset: str, path: str, seed: int) -> None:
    from ..checkpoints.registry import PRETRAINED
    from ..testing import random_parts, schedule_buffers, write_checkpoint

    config = PRETRAINED[preset]
    write_checkpoint(path, random_parts(config, seed=seed), schedule_buffers(config))


STAND_IN_DTYPE = torch.float32  # random_parts builds its modules in torch's default dtype


def _part_bytes(shapes: dict[str, tuple[int, ...]]) -> int:
    return sum(math.prod(shape) for shape in shapes.values()) * STAND_IN_DTYPE.itemsize


def disk_needed(preset: str, action_dim: int, checkpoint_exists: bool = False) -> dict[str, int]:
    """Bytes `convert_end_to_end` writes, from the preset's parameter counts: the stand-in checkpoint (every
    part; none when it is already there) and the world model (the UNet with its action layers, the VAE, the CLIP
    image tower and Resampler, and the empty prompt's text tokens in place of the text tower)."""
    from ..checkpoints.registry import PRETRAINED

    if preset not in PRETRAINED:  # a DynamiCrafter-layout checkpoint is what convert reads
        raise ValueError(f"unknown preset {preset!r}; available: {sorted(PRETRAINED)}")
    config = PRETRAINED[preset]
    checkpoint = 0 if checkpoint_exists else sum(_part_bytes(config.shapes(part)) for part in config.parts)
    world_unet = config.unet.replace(action_space=ActionSpace.continuous(action_dim))
    world_model = (_part_bytes(config.shapes("unet", world_unet))
                   + sum(_part_bytes(config.shapes(part)) for part in ("vae", "image_encoder", "image_proj"))
                   + 77 * config.image_proj.output_dim * STAND_IN_DTYPE.itemsize)  # the empty prompt's tokens
    return {"checkpoint": checkpoint, "world_model": world_model, "total": checkpoint + world_model}


def check_disk(directory: Path, preset: str, need: dict[str, int]) -> int:
    """Free bytes on `directory`'s disk; a ValueError naming both numbers when `need['total']` does not fit."""
    return check_free_disk(directory, need["total"], f"--dir {directory}: the {preset} stand-in checkpoint and "
                           "world model", "free space or choose a --dir on a larger disk")


class PeakMemory:
    """Peak anonymous and file-backed resident memory of this process while the block runs, sampled every 50 ms
    from /proc/self/status (Linux; zeros elsewhere). File-backed pages are the memory-mapped checkpoint: page cache
    the kernel can reclaim, which `ru_maxrss` counts as if it were not."""

    def __enter__(self) -> "PeakMemory":
        self.anon_gb = self.file_gb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while True:
            try:
                fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
                self.anon_gb = max(self.anon_gb, int(fields["RssAnon"].split()[0]) / 1e6)
                self.file_gb = max(self.file_gb, int(fields["RssFile"].split()[0]) / 1e6)
            except (OSError, KeyError, ValueError):
                return
            if self._stop.wait(0.05):
                return


def _converted_from(model_dir: Path, ckpt: Path) -> bool:
    """Whether `model_dir` is an earlier run's output of this benchmark (converted from its stand-in `ckpt`), which
    a new run may replace; anything else there is refused by `convert`."""
    try:
        source = json.loads((model_dir / "config.json").read_text())["metadata"]["source"]["path"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return Path(source).resolve() == ckpt.resolve()


def convert_end_to_end(preset: str = "dynamicrafter-512", directory: str | Path = "out/bench_convert",
                       action_dim: int = 13, size: int = 64, steps: int = 1, seed: int = 0) -> dict[str, Any]:
    from ..checkpoints.convert import ConvertOptions, convert
    from ..world.world_model import WorldModel

    directory = Path(directory)
    ckpt, out = directory / f"{preset}.ckpt", directory / f"{preset}-world-model"
    need = disk_needed(preset, action_dim, checkpoint_exists=ckpt.exists())
    free = check_disk(directory, preset, need)
    print(f"{preset}: needs about {need['total'] / 1e9:.2f} GB in {directory} (stand-in checkpoint "
          f"{need['checkpoint'] / 1e9:.2f} GB, world model {need['world_model'] / 1e9:.2f} GB); "
          f"{free / 1e9:.1f} GB free", flush=True)
    directory.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if not ckpt.exists():
        process = mp.get_context("spawn").Process(target=_write, args=(preset, str(ckpt), seed))
        process.start()
        process.join()
        if process.exitcode != 0:
            raise RuntimeError(f"writing the stand-in checkpoint {ckpt} failed (exit code {process.exitcode})")
    t1 = time.perf_counter()
    with PeakMemory() as memory:
        report = convert(ckpt, out, ConvertOptions(preset=preset, action_space=ActionSpace.continuous(action_dim)),
                         overwrite=_converted_from(out, ckpt))
    t2 = time.perf_counter()
    model = WorldModel.from_pretrained(out)
    t3 = time.perf_counter()
    frames = np.random.default_rng(seed).integers(0, 256, (1, 1, size, size, 3), dtype=np.uint8)
    actions = np.zeros((1, 1, action_dim), np.float32)
    generated = model.rollout(frames, actions, steps=steps, seed=seed)
    t4 = time.perf_counter()
    return {"preset": preset, "checkpoint": str(ckpt), "checkpoint_gb": ckpt.stat().st_size / 1e9,
            "world_model_gb": sum(p.stat().st_size for p in out.iterdir()) / 1e9,
            "parts": report.parts, "write_s": t1 - t0, "convert_s": t2 - t1, "load_s": t3 - t2,
            "rollout_s": t4 - t3, "rollout": {"size": size, "steps": steps, "shape": list(generated.shape)},
            "convert_peak_anon_gb": memory.anon_gb, "convert_peak_file_gb": memory.file_gb,
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
            "disk_needed_gb": need["total"] / 1e9}


def format_convert(r: dict[str, Any]) -> str:
    return (f"{r['preset']}: stand-in checkpoint {r['checkpoint_gb']:.2f} GB written in {r['write_s']:.0f} s; "
            f"converted in {r['convert_s']:.0f} s ({', '.join(f'{k} {v}' for k, v in r['parts'].items())} keys), "
            f"world model {r['world_model_gb']:.2f} GB loaded in {r['load_s']:.0f} s; one {r['rollout']['size']}px "
            f"frame in {r['rollout']['steps']} step(s): {r['rollout_s']:.0f} s -> {r['rollout']['shape']}; "
            f"converting: peak {r['convert_peak_anon_gb']:.1f} GB anonymous + {r['convert_peak_file_gb']:.1f} GB "
            f"file-backed (the mapped checkpoint); ru_maxrss {r['peak_rss_gb']:.1f} GB")


def _bench_convert(args: argparse.Namespace) -> int:
    result = convert_end_to_end(args.preset, args.dir, action_dim=args.action_dim, size=args.size, steps=args.steps)
    print(format_convert(result))
    write_json(args.json, result)
    return 0


def register(bench_sub) -> None:
    """The `bench convert` command."""
    bconv = bench_sub.add_parser("convert", help="a full-size stand-in checkpoint: write, convert, load, one frame")
    bconv.add_argument("--preset", default="dynamicrafter-512", help="pretrained layout (default: dynamicrafter-512)")
    bconv.add_argument("--dir", default="out/bench_convert", help="where the checkpoint and model go (about 20 GB at "
                       "full size; free space is checked first)")
    bconv.add_argument("--action-dim", type=positive_int, default=13,
                       help="continuous action width (default: 13, RT-1)")
    bconv.add_argument("--size", type=positive_int, default=64,
                       help="frame size of the one-frame rollout (default: 64)")
    bconv.add_argument("--steps", type=positive_int, default=1, help="denoising steps of that frame (default: 1)")
    add_json_flag(bconv)
    bconv.set_defaults(func=_bench_convert)
