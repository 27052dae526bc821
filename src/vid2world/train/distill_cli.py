"""`vid2world distill`: a few-step student of any world model, from a recorded dataset (train/distill.py).

    OUT/latents-<split>.npy   the dataset's frames encoded once by the teacher's codec (float16)
    OUT/state.pt              the run so far, every 50 steps: the command goes on from it when run again
    OUT/model/                the student (a world-model directory; distill.json: the losses, settings, time)
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import yaml

from ..data.clips import to_model_input
from ..data.store import open_dataset
from ..io.args import add_progress_flag
from ..io.atomic import absolute
from ..models.config import reject_unknown_fields
from ..world.bundled import load_model
from ..world.world_model import WorldModel
from .distill import DistillConfig, distill
from .latent_cache import cached_latents


def distill_config(path: str | None, overrides: Sequence[str]) -> DistillConfig:
    """The settings of a YAML file (keys of `DistillConfig`) with `key=value` overrides applied."""
    values: dict[str, Any] = {}
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(f"{file}: no such distillation config")
        try:
            values = yaml.safe_load(file.read_text()) or {}
        except yaml.YAMLError as err:
            raise ValueError(f"{file}: not valid YAML ({str(err).splitlines()[0]})") from None
        if not isinstance(values, dict):
            raise ValueError(f"{file}: expected a mapping of DistillConfig keys")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r}: expected key=value, e.g. steps=200")
        values[key] = yaml.safe_load(value)
    reject_unknown_fields(DistillConfig, values)
    return DistillConfig(**values)


def dataset_latents(model: WorldModel, root: str, split: str, cache: Path
                    ) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    """The latents ([T, C, h, w] per episode, encoded once into `cache`) and actions of a dataset's `split`
    (every episode when the dataset has no such split)."""
    ds = open_dataset(root)
    ids = ds.episodes_in(split)
    ids = ids if len(ids) else ds.episodes_in(None)
    episodes = [ds.episode(int(i)) for i in ids]
    if (model.action_dim is None) != (ds.meta.actions is None):
        raise ValueError(f"{root}: the dataset has {'no ' if ds.meta.actions is None else ''}actions, the teacher "
                         f"{'has none' if model.action_dim is None else f'takes {model.action_dim}'}")
    latents = cached_latents(cache, [np.array(e.frames) for e in episodes], lambda frames: model.codec.encode(
        to_model_input(torch.from_numpy(frames)[None]))[0].transpose(0, 1))
    actions = None if ds.meta.actions is None else [np.asarray(e.actions) for e in episodes]
    return latents, actions


def _distill(args: argparse.Namespace) -> int:
    config = distill_config(args.config, args.overrides)
    out = absolute(args.out)
    if (out / "model" / "distill.json").is_file():
        print(f"{out / 'model'}: already distilled (remove it to run again)")
        return 0
    teacher = load_model(args.teacher, args.device, "teacher")
    out.mkdir(parents=True, exist_ok=True)
    latents, actions = dataset_latents(teacher, args.data, args.split, out / f"latents-{args.split}.npy")
    student, losses, wall_s = distill(teacher, latents, actions, config, source=str(args.teacher),
                                      progress=not args.no_progress, state=out / "state.pt")
    # wall_s: the seconds of every part of a run that was stopped and went on, added up (train/distill.py)
    record = {"teacher": str(args.teacher), "data": str(args.data), "config": asdict(config),
              "wall_s": round(wall_s, 1), "loss": [round(x, 6) for x in losses]}
    student.save_pretrained(out / "model", {"distill.json": json.dumps(record, indent=1)})
    tail = float(np.mean(losses[-50:])) if losses else float("nan")
    print(f"distilled {len(losses)} steps (mean loss of the last 50: {tail:.5f}); student in {out / 'model'}")
    return 0


def register(sub) -> None:
    """The `distill` command."""
    p = sub.add_parser("distill", help="a few-step student of a world model (1-2 unguided steps)",
                       description="Distil a world model's sampling preset into a student that samples in 1-2 "
                       "unguided steps, e.g. `vid2world distill vizdoom-deathmatch --data DATASET --out OUT "
                       "--config configs/distill/vizdoom-1step.yaml`. Run again to go on after a stop.")
    p.add_argument("teacher", help="the teacher: a world-model directory or a bundled model's name")
    p.add_argument("--data", required=True, help="a recorded dataset of the teacher's game (vid2world data record)")
    p.add_argument("--out", required=True, help="output directory (the student in OUT/model)")
    p.add_argument("--config", default=None, help="YAML of distillation settings (train/distill.py DistillConfig)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting of the config, e.g. --set steps=200 (repeatable)")
    p.add_argument("--split", default="train", help="the dataset split to distil on (default: train)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    add_progress_flag(p)
    p.set_defaults(func=_distill)
