"""A run's directory: what it holds, and the checks that keep a run from mixing with another one.

    OUT/config.yaml         the resolved config the run started with
    OUT/checkpoints/        step-XXXXXXXX/ (train.checkpoint), the newest `log.keep_last`
    OUT/metrics.jsonl       one line of scalars per `log.every` steps; OUT/tensorboard/ the same for TensorBoard
    OUT/samples/            step-XXXXXXXX.mp4 / .gif sample rollouts
    OUT/model/              the exported world model (`WorldModel.from_pretrained`), written at the end
    OUT/summary.json        steps, final loss, and every rank's weight digest (DDP keeps them identical)
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import torch
from omegaconf import OmegaConf

from ..io.atomic import remove_stale_temporaries
from ..io.outputs import OutputDirectory
from .checkpoint import latest
from .config import ConfigError, TrainConfig, save_config

# what a run writes at its top level (module doc)
RUN_ENTRIES = ("config.yaml", "checkpoints", "metrics.jsonl", "tensorboard", "samples", "model", "summary.json")
# keys a resumed run may change: how long it runs and how it reports; everything else must match
RESUMABLE_CHANGES = ("train.steps", "log.", "data.workers")
# what a run writes through vid2world.io.atomic, by folder: their temporaries are the run's own kind
RUN_OUTPUTS = {".": re.compile(r"model|summary\.json|metrics\.jsonl|config\.yaml"),
               "checkpoints": re.compile(r"step-\d{8}"), "samples": re.compile(r"step-\d{8}\.(mp4|gif)")}


def flat(d: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in d.items():
        if isinstance(value, dict) and key != "unet":
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def prepare_run_dir(config: TrainConfig, resume: bool, is_main: bool) -> Path | None:
    """Check `config.out` for a new run (no checkpoints there) or a resumed one (checkpoints, same config apart
    from `RESUMABLE_CHANGES`); return the checkpoint to resume from. Rank 0 writes `config.yaml`."""
    out = Path(config.out)
    found = latest(out / "checkpoints")
    if not resume:
        if found is not None:
            raise ConfigError(f"{out}: holds checkpoints of an earlier run (newest {found.name}); pass --resume to "
                              "continue it, or choose another out=")
        if is_main:
            claim_run_dir(out)
            remove_stale_outputs(out)
            save_config(config, out / "config.yaml")
        return None
    if found is None:
        raise ConfigError(f"{out}: --resume, but there is no checkpoint under {out / 'checkpoints'}")
    if is_main:
        claim_run_dir(out)
    saved_path = out / "config.yaml"
    if saved_path.is_file():
        saved = flat(OmegaConf.to_container(OmegaConf.load(saved_path)))
        now = flat(config.to_dict())
        changed = [k for k in sorted(set(saved) | set(now)) if saved.get(k) != now.get(k)
                   and not any(k == c or (c.endswith(".") and k.startswith(c)) for c in RESUMABLE_CHANGES)]
        if changed:
            diffs = ", ".join(f"{k}: {saved.get(k)!r} -> {now.get(k)!r}" for k in changed[:4])
            raise ConfigError(f"{saved_path}: --resume with a different config ({diffs}); only "
                              f"{', '.join(RESUMABLE_CHANGES)} may change")
    if is_main:
        remove_stale_outputs(out)
        save_config(config, saved_path)
    return found


def claim_run_dir(out: Path) -> OutputDirectory:
    """`out` as a directory of this run's outputs: new, empty or an earlier run's (a run written before runs were
    recorded is known by its checkpoints); a file of the user's there under a run's name is refused, not replaced."""
    directory = OutputDirectory(out, "train", flag="out=",
                                legacy=lambda path: latest(path / "checkpoints") is not None)
    directory.files(RUN_ENTRIES)
    return directory


def remove_stale_outputs(out: Path) -> list[Path]:
    """Remove what a killed run left half-written in `out` (temporaries of the run's own outputs whose process is
    gone: a checkpoint, the exported model, a sample), and say so."""
    removed = [path for folder, names in RUN_OUTPUTS.items() for path in remove_stale_temporaries(out / folder, names)]
    for path in removed:
        print(f"removed {path}: left half-written by an interrupted run", flush=True)
    return removed


def new_directories(path: Path) -> Path | None:
    """The outermost directory that writing `path` would create (None when `path` exists already)."""
    path = path.absolute()
    if path.exists():
        return None
    while not path.parent.exists():
        path = path.parent
    return path


def weights_digest(module: torch.nn.Module) -> str:
    """SHA-1 over every parameter's bytes, in name order: equal digests mean bit-equal weights."""
    h = hashlib.sha1()
    for name, p in sorted(module.state_dict().items()):
        local = p.to_local() if hasattr(p, "to_local") else p  # FSDP's DTensor shards: this rank's part
        h.update(name.encode())
        h.update(local.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
