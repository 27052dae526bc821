"""Training checkpoints: everything a run needs to continue exactly, written by rank 0 only, atomically.

`OUT/checkpoints/step-00000100/` holds
- `model.safetensors`: the trainable module's weights (UNet, conditioner) in float32;
- `ema.safetensors` (with EMA): the shadow weights;
- `optimizer.pt`: the optimiser's state, and the fp16 gradient scaler's;
- `rng.pt`: per rank, the loss generator's and torch's global (and CUDA) random states;
- `trainer.json`, written last: the step, micro-batches consumed per rank (the data position), world size.
A directory is written under a temporary name and renamed; only complete ones are ever found by `latest`.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from ..io.atomic import AtomicDirectory

STEP_DIR = re.compile(r"^step-(\d{8})$")


@dataclass
class TrainerState:
    step: int = 0  # optimiser steps done
    micro_batches: int = 0  # batches each rank has drawn from its data stream
    world_size: int = 1
    mode: str = "world-model"


def step_dir(root: Path, step: int) -> Path:
    return root / f"step-{step:08d}"


def checkpoints(root: Path) -> list[Path]:
    """Complete checkpoint directories under `root`, oldest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if STEP_DIR.match(p.name) and (p / "trainer.json").is_file()]
    return sorted(found, key=lambda p: p.name)


def latest(root: Path) -> Path | None:
    found = checkpoints(root)
    return found[-1] if found else None


def save_checkpoint(root: Path, state: TrainerState, model_state: dict[str, Tensor], optimizer_state: dict[str, Any],
                    rng_states: list[dict[str, Any]], ema_state: dict[str, Tensor] | None, keep_last: int) -> Path:
    """Write one checkpoint atomically, then delete all but the newest `keep_last`."""
    # step directories are this run's own output: an existing one (incomplete, or of a rewound run) is replaced
    with AtomicDirectory(step_dir(root, state.step), overwrite=True) as tmp:
        save_file({k: v.detach().float().contiguous().cpu() for k, v in model_state.items()},
                  str(tmp.path / "model.safetensors"))
        if ema_state is not None:
            save_file({k: v.contiguous().cpu() for k, v in ema_state.items()}, str(tmp.path / "ema.safetensors"))
        torch.save(optimizer_state, tmp.path / "optimizer.pt")
        torch.save(rng_states, tmp.path / "rng.pt")
        (tmp.path / "trainer.json").write_text(json.dumps(asdict(state), indent=1))
    target = tmp.target
    for old in checkpoints(root)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return target


@dataclass
class LoadedCheckpoint:
    path: Path
    state: TrainerState
    model: dict[str, Tensor]
    optimizer: dict[str, Any]
    rng: list[dict[str, Any]]
    ema: dict[str, Tensor] | None


def load_checkpoint(path: Path) -> LoadedCheckpoint:
    """Read a checkpoint directory written by `save_checkpoint`; errors name the file."""
    trainer = path / "trainer.json"
    try:
        state = TrainerState(**json.loads(trainer.read_text()))
    except (OSError, json.JSONDecodeError, TypeError) as err:
        raise ValueError(f"{trainer}: not a trainer state ({err})") from None
    try:
        model = load_file(str(path / "model.safetensors"))
        ema = load_file(str(path / "ema.safetensors")) if (path / "ema.safetensors").is_file() else None
        # our own files: tensors, numbers and RNG byte tensors only
        optimizer = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True)
        rng = torch.load(path / "rng.pt", map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path}: cannot read checkpoint ({err})") from None
    return LoadedCheckpoint(path, state, model, optimizer, rng, ema)


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """This process's random state: the loss generator's, torch's global, and CUDA's when present."""
    out: dict[str, Any] = {"generator": generator.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state()
    return out


def set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
