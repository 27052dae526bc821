"""A world model's actions as gymnasium spaces, and back to the raw action vectors the model takes.

From the model's `metadata["actions"]` (the dataset's `ActionSpec`): a one-hot group is a `Discrete`, a multi-hot
group a `MultiBinary`, a continuous group a `Box` (its recorded bounds, else unbounded); one group is its own space,
several a `Dict` keyed by group name (ViZDoom: `{"buttons": MultiBinary(5), "turn": Discrete(7)}`). A model without
a spec falls back on its action head (`Box` of its width, or `MultiBinary`); one without actions takes `Discrete(1)`.

RL libraries such as stable-baselines3 take no `Dict` action space: `flat_action_space` is the same actions
as one space they take (ViZDoom: `MultiDiscrete([2, 2, 2, 2, 2, 7])`, a 0/1 entry per button, then the turn),
and `from_flat` turns a member of it back into the `Dict` member `to_vector` reads.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from ..data.spec import ActionGroup, ActionSpec


def model_spec(model: Any, data: Any = None) -> ActionSpec | None:
    """The model's `ActionSpec` from its metadata, else the dataset's (`data`, a `Dataset` or None), else one built
    from its action head (None: the model takes no actions)."""
    if model.action_dim is None:
        return None
    if "actions" in model.metadata:
        return ActionSpec.from_dict(model.metadata["actions"])
    if data is not None and data.meta.actions is not None and data.meta.actions.dim == model.action_dim:
        return data.meta.actions
    space = model.unet.config.action_space
    labels = tuple(space.names) if space.names else tuple(f"a{i}" for i in range(space.dim))
    return ActionSpec((ActionGroup("action", space.kind, labels),))


def group_space(group: ActionGroup) -> gym.Space:
    if group.kind == "one_hot":
        return gym.spaces.Discrete(group.dim)
    if group.kind == "multi_hot":
        return gym.spaces.MultiBinary(group.dim)
    low = np.array(group.low or [-np.inf] * group.dim, np.float32)
    high = np.array(group.high or [np.inf] * group.dim, np.float32)
    return gym.spaces.Box(low, high, dtype=np.float32)


def action_space(spec: ActionSpec | None) -> gym.Space:
    """The gymnasium space of `spec` (see module doc)."""
    if spec is None:
        return gym.spaces.Discrete(1)
    if len(spec.groups) == 1:
        return group_space(spec.groups[0])
    return gym.spaces.Dict({g.name: group_space(g) for g in spec.groups})


def to_vector(spec: ActionSpec | None, space: gym.Space, action: Any) -> np.ndarray | None:
    """A member of `space` as the model's raw action vector float32 [A] (None for a model without actions);
    anything else is a ValueError that says what the space holds."""
    if spec is None:
        if action not in (0, None) and not (isinstance(action, np.ndarray) and action.size == 1 and action == 0):
            raise ValueError(f"action: this model takes no actions (space Discrete(1): 0), got {action!r}")
        return None
    parts = action if isinstance(space, gym.spaces.Dict) else {spec.groups[0].name: action}
    if not isinstance(parts, dict) or set(parts) != {g.name for g in spec.groups}:
        raise ValueError(f"action: expected a member of {space}, got {action!r}")
    out = []
    for group in spec.groups:
        sub = space[group.name] if isinstance(space, gym.spaces.Dict) else space
        value = parts[group.name]
        out.append(_group_vector(group, sub, value))
    return np.concatenate(out)


def _group_vector(group: ActionGroup, space: gym.Space, value: Any) -> np.ndarray:
    if group.kind == "one_hot":
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) and not (
                isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "iu"):
            raise ValueError(f"action {group.name!r}: expected an integer in 0..{group.dim - 1}, got {value!r}")
        index = int(value)
        if not 0 <= index < group.dim:
            raise ValueError(f"action {group.name!r}: expected an integer in 0..{group.dim - 1}, got {index}")
        vec = np.zeros(group.dim, np.float32)
        vec[index] = 1.0
        return vec
    arr = np.asarray(value)
    if arr.shape != (group.dim,) or arr.dtype.kind not in "biuf":
        raise ValueError(f"action {group.name!r}: expected {group.dim} numbers, got {value!r}")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise ValueError(f"action {group.name!r}: contains NaN or inf")
    if group.kind == "multi_hot" and not np.isin(arr, (0.0, 1.0)).all():
        raise ValueError(f"action {group.name!r}: a multi-hot group takes 0s and 1s, got {arr.tolist()}")
    if group.kind == "continuous" and not space.contains(arr):
        raise ValueError(f"action {group.name!r}: {arr.tolist()} lies outside {space.low.tolist()}.."
                         f"{space.high.tolist()}")
    return arr


def flat_action_space(spec: ActionSpec | None, space: gym.Space) -> gym.Space:
    """`space` (the model's action space) as one space without `Dict` (see module doc): discrete groups as one
    `MultiDiscrete`, continuous groups as one `Box`; a space that is not a `Dict` is its own flat space."""
    if not isinstance(space, gym.spaces.Dict):
        return space
    kinds = {g.kind == "continuous" for g in spec.groups}
    if kinds == {False}:
        nvec = [n for g in spec.groups for n in ([2] * g.dim if g.kind == "multi_hot" else [g.dim])]
        return gym.spaces.MultiDiscrete(nvec)
    if kinds == {True}:
        parts = [space[g.name] for g in spec.groups]
        return gym.spaces.Box(np.concatenate([p.low for p in parts]), np.concatenate([p.high for p in parts]),
                              dtype=np.float32)
    groups = [(g.name, g.kind) for g in spec.groups]
    raise ValueError(f"actions: the groups {groups} mix continuous and discrete ones; no single space holds "
                     "both (use the Dict action space)")


def from_flat(spec: ActionSpec | None, space: gym.Space, action: Any) -> Any:
    """A member of `flat_action_space(spec, space)` as the member of `space` it stands for; anything else is a
    ValueError that says what the flat space holds."""
    if not isinstance(space, gym.spaces.Dict):
        return action
    flat = flat_action_space(spec, space)
    arr = np.asarray(action)
    kind = "iu" if isinstance(flat, gym.spaces.MultiDiscrete) else "biuf"
    if arr.shape != flat.shape or arr.dtype.kind not in kind:
        what = "integers" if kind == "iu" else "numbers"
        raise ValueError(f"action: expected {flat.shape[0]} {what} (a member of {flat}), got {action!r}")
    if isinstance(flat, gym.spaces.MultiDiscrete) and not ((arr >= 0) & (arr < flat.nvec)).all():
        raise ValueError(f"action: each entry i must be in 0..nvec[i]-1 of {flat}, got {arr.tolist()}")
    out, at = {}, 0
    for group in spec.groups:
        if group.kind == "one_hot":
            out[group.name], at = int(arr[at]), at + 1
        else:
            part = arr[at:at + group.dim]
            out[group.name] = part.astype(np.int8) if group.kind == "multi_hot" else part.astype(np.float32)
            at += group.dim
    return out
