"""The counterfactual grid: one start (the first evaluation window), several action sequences, each held for the
whole rollout, side by side with the ground truth. Every sequence is rolled out with the same seed, so the cells
differ by their actions alone. Its frames are kept beside the predictions and reused by a rerun."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.clips import ClipDataset
from .baselines import action_bounds, held_actions
from .predict import PredictionStore, batch_seed
from .sources import Batch, Rollouts
from .videos import write_grid

FILE = "counterfactual.mp4"


def write_counterfactual(r: Rollouts, clips: ClipDataset, store: PredictionStore, out: Path,
                         limit: int = 8) -> str:
    """Roll out (or reuse) the held-action sequences of window 0 and write `OUT/counterfactual.mp4`; returns its
    path relative to `out`."""
    window = clips[0]
    frames, own = np.asarray(window["frames"]), np.asarray(window["actions"])
    choices = held_actions(r.spec, action_bounds(r.spec, r.window_actions.reshape(-1, r.spec.dim)), limit)
    path = store.root / "counterfactual.npz"
    if path.is_file():
        generated, _ = store.load(path)
    else:
        actions = np.repeat(own[None], len(choices), axis=0)
        for row, (_, action) in enumerate(choices):
            actions[row, r.future] = action
        seed = batch_seed(r.seed, 0, 0)
        generated = np.concatenate([r.roll(Batch([0], frames[None], actions[row:row + 1]), actions[row:row + 1],
                                           seed) for row in range(len(choices))])
        store.save(path, generated, actions)
    context = frames[: r.protocol.context]
    cells = [frames] + [np.concatenate([context, g]) for g in generated]
    write_grid(out / FILE, cells, ["ground truth"] + [f"hold {name}" for name, _ in choices])
    return FILE
