"""Opening what an evaluation reads: the world model and the dataset (checked against each other), the frame layout
the model was trained with, and the model's card and identity for the results."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ..data.store import Dataset, open_dataset
from ..data.transforms import FrameLayout
from ..world.world_model import CONFIG_NAME, WorldModel


def open_inputs(model_dir: str | Path, data_dir: str | Path, device: str = "cpu") -> tuple[WorldModel, Dataset]:
    """The world model and the dataset, refusing a pair whose action spaces differ."""
    dataset = open_dataset(data_dir)
    model = WorldModel.from_pretrained(model_dir, device=device)
    check_actions(model, dataset, model_dir)
    return model, dataset


def check_actions(model: WorldModel, dataset: Dataset, model_dir: str | Path) -> None:
    have, need = dataset.meta.action_dim, model.action_dim
    if need is None:
        return  # an action-free model rolls out from frames alone, whatever the data's actions
    if have != need:
        names = list(dataset.meta.actions.names) if have else "no actions"
        raise ValueError(f"{dataset.root}: its actions are {have}-d ({names}), but the model in {model_dir} takes "
                         f"{need}-d actions; evaluate it on data of its own action space")


def model_layout(model: WorldModel, dataset: Dataset) -> FrameLayout | None:
    """The frame layout the model was trained with (its training config's data.size / layout / inner), None when
    it has none recorded or the stored frames already fit it."""
    data = ((model.metadata.get("training") or {}).get("config") or {}).get("data") or {}
    if "size" not in data:
        return None
    size, mode = tuple(int(v) for v in data["size"]), data.get("layout", "resize")
    if mode == "resize" and size == tuple(dataset.meta.frame_size):
        return None
    return FrameLayout(size, mode, tuple(data["inner"]) if data.get("inner") else None)


def _digest(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def model_identity(model_dir: str | Path) -> dict[str, Any]:
    """What names the model's weights: the directory and the SHA-1 of every file in it (config and weights)."""
    root = Path(model_dir).resolve()
    return {"path": str(root), "sha1": {p.name: _digest(p) for p in sorted(root.iterdir()) if p.is_file()}}


def model_card(model_dir: str | Path, model: WorldModel) -> dict[str, Any]:
    """A summary of the model for the report: architecture, size, action space, sampler, where it came from."""
    unet = model.unet.config
    space = unet.action_space
    meta = model.metadata
    return {
        "directory": str(Path(model_dir).resolve()),
        "config": str(Path(model_dir).resolve() / CONFIG_NAME),
        "parameters": sum(p.numel() for p in model.parameters()),
        "unet_parameters": sum(p.numel() for p in model.unet.parameters()),
        "architecture": {"model_channels": unet.model_channels, "channel_mult": list(unet.channel_mult),
                         "temporal_length": unet.temporal_length, "causal": str(unet.causal),
                         "in_channels": unet.in_channels, "context_dim": unet.context_dim},
        "codec": model.codec.config(),
        "action_space": None if space is None else {"kind": space.kind, "dim": space.dim, "names": list(space.names)},
        "sampler": model.sampler.to_dict(),
        "window": model.window,
        "source": meta.get("source"),
        "training": {k: v for k, v in (meta.get("training") or {}).items() if k != "config"} or None,
        "env": meta.get("env"),
    }
