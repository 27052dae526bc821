"""Reading checkpoint files safely, whatever wrote them, and splitting DynamiCrafter's into its parts.

Formats: a Lightning `.ckpt` (the weights under `state_dict`), a bare state dict saved by `torch.save`, DeepSpeed
(`module` inside, or keys prefixed `module.`), and safetensors. Pickled files are read with
`torch.load(weights_only=True)`: tensors and plain containers only, never arbitrary objects, unless the caller
passes `trust_pickle=True` for a file it trusts.
"""

from __future__ import annotations

import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import torch
from torch import Tensor

from ..causal.keys import UNET_PREFIX, legacy_renamed

# DynamiCrafter's LatentDiffusion children, by state-dict prefix
PARTS = {"unet": UNET_PREFIX, "vae": "first_stage_model.", "text_encoder": "cond_stage_model.",
         "image_encoder": "embedder.", "image_proj": "image_proj_model."}


ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default format is a zip archive
PICKLE_PROTO = b"\x80"  # torch.save's legacy format is a pickle: its first opcode names the protocol
FORMATS_READ = ("a Lightning/PyTorch checkpoint written by torch.save (.ckpt, .pt, .pth; a zip or legacy pickle), "
                "a DeepSpeed state dict, or a .safetensors file")


class CheckpointError(ValueError):
    """A file that is not a readable checkpoint; the message names the file (and the key, where one is at fault)."""


@dataclass
class Checkpoint:
    path: Path
    format: str  # "lightning" | "state_dict" | "deepspeed" | "safetensors"
    state_dict: dict[str, Tensor]
    renamed: dict[str, str] = field(default_factory=dict)  # old key -> new key

    def parts(self) -> dict[str, dict[str, Tensor]]:
        """{'unet': ..., 'vae': ..., 'text_encoder': ..., 'image_encoder': ..., 'image_proj': ..., 'other': ...},
        each without its prefix; parts the file lacks are absent."""
        out: dict[str, dict[str, Tensor]] = {}
        for key, value in self.state_dict.items():
            part = next((name for name, prefix in PARTS.items() if key.startswith(prefix)), "other")
            short = key[len(PARTS[part]):] if part != "other" else key
            out.setdefault(part, {})[short] = value
        return out


def read_checkpoint(path: str | Path, trust_pickle: bool = False) -> Checkpoint:
    """Read any supported checkpoint file into a flat state dict of tensors."""
    path = Path(path)
    check_checkpoint_file(path)
    kind = _sniff(path)
    if path.suffix == ".safetensors" or kind == "safetensors":
        return Checkpoint(path, "safetensors", *_renamed(_read_safetensors(path)))
    if kind not in ("zip", "pickle"):
        raise CheckpointError(f"{path}: not a checkpoint ({kind}); expected {FORMATS_READ}")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=not trust_pickle, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as err:
        detail = next((line.strip() for line in str(err).splitlines() if "Unsupported global" in line), None)
        if detail:
            raise CheckpointError(f"{path}: holds Python objects other than tensors, so it was not unpickled "
                                  f"({detail}); if you trust the file, pass trust_pickle=True") from err
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        # torch wraps the unpickler's reason ("Unsupported operand 103") in paragraphs about weights_only
        reason = next((line for line in lines if line.startswith("Unsupported")), lines[0] if lines else "")
        raise CheckpointError(f"{path}: not a checkpoint, or a corrupt one ({reason[:200]}); expected "
                              f"{FORMATS_READ}") from err
    except Exception as err:  # torch's unpickler raises anything (KeyError, RuntimeError, EOFError) on garbage
        reason = (str(err).splitlines() or [""])[0]
        raise CheckpointError(f"{path}: unreadable, truncated or not a checkpoint ({type(err).__name__}: "
                              f"{reason[:200]}); expected {FORMATS_READ}") from err
    fmt, state_dict = _unwrap(path, raw)
    return Checkpoint(path, fmt, *_renamed(state_dict))


def check_checkpoint_file(path: Path) -> None:
    """Raise naming `path` unless it is a regular file: missing, a directory (a world model's, or another) and
    devices or pipes each get their own message."""
    if path.is_file():
        return
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    if path.is_dir():
        if (path / "config.json").is_file():
            raise CheckpointError(f"{path}: a directory (a world model, already converted?), expected a checkpoint "
                                  "file; load a world model with WorldModel.from_pretrained")
        raise CheckpointError(f"{path}: a directory, expected a checkpoint file ({FORMATS_READ})")
    raise CheckpointError(f"{path}: not a regular file (a device, pipe or socket), expected a checkpoint file")


def _sniff(path: Path) -> str:
    """'zip' | 'pickle' | 'safetensors' by the first bytes, else a description of what the file starts with."""
    with open(path, "rb") as f:
        head = f.read(16)
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if head[:1] == PICKLE_PROTO:
        return "pickle"
    if len(head) > 8 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") > 1:
        return "safetensors"  # an 8-byte header length, then the JSON header
    if not head:
        return "the file is empty"
    text = head.decode("utf-8", errors="replace")
    shown = repr(text) if text.isprintable() or text.strip().isprintable() else repr(head)
    return f"it starts with {shown}: no zip, pickle or safetensors header"


def _read_safetensors(path: Path) -> dict[str, Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: unreadable safetensors file ({err})") from err


def _unwrap(path: Path, raw: object) -> tuple[str, dict[str, Tensor]]:
    if not isinstance(raw, Mapping):
        raise CheckpointError(f"{path}: holds a {type(raw).__name__}, expected a state dict or a dict with one")
    fmt, inner = "state_dict", raw
    if isinstance(raw.get("state_dict"), Mapping):
        fmt, inner = "lightning", raw["state_dict"]
    elif isinstance(raw.get("module"), Mapping):
        fmt, inner = "deepspeed", raw["module"]
    tensors = {k: v for k, v in inner.items() if isinstance(v, Tensor)}
    if not tensors:
        raise CheckpointError(f"{path}: no tensors found (top-level keys: {sorted(map(str, raw))[:8]})")
    if all(k.startswith("module.") for k in tensors):
        fmt, tensors = "deepspeed", {k[len("module."):]: v for k, v in tensors.items()}
    return fmt, tensors


def _renamed(state_dict: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, str]]:
    out, renamed = {}, {}
    for key, value in state_dict.items():
        new = legacy_renamed(key)
        if new != key:
            renamed[key] = new
        out[new] = value
    return out, renamed
