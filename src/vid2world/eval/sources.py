"""The sources of predictions an evaluation scores, each by the same code on the same windows: the model, the
copy-last-frame baseline and, for action models, the model following another window's actions or random valid
actions (the Delta-N pair, method.md 10.3).

A source turns a batch of windows into generated frames and the actions that produced them; only the future
actions change between the model's sources (the actions between context frames stay the window's own, since they
describe the frames given).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..data.spec import ActionSpec
from ..world.world_model import Sampling, WorldModel
from .baselines import action_bounds, copy_last_frame, derangement, random_actions
from .protocols import Protocol


@dataclass(frozen=True)
class Batch:
    """Windows `index` (positions in the evaluation's window list) read from the dataset: frames uint8
    [B, L, H, W, 3] and actions float32 [B, L, A] (None for action-free data)."""

    index: list[int]
    frames: np.ndarray
    actions: np.ndarray | None


@dataclass(frozen=True)
class Rollouts:
    """What every source of one evaluation shares."""

    model: WorldModel
    protocol: Protocol
    sampling: Sampling  # steps, guidance, precision: the preset's with the command's overrides
    window_actions: np.ndarray | None  # [N, L, A]: every window's actions (the derangement reads others')
    spec: ActionSpec | None
    seed: int

    @property
    def future(self) -> slice:
        """The actions a rollout follows after the context: a_{T0-1} .. a_{L-2}."""
        return slice(self.protocol.context - 1, self.protocol.length - 1)

    def roll(self, batch: Batch, actions: np.ndarray | None, seed: int) -> np.ndarray:
        context = batch.frames[:, : self.protocol.context]
        if actions is None or self.model.action_dim is None:
            return self.model.rollout(context, horizon=self.protocol.horizon, seed=seed, sampling=self.sampling)
        return self.model.rollout(context, actions[:, : self.protocol.length - 1], seed=seed,
                                  sampling=self.sampling)


Predict = Callable[[Rollouts, Batch, int], tuple[np.ndarray, np.ndarray | None]]


@dataclass(frozen=True)
class Source:
    name: str
    kind: str  # "model" | "baseline" (how the report draws it)
    slug: str  # its directory under predictions/ and videos/
    predict: Predict  # (rollouts, batch, seed) -> (generated frames [B, horizon, H, W, 3], actions [B, L, A])
    seeded: bool  # whether it samples (and is run once per seed of the protocol)


def _model(r: Rollouts, batch: Batch, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    return r.roll(batch, batch.actions, seed), batch.actions


def _other_episode(r: Rollouts, batch: Batch, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    partner = derangement(len(r.window_actions), r.seed)[batch.index]
    actions = batch.actions.copy()
    actions[:, r.future] = r.window_actions[partner][:, r.future]
    return r.roll(batch, actions, seed), actions


def _random(r: Rollouts, batch: Batch, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    bounds = action_bounds(r.spec, r.window_actions.reshape(-1, r.spec.dim))
    actions = batch.actions.copy()
    steps = r.future.stop - r.future.start
    for row, i in enumerate(batch.index):  # per window, so a window's draw does not depend on its batch
        actions[row, r.future] = random_actions(r.spec, steps, np.random.default_rng([r.seed, 10, i]), bounds)
    return r.roll(batch, actions, seed), actions


def _copy(r: Rollouts, batch: Batch, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    return copy_last_frame(batch.frames[:, : r.protocol.context], r.protocol.horizon), batch.actions


MODEL = Source("model", "model", "model", _model, True)
COPY = Source("copy last context frame", "baseline", "copy-last-frame", _copy, False)
OTHER = Source("model, another episode's actions", "baseline", "other-episode-actions", _other_episode, False)
RANDOM = Source("model, random actions", "baseline", "random-actions", _random, False)


def sources_for(model: WorldModel, spec: ActionSpec | None, windows: int, random_actions: bool = True
                ) -> tuple[list[Source], list[str]]:
    """The sources an evaluation runs, and notes on those it cannot: action baselines need an action model and an
    action dataset; another episode's actions need two windows. `random_actions=False` leaves that baseline (and
    Delta-N) out: comparisons between models (`zoo ablate`) do not read it, and it costs a third of the rollouts."""
    out, notes = [MODEL, COPY], []
    if model.action_dim is None or spec is None:
        notes.append("no action sources (another episode's actions, random actions): the model or the data has no "
                     "actions, so no Delta-N")
        return out, notes
    if windows >= 2:
        out.append(OTHER)
    else:
        notes.append("source 'model, another episode's actions' skipped: it needs at least 2 windows")
    if random_actions:
        out.append(RANDOM)
    return out, notes
