"""What a dataset holds: its action space (named groups) and metadata, as small JSON-friendly dataclasses.

An action vector is the concatenation of its groups, in order:
- `continuous`: real values, one per label, with the range seen or documented (`low`, `high`);
- `multi_hot`: 0/1 per label, any number pressed at once (keyboard keys, ViZDoom buttons);
- `one_hot`: exactly one label active (an Atari or Crafter action, a binned mouse or turn delta; `values` then
  holds the number each bin stands for).
A space of only continuous groups feeds a model's continuous action head; any other space is multi-hot for the
model (a one-hot group is a multi-hot vector with one entry set), as the official CS:GO model does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..models.config import ActionSpace

GROUP_KINDS = ("continuous", "multi_hot", "one_hot")


@dataclass(frozen=True)
class ActionGroup:
    name: str
    kind: str
    labels: tuple[str, ...]
    low: tuple[float, ...] = ()
    high: tuple[float, ...] = ()
    values: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in GROUP_KINDS:
            raise ValueError(f"action group {self.name!r}: kind must be one of {GROUP_KINDS}, got {self.kind!r}")
        if not self.labels:
            raise ValueError(f"action group {self.name!r}: needs at least one label")
        for attr in ("low", "high", "values"):
            got = getattr(self, attr)
            if got and len(got) != len(self.labels):
                raise ValueError(f"action group {self.name!r}: {attr} has {len(got)} entries, "
                                 f"expected one per label ({len(self.labels)})")

    @property
    def dim(self) -> int:
        return len(self.labels)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "labels": list(self.labels)}
        for attr in ("low", "high", "values"):
            if getattr(self, attr):
                out[attr] = [float(v) for v in getattr(self, attr)]
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ActionGroup":
        return cls(d["name"], d["kind"], tuple(d["labels"]), tuple(d.get("low", ())), tuple(d.get("high", ())),
                   tuple(d.get("values", ())))


@dataclass(frozen=True)
class ActionSpec:
    groups: tuple[ActionGroup, ...]

    @property
    def dim(self) -> int:
        return sum(g.dim for g in self.groups)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f"{g.name}.{label}" for g in self.groups for label in g.labels)

    def slices(self) -> list[tuple[ActionGroup, slice]]:
        out, start = [], 0
        for g in self.groups:
            out.append((g, slice(start, start + g.dim)))
            start += g.dim
        return out

    def model_space(self) -> ActionSpace:
        """The action head a world model on this data needs."""
        if all(g.kind == "continuous" for g in self.groups):
            ranged = all(len(g.low) == g.dim and len(g.high) == g.dim for g in self.groups)
            low = tuple(v for g in self.groups for v in g.low) if ranged else ()
            high = tuple(v for g in self.groups for v in g.high) if ranged else ()
            return ActionSpace.continuous(self.dim, self.names, low, high)
        return ActionSpace.multi_hot(self.dim, self.names)

    def validate(self, actions: np.ndarray, where: str) -> None:
        """Raise ValueError naming `where` unless `actions` is [T, dim] and every group holds what its kind allows."""
        if actions.ndim != 2 or actions.shape[1] != self.dim:
            raise ValueError(f"{where}: actions have shape {tuple(actions.shape)}, expected [T, {self.dim}]")
        bad = self.non_finite(actions)
        if bad:
            name, count, row = bad[0]
            raise ValueError(f"{where}: actions contain NaN or inf ({count} in column {name!r}, the first at "
                             f"step {row})")
        for g, cols in self.slices():
            part = actions[:, cols]
            if g.kind != "continuous" and not np.isin(part, (0.0, 1.0)).all():
                raise ValueError(f"{where}: action group {g.name!r} ({g.kind}) holds values other than 0 and 1")
            if g.kind == "one_hot" and not (part.sum(axis=1) == 1).all():
                raise ValueError(f"{where}: action group {g.name!r} is one-hot, but some rows have "
                                 f"{int(part.sum(axis=1).min())}..{int(part.sum(axis=1).max())} entries set")

    def non_finite(self, actions: np.ndarray) -> list[tuple[str, int, int]]:
        """(column name, how many, first row) of each column of `actions` [T, dim] that holds NaN or inf."""
        bad = ~np.isfinite(actions)
        return [(self.names[j], int(bad[:, j].sum()), int(np.argmax(bad[:, j])))
                for j in np.flatnonzero(bad.any(axis=0))]

    def make(self, **groups: Any) -> np.ndarray:
        """One action vector from labels by group: `spec.make(buttons=["forward"], turn="+12")`. A multi-hot group
        takes a list of labels (none pressed when left out); a one-hot group one label (when left out: the label
        whose value is 0, e.g. no turn, else its first); a continuous group a list of numbers (zeros)."""
        unknown = sorted(set(groups) - {g.name for g in self.groups})
        if unknown:
            raise ValueError(f"unknown action group(s) {unknown}; this space has {[g.name for g in self.groups]}")
        parts = []
        for g in self.groups:
            given = groups.get(g.name)
            part = np.zeros(g.dim, np.float32)
            if g.kind == "continuous":
                part[:] = given if given is not None else 0.0
            else:
                labels = [given] if isinstance(given, str) else list(given or [])
                if g.kind == "one_hot" and not labels:
                    labels = [g.labels[list(g.values).index(0.0)] if g.values and 0.0 in g.values else g.labels[0]]
                for label in labels:
                    if label not in g.labels:
                        raise ValueError(f"action group {g.name!r} has no label {label!r}; labels: {list(g.labels)}")
                    part[g.labels.index(label)] = 1.0
            parts.append(part)
        return np.concatenate(parts)

    def describe(self, action: np.ndarray) -> str:
        """A short human-readable text of one action vector, for previews."""
        parts = []
        for g, cols in self.slices():
            part = action[cols]
            if g.kind == "continuous":
                parts.append(" ".join(f"{label}={v:+.2f}" for label, v in zip(g.labels, part)))
            elif g.kind == "multi_hot":
                pressed = [label for label, v in zip(g.labels, part) if v > 0.5]
                parts.append("+".join(pressed) if pressed else "-")
            else:
                k = int(np.argmax(part))
                parts.append(f"{g.name}{g.values[k]:+g}" if g.values else g.labels[k])
        return " ".join(p for p in parts if p)

    def to_dict(self) -> dict[str, Any]:
        return {"dim": self.dim, "groups": [g.to_dict() for g in self.groups]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ActionSpec":
        spec = cls(tuple(ActionGroup.from_dict(g) for g in d["groups"]))
        if "dim" in d and int(d["dim"]) != spec.dim:
            raise ValueError(f"action spec: 'dim' says {d['dim']} but the groups add up to {spec.dim}")
        return spec

    @classmethod
    def continuous(cls, labels: Sequence[str], low: Sequence[float] = (), high: Sequence[float] = (),
                   name: str = "action") -> "ActionSpec":
        return cls((ActionGroup(name, "continuous", tuple(labels), tuple(low), tuple(high)),))

    @classmethod
    def one_hot(cls, labels: Sequence[str], name: str = "action") -> "ActionSpec":
        return cls((ActionGroup(name, "one_hot", tuple(labels)),))


@dataclass
class DatasetMeta:
    """A dataset's description, stored in `dataset.json`."""

    name: str
    fps: float
    frame_size: tuple[int, int]  # (H, W); every stored frame has it
    actions: ActionSpec | None  # None: action-free video (passive pretraining data)
    source: str = ""  # where the frames came from, e.g. "vizdoom:deathmatch", "rt1-npz:/data/rt1"
    extra: dict[str, Any] = field(default_factory=dict)  # recorder settings, importer reports, ...
    # the names of a per-frame state vector stored beside the frames (a robot's joints, a simulator's poses:
    # LeRobot's observation.state); empty: no state
    state: tuple[str, ...] = ()

    @property
    def action_dim(self) -> int:
        return self.actions.dim if self.actions is not None else 0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "fps": float(self.fps), "frame_size": list(self.frame_size),
                "actions": self.actions.to_dict() if self.actions is not None else None, "source": self.source,
                "extra": self.extra, **({"state": list(self.state)} if self.state else {})}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "DatasetMeta":
        missing = [k for k in ("name", "fps", "frame_size", "actions") if k not in d]
        if missing:
            raise ValueError(f"dataset metadata lacks {missing}")
        actions = ActionSpec.from_dict(d["actions"]) if d["actions"] is not None else None
        h, w = (int(v) for v in d["frame_size"])
        return cls(d["name"], float(d["fps"]), (h, w), actions, d.get("source", ""), dict(d.get("extra", {})),
                   tuple(str(n) for n in d.get("state", ())))
