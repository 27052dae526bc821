"""The IDM's data: which episodes train it and which are held out, and random frame pairs read from the shards.

Training pairs (frame t, frame t+1, action t) come from split `train`; the held-out episodes are split `val` when
the dataset has one, else a fixed fraction of the training episodes chosen by SHA-1 of their names (so the same
dataset always holds out the same episodes, whatever their order). Pairs are drawn uniformly over all training
pairs from the memory-mapped shards, so the dataset never has to fit in memory.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import torch
from torch import Tensor

from ..data.store import Dataset


def held_out_split(dataset: Dataset, fraction: float) -> tuple[list[int], list[int], str]:
    """(training episodes, held-out episodes, the rule that chose them); episodes shorter than 2 frames dropped."""
    usable = [int(i) for i in range(len(dataset)) if dataset.lengths[i] >= 2]
    train = [i for i in usable if dataset.splits[i] == "train"]
    held = [i for i in usable if dataset.splits[i] == "val"]
    rule = "split 'val'"
    if not held:
        by_hash = sorted(train, key=lambda i: hashlib.sha1(dataset.names[i].encode()).hexdigest())
        held = sorted(by_hash[: max(1, math.ceil(fraction * len(train)))])
        train = [i for i in train if i not in set(held)]
        rule = f"no 'val' split: the {fraction:.0%} of 'train' episodes first by SHA-1 of their name"
    if not train or not held:
        raise ValueError(f"{dataset.root}: needs episodes of at least 2 frames in split 'train' and held-out ones "
                         f"(found {len(train)} to train on, {len(held)} held out; splits: {sorted(set(dataset.splits))})")
    return train, held, rule


class PairSampler:
    """Uniform random (frame t, frame t+1, action t) pairs from `episodes`, read from the memory maps."""

    def __init__(self, dataset: Dataset, episodes: list[int]) -> None:
        self.dataset, self.episodes = dataset, np.asarray(episodes)
        self.ends = np.cumsum(dataset.lengths[self.episodes] - 1)  # pairs per episode: length - 1

    def __call__(self, rng: np.random.Generator, n: int) -> tuple[Tensor, Tensor, Tensor]:
        picks = rng.integers(0, int(self.ends[-1]), size=n)
        k = np.searchsorted(self.ends, picks, side="right")
        rows = picks - np.concatenate([[0], self.ends])[k]
        eps = [self.dataset.episode(int(self.episodes[j])) for j in k]
        pairs = np.stack([e.frames[t: t + 2] for e, t in zip(eps, rows)])
        actions = np.stack([e.actions[t] for e, t in zip(eps, rows)])
        return torch.from_numpy(pairs[:, 0]), torch.from_numpy(pairs[:, 1]), torch.from_numpy(actions)


def train_actions(dataset: Dataset, episodes: list[int]) -> np.ndarray:
    """The actions of every training pair (each episode's rows but its last)."""
    return np.concatenate([dataset.episode(i).actions[:-1] for i in episodes]).astype(np.float64)
