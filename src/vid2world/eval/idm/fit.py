"""Fitting an IDM on a dataset's real frames (`idm_data`: which episodes, which pairs) and scoring it on the
held-out episodes, with the majority-label predictor fitted on the training labels as chance. Same seed, same weights.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from ...data.store import Dataset, open_dataset
from ...io.progress import progress_bar
from ...train.optim import lr_at, optimizer_step, set_lr
from .model import IDM, IDMConfig
from .data import PairSampler, held_out_split, train_actions
from .scores import majority_action, scores_with_chance


@dataclass(frozen=True)
class FitConfig:
    """The fit: AdamW at `lr` with a short warm-up and cosine decay, `steps` batches of `batch` pairs."""

    steps: int = 2000
    batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 50
    seed: int = 0
    holdout_fraction: float = 0.1  # only when the dataset has no 'val' split
    model: IDMConfig = field(default_factory=IDMConfig)  # its frame_size is replaced by the data's


def set_normaliser(idm: IDM, train_actions: np.ndarray) -> None:
    """Continuous groups are regressed in units of their documented range (low/high), else of the training std."""
    for g, cols in idm.spec.slices():
        if g.kind != "continuous":
            continue
        part = train_actions[:, cols]
        if g.low and g.high:
            centre, scale = (np.add(g.low, g.high)) / 2, (np.subtract(g.high, g.low)) / 2
        else:
            centre, scale = part.mean(axis=0), part.std(axis=0)
        idm.centre[cols] = torch.as_tensor(centre, dtype=torch.float32)
        idm.scale[cols] = torch.as_tensor(np.where(np.asarray(scale) > 0, scale, 1.0), dtype=torch.float32)


_LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "one_hot": lambda out, target: nn.functional.cross_entropy(out, target.argmax(1)),
    "multi_hot": nn.functional.binary_cross_entropy_with_logits,
    "continuous": nn.functional.mse_loss,  # on normalised targets
}


def idm_loss(idm: IDM, outputs: list[Tensor], actions: Tensor) -> Tensor:
    """Sum over groups: cross-entropy (one-hot), per-label BCE (multi-hot), MSE on normalised values (continuous)."""
    target = (actions - idm.centre) / idm.scale
    return sum(_LOSSES[g.kind](out, target[:, cols]) for (g, cols), out in zip(idm.spec.slices(), outputs))


def held_out_scores(idm: IDM, dataset: Dataset, episodes: list[int]) -> dict[str, Any]:
    """The IDM's scores, with chance beside them, on every pair of `episodes`."""
    pred, true = [], []
    for i in episodes:
        ep = dataset.episode(i)
        pred.append(idm.predict(np.asarray(ep.frames)[None])[0])
        true.append(ep.actions[idm.config.read(len(ep.actions))])
    return scores_with_chance(idm.spec, np.concatenate(pred), np.concatenate(true), idm.chance.cpu().numpy())


def _train(idm: IDM, sampler: PairSampler, cfg: FitConfig, device: str, progress: bool) -> float:
    """The loop; returns the mean loss of the last 10% of steps."""
    opt = torch.optim.AdamW(idm.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(cfg.seed)
    losses = []
    idm.train()
    with progress_bar(total=cfg.steps, desc="idm train", unit="step", enabled=progress) as bar:
        for step in range(cfg.steps):
            windows, actions = (x.to(device) for x in sampler(rng, cfg.batch))
            set_lr(opt, lr_at(step, cfg.steps, cfg.lr, cfg.warmup, floor=0.0))  # warm-up, cosine to 0
            loss = idm_loss(idm, idm(windows), actions)
            if not torch.isfinite(loss):
                raise ValueError(f"IDM loss became {loss.item()} at step {step}; lower --lr (now {cfg.lr})")
            loss.backward()
            optimizer_step(opt, idm.parameters())
            losses.append(loss.item())
            bar.update(1)
            if step % 20 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
    idm.eval()
    return float(np.mean(losses[-max(1, cfg.steps // 10):]))


def fit_idm(data: str, cfg: FitConfig = FitConfig(), device: str = "cpu", progress: bool = True) -> IDM:
    """An IDM fitted on the dataset at `data`, its held-out scores (with chance) in `idm.report["held_out"]`."""
    dataset = open_dataset(data)
    spec = dataset.meta.actions
    if spec is None:
        raise ValueError(f"{dataset.root}: the dataset has no actions (recorded with --no-actions); an IDM needs them")
    model_cfg = IDMConfig(**{**asdict(cfg.model), "frame_size": tuple(dataset.meta.frame_size)})
    train, held, rule = held_out_split(dataset, cfg.holdout_fraction, model_cfg.window)
    labels = train_actions(dataset, train, model_cfg.read)
    with torch.random.fork_rng(devices=[]):  # the seed picks the initial weights without touching global state
        torch.manual_seed(cfg.seed)
        idm = IDM(model_cfg, spec, chance=majority_action(spec, labels))
    set_normaliser(idm, labels)
    idm.to(device)
    start = time.perf_counter()
    final_loss = _train(idm, PairSampler(dataset, train, model_cfg.before, model_cfg.after), cfg, device, progress)
    seconds = time.perf_counter() - start
    held_scores = held_out_scores(idm, dataset, held)
    idm.report = {"data": str(dataset.root.resolve()), "source": dataset.meta.source,
                  "fit": {**asdict(cfg), "device": device, "seconds": round(seconds, 1), "final_loss": final_loss},
                  "train": {"episodes": len(train), "pairs": len(labels)},
                  "held_out": {"rule": rule, "episodes": len(held), **held_scores}}
    return idm
