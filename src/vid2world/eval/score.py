"""Scoring, streamed from the prediction files: one batch of windows in memory at a time, every source scored by
the same code against the same ground truth.

Per-frame metrics keep running sums per scored frame (so memory does not grow with the windows) and one mean per
window (for the paired comparison of the model with each baseline, `model_against_baselines`); pooled metrics
keep only their features. A source run with several seeds is scored per seed, then reported as the mean over seeds
with the standard deviation (ddof 1) beside it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..data.clips import ClipDataset
from ..io.progress import progress_bar
from ..metrics import frechet_distance
from .paired import paired_scores
from .predict import PredictionStore, read_batch, seed_count, window_id
from .protocols import Protocol
from .results import MetricInfo, SourceScores
from .scorers import LoadedMetric, PerFrame, Pooled
from .sources import Source
from .videos import write_pair


@dataclass
class Tally:
    """One (source, seed)'s running state."""

    sums: dict[str, np.ndarray] = field(default_factory=dict)  # metric -> per needed frame, summed over windows
    windows: int = 0
    per_window: dict[str, list[np.ndarray]] = field(default_factory=dict)  # metric -> [B] means over scored frames
    features: dict[str, list[np.ndarray]] = field(default_factory=dict)
    idm: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (read actions, true actions)


class Scoring:
    """Feed it batches (`add`), then read `scores()`. `prepare` maps clips to what is scored (e.g. a resize)."""

    def __init__(self, protocol: Protocol, metrics: list[LoadedMetric], prepare: Callable[[np.ndarray], np.ndarray],
                 idm: Any = None) -> None:
        self.protocol, self.metrics, self.prepare, self.idm = protocol, metrics, prepare, idm
        self.needed = sorted(set(protocol.frames) | set(protocol.curve_frames))
        self.scored = [self.needed.index(f) for f in protocol.frames]  # columns of `needed` the means average
        self.tallies: dict[tuple[str, int], Tally] = {}
        self.real = Tally()

    def add_truth(self, clip: np.ndarray, actions: np.ndarray | None) -> np.ndarray:
        """The ground truth of a batch [B, L, H, W, 3]: its pooled features and IDM reads; returns it prepared."""
        truth = self.prepare(clip)
        self._pool(self.real, truth)
        self._read_actions(self.real, clip, actions)
        self.real.windows += len(clip)
        return truth

    def add(self, source: str, seed: int, truth: np.ndarray, clip: np.ndarray, actions: np.ndarray | None) -> None:
        """One source's predicted clips [B, L, H, W, 3] (context + generated) against `truth` (from `add_truth`)."""
        tally = self.tallies.setdefault((source, seed), Tally())
        pred = self.prepare(clip)
        for m in self.metrics:
            if isinstance(m.entry, PerFrame):
                values = np.asarray(m.fn(pred[:, self.needed], truth[:, self.needed]), dtype=np.float64)
                if not np.isfinite(values).all():
                    raise ValueError(f"{m.entry.name} of source {source!r} is not finite: {values.tolist()}")
                tally.sums[m.entry.name] = tally.sums.get(m.entry.name, 0.0) + values.sum(axis=0)
                tally.per_window.setdefault(m.entry.name, []).append(values[:, self.scored].mean(axis=1))
        self._pool(tally, pred)
        self._read_actions(tally, clip, actions)
        tally.windows += len(clip)

    def _pool(self, tally: Tally, clips: np.ndarray) -> None:
        for m in self.metrics:
            if isinstance(m.entry, Pooled):
                chosen = np.ascontiguousarray(clips[:, list(m.entry.frames(self.protocol))])
                tally.features.setdefault(m.entry.name, []).append(m.fn(chosen))

    def _read_actions(self, tally: Tally, clip: np.ndarray, actions: np.ndarray | None) -> None:
        """The IDM's reading of the generated transitions: action t read from frames around (t, t+1), for every t
        from the last given frame on that the IDM can read in this clip (`config.read`: its frames before and
        after the pair must exist)."""
        if self.idm is None or actions is None:
            return
        read = np.arange(clip.shape[1])[self.idm.config.read(clip.shape[1])]
        keep = read >= self.protocol.context - 1
        tally.idm.append((self.idm.predict(clip)[:, keep], actions[:, read[keep]]))

    def source_scores(self, source: Source, seeds: int) -> SourceScores:
        runs = [self._summary(self.tallies[(source.name, j)]) for j in range(seeds)]
        names = runs[0][0].keys()
        means = {k: float(np.mean([r[0][k] for r in runs])) for k in names}
        std = {k: float(np.std([r[0][k] for r in runs], ddof=1)) for k in names} if seeds > 1 else {}
        curves = {k: np.mean([r[1][k] for r in runs], axis=0).tolist() for k in runs[0][1]}
        per_window = {k: v.tolist() for k, v in self._window_scores(source, seeds).items()}
        return SourceScores(source.name, source.kind, means, curves, std=std, per_window=per_window)

    def _window_scores(self, source: Source, seeds: int) -> dict[str, np.ndarray]:
        """Each per-frame metric's mean over the scored frames of every window, [windows], averaged over seeds."""
        runs = [self.tallies[(source.name, j)].per_window for j in range(seeds)]
        return {k: np.mean([np.concatenate(run[k]) for run in runs], axis=0) for k in runs[0]}

    def _summary(self, tally: Tally) -> tuple[dict[str, float], dict[str, list[float]]]:
        means, curves = {}, {}
        position = {f: i for i, f in enumerate(self.needed)}
        for name, sums in tally.sums.items():
            per_frame = sums / tally.windows
            means[name] = float(np.mean([per_frame[position[f]] for f in self.protocol.frames]))
            curves[name] = [float(per_frame[position[f]]) for f in self.protocol.curve_frames]
        for name, parts in tally.features.items():
            means[name] = float(frechet_distance(np.concatenate(parts), np.concatenate(self.real.features[name])))
        return means, curves

    def action_reads(self, name: str | None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The IDM's reads and the true actions of a source (None: the real frames), [N, A] each."""
        tally = self.real if name is None else self.tallies[(name, seed)]
        read = np.concatenate([r.reshape(-1, r.shape[-1]) for r, _ in tally.idm])
        true = np.concatenate([t.reshape(-1, t.shape[-1]) for _, t in tally.idm])
        return read, true


def model_against_baselines(scores: list[SourceScores], metrics: list[MetricInfo]) -> dict[str, dict[str, dict]]:
    """The model against each baseline on the same windows (`paired_scores` of their per-window scores), per
    per-frame metric: {baseline: {metric: difference, low, high, wins, windows}}."""
    model = next((s for s in scores if s.kind == "model"), None)
    if model is None:
        return {}
    better = {m.name: m.higher_is_better for m in metrics}
    return {b.name: {k: asdict(d) for k, d in paired_scores(model.per_window, b.per_window, better).items()}
            for b in scores if b.kind == "baseline"}


def score_all(scoring: Scoring, store: PredictionStore, sources: list[Source], protocol: Protocol, clips: ClipDataset,
              batches: list[list[int]], out: Path, videos: int, progress: bool) -> dict[str, list[str]]:
    """Stream every batch file through `scoring`; write the side-by-side videos; returns them per source."""
    written: dict[str, list[str]] = {s.name: [] for s in sources}
    with progress_bar(total=len(batches), desc="scoring", unit="batch", enabled=progress) as bar:
        for k, index in enumerate(batches):
            batch = read_batch(clips, index)
            truth = scoring.add_truth(batch.frames, batch.actions)
            for source in sources:
                for j in range(seed_count(source, protocol.seeds)):
                    path = store.path(source, j, k)
                    generated, actions = store.load(path)
                    if generated.shape != (len(index), protocol.horizon, *batch.frames.shape[2:]):
                        raise ValueError(f"{path}: frames {list(generated.shape)} do not fit this batch "
                                         f"({len(index)} windows of {protocol.horizon} frames); delete it")
                    clip = np.concatenate([batch.frames[:, : protocol.context], generated], axis=1)
                    scoring.add(source.name, j, truth, clip, actions)
                    for row, i in enumerate(index):
                        if j == 0 and i < videos:
                            rel = f"videos/{source.slug}/{window_id(i, clips)}.mp4"
                            write_pair(out / rel, batch.frames[row], clip[row], protocol.context)
                            written[source.name].append(rel)
            bar.update(1)
    return written
