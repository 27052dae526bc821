"""Action accuracy through an inverse-dynamics model (`vid2world idm train`, eval/idm.py): how often the action
can be read back from the frames, on the real frames, on every source's frames, and by chance (the IDM's majority
action). Each source is read on its generated transitions (frames T0-1 -> T0 onwards) against the actions it
followed."""

from __future__ import annotations

from typing import Any

from ..data.store import Dataset
from .score import Scoring
from .sources import Source


def open_idm(directory: str | None, device: str, dataset: Dataset) -> Any:
    """The IDM in `directory` (None: no IDM), checked against the dataset's action space."""
    if directory is None:
        return None
    from .idm_io import load_idm

    idm = load_idm(directory, device)
    if dataset.meta.actions is None or idm.spec.dim != dataset.meta.action_dim:
        raise ValueError(f"--idm {directory}: reads {idm.spec.dim}-d actions, but {dataset.root} has "
                         f"{dataset.meta.action_dim}-d ones; train an IDM on data of this action space")
    return idm


def action_accuracy(idm: Any, directory: str, scoring: Scoring, sources: list[Source]) -> dict[str, Any]:
    """{"idm", "real", "model", "chance", "sources": {name: accuracy}, "details": {name: every group's scores}}."""
    from .idm_scores import scores_with_chance

    chance = idm.chance.cpu().numpy()
    details = {"real frames": scores_with_chance(idm.spec, *scoring.action_reads(None), chance)}
    for source in sources:
        details[source.name] = scores_with_chance(idm.spec, *scoring.action_reads(source.name), chance)
    return {"idm": str(directory), "real": details["real frames"]["action_accuracy"],
            "model": details["model"]["action_accuracy"], "chance": details["real frames"]["chance_accuracy"],
            "sources": {name: d["action_accuracy"] for name, d in details.items()}, "details": details}
