"""The IDM's data: which episodes train it and which are held out, and random frame windows read from the shards.

Training windows (frames t .. t+1, with the IDM's `before`/`after` frames around them, and action t) come from split
`train`; the held-out episodes are split `val` when the dataset has one, else a fixed fraction of the training
episodes chosen by SHA-1 of their names (so the same dataset always holds out the same episodes, whatever their
order). Windows are drawn uniformly over all training windows from the memory-mapped shards, so the dataset never
has to fit in memory.
"""

from __future__ import annotations

import hashlib
import math
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from ...data.store import Dataset


def held_out_split(dataset: Dataset, fraction: float, window: int = 2) -> tuple[list[int], list[int], str]:
    """(training episodes, held-out episodes, the rule that chose them); episodes shorter than `window` frames
    dropped."""
    usable = [int(i) for i in range(len(dataset)) if dataset.lengths[i] >= window]
    train = [i for i in usable if dataset.splits[i] == "train"]
    held = [i for i in usable if dataset.splits[i] == "val"]
    rule = "split 'val'"
    if not held:
        by_hash = sorted(train, key=lambda i: hashlib.sha1(dataset.names[i].encode()).hexdigest())
        held = sorted(by_hash[: max(1, math.ceil(fraction * len(train)))])
        train = [i for i in train if i not in set(held)]
        rule = f"no 'val' split: the {fraction:.0%} of 'train' episodes first by SHA-1 of their name"
    if not train or not held:
        raise ValueError(f"{dataset.root}: needs episodes of at least {window} frames in split 'train' and held-out "
                         f"ones (found {len(train)} to train on, {len(held)} held out; splits: "
                         f"{sorted(set(dataset.splits))})")
    return train, held, rule


class PairSampler:
    """Uniform random (frames t - before .. t + 1 + after, action t) from `episodes`, read from the memory maps."""

    def __init__(self, dataset: Dataset, episodes: list[int], before: int = 0, after: int = 0) -> None:
        self.dataset, self.episodes = dataset, np.asarray(episodes)
        self.before, self.window = before, before + 2 + after
        self.ends = np.cumsum(dataset.lengths[self.episodes] - self.window + 1)  # windows per episode

    def __call__(self, rng: np.random.Generator, n: int) -> tuple[Tensor, Tensor]:
        """(windows uint8 [n, before + 2 + after, H, W, 3], actions float32 [n, A])."""
        picks = rng.integers(0, int(self.ends[-1]), size=n)
        k = np.searchsorted(self.ends, picks, side="right")
        rows = picks - np.concatenate([[0], self.ends])[k] + self.before  # t
        eps = [self.dataset.episode(int(self.episodes[j])) for j in k]
        windows = np.stack([e.frames[t - self.before: t - self.before + self.window] for e, t in zip(eps, rows)])
        actions = np.stack([e.actions[t] for e, t in zip(eps, rows)])
        return torch.from_numpy(windows), torch.from_numpy(actions)


def train_actions(dataset: Dataset, episodes: list[int], read: Callable[[int], slice]) -> np.ndarray:
    """The actions of every training window: the rows `read(length)` of each episode (`IDMConfig.read`)."""
    actions = [dataset.episode(i).actions[read(int(dataset.lengths[i]))] for i in episodes]
    return np.concatenate(actions).astype(np.float64)
