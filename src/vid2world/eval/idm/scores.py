"""Scores of predicted actions against true ones, per action group, as pure functions on action arrays in the
dataset's own format (one-hot vectors, 0/1 buttons, raw continuous values), [N, A] each.

Per group kind:
- `one_hot`: `accuracy` (argmax of the prediction == the true label);
- `multi_hot`: `accuracy` (per-label accuracy, averaged over the labels), `exact_match` (every label of the group
  right at once) and `per_label` accuracies;
- `continuous`: `r2` (1 - residual / total sum of squares, pooled over the group's labels, each label's total about
  its own mean; None when the true values do not vary) and `sign_agreement` (sign of prediction == sign of truth).

`action_accuracy` = the mean of the discrete (one-hot and multi-hot) groups' `accuracy`; None without discrete groups.
Chance is the same scores of `majority_action` (fitted on training labels) repeated for every row.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...data.spec import ActionGroup, ActionSpec


def _one_hot(pred: np.ndarray, true: np.ndarray, group: ActionGroup) -> dict[str, Any]:
    return {"kind": group.kind, "accuracy": float(np.mean(pred.argmax(1) == true.argmax(1)))}


def _multi_hot(pred: np.ndarray, true: np.ndarray, group: ActionGroup) -> dict[str, Any]:
    right = (pred > 0.5) == (true > 0.5)
    per_label = right.mean(axis=0)
    return {"kind": group.kind, "accuracy": float(per_label.mean()), "exact_match": float(right.all(axis=1).mean()),
            "per_label": {label: float(p) for label, p in zip(group.labels, per_label)}}


def _continuous(pred: np.ndarray, true: np.ndarray, group: ActionGroup) -> dict[str, Any]:
    pred, true = pred.astype(np.float64), true.astype(np.float64)
    total = float(((true - true.mean(axis=0)) ** 2).sum())
    r2 = None if total == 0.0 else 1.0 - float(((pred - true) ** 2).sum()) / total
    return {"kind": group.kind, "r2": r2, "sign_agreement": float(np.mean(np.sign(pred) == np.sign(true)))}


_BY_KIND = {"one_hot": _one_hot, "multi_hot": _multi_hot, "continuous": _continuous}


def _checked(spec: ActionSpec, pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, true = np.asarray(pred), np.asarray(true)
    for name, a in (("predicted", pred), ("true", true)):
        if a.ndim != 2 or a.shape[1] != spec.dim:
            raise ValueError(f"{name} actions have shape {tuple(a.shape)}, expected [N, {spec.dim}]")
        if not np.isfinite(a).all():
            raise ValueError(f"{name} actions contain NaN or inf")
    if len(pred) != len(true) or len(true) == 0:
        raise ValueError(f"predicted and true actions must have the same number of rows (> 0), "
                         f"got {len(pred)} and {len(true)}")
    return pred, true


def action_scores(spec: ActionSpec, pred: np.ndarray, true: np.ndarray) -> dict[str, Any]:
    """Every group's scores of `pred` against `true` ([N, A] each), `action_accuracy` and the row count `pairs`."""
    pred, true = _checked(spec, pred, true)
    groups = {g.name: _BY_KIND[g.kind](pred[:, cols], true[:, cols], g) for g, cols in spec.slices()}
    discrete = [s["accuracy"] for s in groups.values() if s["kind"] != "continuous"]
    return {"groups": groups, "action_accuracy": float(np.mean(discrete)) if discrete else None, "pairs": len(true)}


def majority_action(spec: ActionSpec, train_actions: np.ndarray) -> np.ndarray:
    """The chance predictor fitted on training labels [N, A]: each one-hot group's most frequent label (the first
    on ties), each multi-hot label's majority value (0 on ties), each continuous label's mean."""
    train_actions = np.asarray(train_actions, dtype=np.float64)
    if train_actions.ndim != 2 or train_actions.shape[1] != spec.dim or len(train_actions) == 0:
        raise ValueError(f"training actions have shape {tuple(train_actions.shape)}, expected [N > 0, {spec.dim}]")
    out = np.zeros(spec.dim, np.float32)
    for g, cols in spec.slices():
        part = train_actions[:, cols]
        if g.kind == "one_hot":
            out[cols.start + int(np.argmax(part.sum(axis=0)))] = 1.0
        elif g.kind == "multi_hot":
            out[cols] = (part.mean(axis=0) > 0.5).astype(np.float32)
        else:
            out[cols] = part.mean(axis=0)
    return out


def scores_with_chance(spec: ActionSpec, pred: np.ndarray, true: np.ndarray, chance: np.ndarray) -> dict[str, Any]:
    """`action_scores` of the predictions, with the constant `chance` action's scores on the same rows beside every
    group (`groups[name]["chance"]`) and as `chance_accuracy`."""
    scores = action_scores(spec, pred, true)
    baseline = action_scores(spec, np.broadcast_to(np.asarray(chance, np.float32), np.shape(true)), true)
    for name, group in scores["groups"].items():
        group["chance"] = {k: v for k, v in baseline["groups"][name].items() if k != "kind"}
    scores["chance_accuracy"] = baseline["action_accuracy"]
    return scores
