"""An IDM directory: `idm.safetensors` (the weights, with the continuous normaliser and the chance action) and
`idm.json` (config, action spec, frame size, chance action, and the fit's report: data, steps, held-out scores).
Written atomically; an existing IDM directory is replaced only when asked, any other non-empty directory never."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from safetensors.torch import save_file

from ...data.spec import ActionSpec
from ...io.atomic import AtomicDirectory, check_replaceable
from ...io.weights import read_weights
from .model import IDM, IDMConfig

WEIGHTS_NAME, CONFIG_NAME, FORMAT = "idm.safetensors", "idm.json", "vid2world.IDM"


def is_idm_dir(directory: str | os.PathLike) -> bool:
    """Whether `directory` holds an IDM (an `idm.json` of format `vid2world.IDM`)."""
    try:
        return json.loads((Path(directory) / CONFIG_NAME).read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def check_idm_target(directory: str | os.PathLike, overwrite: bool = False) -> Path:
    """Raise `FileExistsError` unless an IDM may be written to `directory`: new, empty, or (with `overwrite`) an
    IDM directory. Returns it as an absolute path."""
    target = check_replaceable(directory, overwrite=overwrite)
    if overwrite and target.is_dir() and any(target.iterdir()) and not is_idm_dir(target):
        raise FileExistsError(f"{target}: not empty and not an IDM directory (no {CONFIG_NAME} of format "
                              f"{FORMAT!r}); refusing to replace it: give a new or an empty directory")
    return target


def describe(idm: IDM) -> dict[str, Any]:
    """What `idm.json` holds: the config, action spec, frame size, chance action and the fit's report."""
    return {"format": FORMAT, "config": asdict(idm.config), "actions": idm.spec.to_dict(),
            "frame_size": list(idm.config.frame_size), "chance_action": idm.chance.tolist(), "report": idm.report}


def save_idm(idm: IDM, directory: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write `idm` (weights, config and `idm.report`) into `directory` atomically; returns the directory."""
    target = check_idm_target(directory, overwrite)
    state = {k: v.detach().cpu().contiguous() for k, v in idm.state_dict().items()}
    with AtomicDirectory(target, overwrite=overwrite) as tmp:
        save_file(state, str(tmp.path / WEIGHTS_NAME), metadata={"format": FORMAT})
        text = json.dumps(describe(idm), indent=1, allow_nan=False)
        (tmp.path / CONFIG_NAME).write_text(text + "\n")
    return target


def _read_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        got = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise ValueError(f"{path}: key 'format' is {got!r}, expected {FORMAT!r}")
    return config


def load_idm(directory: str | os.PathLike, device: str = "cpu") -> IDM:
    """Load an IDM written by `save_idm` (`vid2world idm train`), in eval mode on `device`."""
    path = Path(directory)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such directory; expected an IDM directory (`vid2world idm train`)")
    config_path, weights_path = path / CONFIG_NAME, path / WEIGHTS_NAME
    for p in (config_path, weights_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: missing; an IDM directory holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    config = _read_config(config_path)
    try:
        idm = IDM(IDMConfig.from_dict(config["config"]), ActionSpec.from_dict(config["actions"]),
                  report=config.get("report"))
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{config_path}: bad or missing key ({err})") from None
    try:
        idm.load_state_dict(read_weights(weights_path))
    except Exception as err:  # safetensors' own errors for foreign or truncated files; shape mismatches
        reason = " ".join(str(err).split())[:400]
        raise ValueError(f"{weights_path}: cannot load the IDM's weights ({reason})") from None
    return idm.eval().to(device)
