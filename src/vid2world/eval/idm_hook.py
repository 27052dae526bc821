"""Action accuracy through an inverse-dynamics model (`vid2world idm train`, eval/idm.py): how often the action
can be read back from the frames, on the real frames, on every source's frames, and by chance (the IDM's majority
action). Each source is read on its generated transitions (frames T0-1 -> T0 onwards) against the actions it
followed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..data.store import Dataset
from ..io.atomic import write_text
from .score import Scoring
from .sources import Source

DETAILS = "idm_scores.json"


def open_idm(directory: str | None, device: str, dataset: Dataset) -> Any:
    """The IDM in `directory` (None: no IDM), checked against the dataset's action space."""
    if directory is None:
        return None
    from .idm.store import load_idm

    idm = load_idm(directory, device)
    if dataset.meta.actions is None or idm.spec.dim != dataset.meta.action_dim:
        raise ValueError(f"--idm {directory}: reads {idm.spec.dim}-d actions, but {dataset.root} has "
                         f"{dataset.meta.action_dim}-d ones; train an IDM on data of this action space")
    return idm


def action_accuracy(idm: Any, directory: str, scoring: Scoring, sources: list[Source], out: Path) -> dict[str, Any]:
    """{"idm", "details", and with discrete action groups "real", "model", "chance", "sources"}; every group's
    scores (accuracy, or R^2 and sign agreement, each with chance) of every source go to OUT/idm_scores.json."""
    from .idm.scores import scores_with_chance

    chance = idm.chance.cpu().numpy()
    details = {"real frames": scores_with_chance(idm.spec, *scoring.action_reads(None), chance)}
    for source in sources:
        details[source.name] = scores_with_chance(idm.spec, *scoring.action_reads(source.name), chance)
    write_text(out / DETAILS, json.dumps(details, indent=1) + "\n")
    summary: dict[str, Any] = {"idm": str(directory), "details": DETAILS}
    if details["model"]["action_accuracy"] is None:
        summary["note"] = f"no discrete action group: {DETAILS} holds R^2 and sign agreement per group"
        return summary
    return {**summary, "real": details["real frames"]["action_accuracy"], "model": details["model"]["action_accuracy"],
            "chance": details["real frames"]["chance_accuracy"],
            "sources": {name: d["action_accuracy"] for name, d in details.items()}}
