"""Clips of T frames for training (random windows, augmented) and evaluation (fixed windows from a seed).

A clip is a dict: `frames` uint8 [T, H, W, 3] (compact between processes; `to_model_input` makes the float
[B, 3, T, H, W] in [-1, 1] the model wants), `actions` float32 [T, A] (absent for action-free data), `episode`,
`start`. Randomness is a pure function of (seed, epoch, index), so any worker or rank, and a resumed run, draws
the same clip for the same key; Python's salted `hash()` is never used.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from .store import Dataset
from .transforms import AugmentConfig, FrameLayout, augment


@dataclass(frozen=True)
class ClipConfig:
    length: int = 16
    frame_skip: int = 1  # take every k-th stored frame
    layout: FrameLayout | None = None  # None: frames as stored
    augment: AugmentConfig | None = None  # None: no augmentation (always None for evaluation)
    split: str | None = "train"  # None: every episode

    @property
    def span(self) -> int:
        return (self.length - 1) * self.frame_skip + 1


@dataclass(frozen=True)
class Window:
    episode: int
    name: str
    start: int


def stable_int(*parts: object) -> int:
    """A 64-bit integer from SHA-1 of the parts: the same in every process, unlike Python's `hash()`."""
    digest = hashlib.sha1("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def eligible_episodes(dataset: Dataset, cfg: ClipConfig) -> tuple[np.ndarray, int]:
    """Episodes of the split long enough for one clip, and how many were too short."""
    candidates = dataset.episodes_in(cfg.split)
    long_enough = candidates[dataset.lengths[candidates] >= cfg.span]
    return long_enough, len(candidates) - len(long_enough)


def eval_windows(dataset: Dataset, cfg: ClipConfig, count: int | None = None, seed: int = 0) -> list[Window]:
    """Deterministic evaluation windows: `count` episodes drawn with `random.Random(seed)` from the eligible ones
    (sorted by name), each with a start from a stable hash of (seed, episode name)."""
    eligible, _ = eligible_episodes(dataset, cfg)
    if len(eligible) == 0:
        raise ValueError(f"{dataset.root}: no episode of split {cfg.split!r} has the {cfg.span} frames a clip needs")
    order = sorted(eligible.tolist(), key=lambda i: dataset.names[i])
    if count is not None and count < len(order):
        order = sorted(random.Random(seed).sample(order, count), key=lambda i: dataset.names[i])
    return [Window(i, dataset.names[i], stable_int(seed, dataset.names[i]) % int(dataset.lengths[i] - cfg.span + 1))
            for i in order]


class ClipDataset(torch.utils.data.Dataset):
    """Training clips (one random window per eligible episode and epoch; keys from `ClipSampler`) or, with
    `windows`, evaluation clips in a fixed order."""

    def __init__(self, dataset: Dataset, cfg: ClipConfig, seed: int = 0, windows: list[Window] | None = None) -> None:
        self.dataset, self.cfg, self.seed, self.windows = dataset, cfg, seed, windows
        self.episodes, self.skipped_short = eligible_episodes(dataset, cfg)
        if windows is None and len(self.episodes) == 0:
            raise ValueError(f"{dataset.root}: no episode of split {cfg.split!r} has the {cfg.span} frames a clip "
                             f"needs ({self.skipped_short} too short)")

    def __len__(self) -> int:
        return len(self.windows) if self.windows is not None else len(self.episodes)

    @property
    def summary(self) -> str:
        return (f"{len(self)} clips of {self.cfg.length} frames from {self.dataset.root} "
                f"(split {self.cfg.split}); {self.skipped_short} episodes skipped as shorter than {self.cfg.span}")

    def __getitem__(self, key: int) -> dict[str, object]:
        if self.windows is not None:
            window, rng = self.windows[key], None
        else:
            epoch, i = divmod(int(key), len(self.episodes))
            rng = np.random.default_rng([self.seed, epoch, i])
            episode = int(self.episodes[i])
            start = int(rng.integers(0, int(self.dataset.lengths[episode]) - self.cfg.span + 1))
            window = Window(episode, self.dataset.names[episode], start)
        return self.clip(window, rng)

    def clip(self, window: Window, rng: np.random.Generator | None = None) -> dict[str, object]:
        ep = self.dataset.episode(window.episode)
        rows = slice(window.start, window.start + self.cfg.span, self.cfg.frame_skip)
        frames = torch.from_numpy(np.array(ep.frames[rows]))
        if self.cfg.layout is not None or (self.cfg.augment is not None and rng is not None):
            video = frames.permute(0, 3, 1, 2).float() / 255.0
            if self.cfg.augment is not None and rng is not None:
                video = augment(video, self.cfg.augment, rng, self.cfg.layout)
            elif self.cfg.layout is not None:
                video = self.cfg.layout.apply(video)
            frames = (video * 255.0).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
        out: dict[str, object] = {"frames": frames, "episode": window.episode, "start": window.start}
        if ep.actions is not None:
            out["actions"] = torch.from_numpy(np.array(ep.actions[rows]))
        return out


@dataclass
class ClipSampler(torch.utils.data.Sampler):
    """Shuffled keys `epoch * n + i` for this rank: each epoch a permutation seeded by (seed, epoch), padded to a
    multiple of `world_size` and dealt round-robin, so ranks see disjoint clips of equal count."""

    n: int
    rank: int = 0
    world_size: int = 1
    seed: int = 0
    epoch: int = 0
    shuffle: bool = True
    epochs: int = 1  # consecutive epochs from `epoch` in one pass (keeps worker processes alive across epochs)
    start: int = 0  # keys of the first epoch already consumed (a resumed run continues mid-epoch)

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"ClipSampler: rank {self.rank} outside world size {self.world_size}")
        if not 0 <= self.start < self.per_epoch:
            raise ValueError(f"ClipSampler: start {self.start} outside the epoch's {self.per_epoch} keys")

    def __len__(self) -> int:
        return self.per_epoch * self.epochs - self.start

    @property
    def per_epoch(self) -> int:
        return -(-self.n // self.world_size)

    def __iter__(self) -> Iterator[int]:
        for epoch in range(self.epoch, self.epoch + self.epochs):
            order = np.random.default_rng([self.seed, epoch]).permutation(self.n) if self.shuffle \
                else np.arange(self.n)
            padded = np.resize(order, self.per_epoch * self.world_size)
            skip = self.start if epoch == self.epoch else 0
            for i in padded[self.rank:: self.world_size][skip:]:
                yield epoch * self.n + int(i)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


def clip_loader(clips: ClipDataset, batch_size: int, workers: int = 0, rank: int = 0, world_size: int = 1,
                seed: int = 0, epoch: int = 0, shuffle: bool = True, epochs: int = 1,
                start: int = 0) -> torch.utils.data.DataLoader:
    """A DataLoader over `clips`, sharded across ranks by `ClipSampler` (evaluation: `shuffle=False`); `start`
    skips keys of the first epoch (resuming)."""
    sampler = ClipSampler(len(clips), rank, world_size, seed, epoch, shuffle, epochs, start)
    # its own generator: creating the iterator would otherwise draw from torch's global RNG (worker seeds), which
    # shifts a training run's dropout stream depending on when the loader was made (clips are key-seeded anyway)
    return torch.utils.data.DataLoader(clips, batch_size=batch_size, sampler=sampler, num_workers=workers,
                                       persistent_workers=False, drop_last=False,
                                       generator=torch.Generator().manual_seed(seed))


def to_model_input(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [B, T, H, W, 3] -> float [B, 3, T, H, W] in [-1, 1]."""
    return frames.permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0
