"""`evaluate`: infer every source to disk, then score them from disk, and write `results.json` (docs/evaluation.md).

    OUT/predictions/   the generated frames (predict.py; reused by a rerun, resumed after a kill)
    OUT/videos/        ground truth | prediction mp4s, a few windows per source
    OUT/counterfactual.mp4, OUT/results.json (results.py: the contract with the report)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..data.clips import ClipDataset
from ..io.progress import progress_bar
from ..metrics import Skip, WeightsDir
from .baselines import delta_n
from .counterfactual import write_counterfactual
from .idm_hook import action_accuracy, open_idm
from .inputs import model_card, model_identity, model_layout, open_inputs
from .predict import PredictionStore, predict_all, read_batch, seed_count
from .protocols import Protocol, get_protocol, protocol_windows
from .results import EvaluationResults, MetricInfo
from .score import LoadedMetric, Scoring
from .scorers import METRICS, Pooled, ScoreContext, scoring_frames
from .sources import RANDOM, MODEL, Rollouts, Source, sources_for
from .videos import write_pair


@dataclass(frozen=True)
class EvaluateConfig:
    """One `vid2world evaluate` run; None means the protocol's (or the model's sampler's) own value."""

    model: str
    data: str
    protocol: str
    out: str
    weights: str | None = None
    idm: str | None = None
    windows: int | None = None
    batch: int = 4
    steps: int | None = None
    guidance: float | None = None
    seed: int = 0
    seeds: int | None = None
    device: str = "cpu"
    videos: int = 2  # side-by-side videos per source
    context: int | None = None  # generic protocol
    horizon: int | None = None
    stride: int | None = None
    overwrite: bool = False  # replace predictions made with other settings


def check_out(out: Path) -> None:
    """OUT must be new, empty, or an earlier evaluation's (rerun, resume): nothing else is written into."""
    if out.is_file() or (out.is_dir() and any(out.iterdir()) and not (out / "predictions").is_dir()):
        raise FileExistsError(f"{out}: exists and is not an evaluation's output directory; give a new --out")


def load_metrics(ctx: ScoreContext, windows: int) -> tuple[list[LoadedMetric], list[MetricInfo], list[str]]:
    """Every registered metric, loaded or skipped with its reason."""
    loaded, infos, notes = [], [], []
    for name, entry in METRICS.items():
        got = Skip(name, f"needs at least 2 windows, the evaluation has {windows}") \
            if isinstance(entry, Pooled) and windows < 2 else entry.load(ctx)
        if isinstance(got, Skip):
            infos.append(MetricInfo(name, entry.higher_is_better, entry.unit, skipped=got.reason))
            notes.append(str(got))
        else:
            loaded.append(LoadedMetric(entry, got[0]))
            infos.append(MetricInfo(name, entry.higher_is_better, entry.unit, convention=got[1]))
    return loaded, infos, notes


def window_id(i: int, clips: ClipDataset) -> str:
    w = clips.windows[i]
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in w.name)[:40]
    return f"{i:05d}-{safe}-{w.start}"


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


def evaluate(cfg: EvaluateConfig, command: list[str] | None = None, progress: bool = True) -> EvaluationResults:
    """Run one evaluation (see the module doc) and return what `results.json` holds."""
    out = Path(cfg.out)
    check_out(out)
    model, dataset = open_inputs(cfg.model, cfg.data, cfg.device)
    weights = WeightsDir.resolve(cfg.weights)
    idm = open_idm(cfg.idm, cfg.device, dataset)
    protocol = get_protocol(cfg.protocol, windows=cfg.windows, seeds=cfg.seeds, context=cfg.context,
                            horizon=cfg.horizon, stride=cfg.stride)
    windows, split_note = protocol_windows(dataset, protocol)
    layout = model_layout(model, dataset)
    clips = ClipDataset(dataset, replace(protocol.clip_config(), layout=layout, split=None), windows=windows)
    spec = dataset.meta.actions if model.action_dim is not None else None
    sources, notes = sources_for(model, spec, len(windows))
    notes = ([split_note] if split_note else []) + notes
    actions = None if spec is None else np.stack([np.asarray(clips.dataset.episode(w.episode).actions[
        w.start: w.start + protocol.clip_config().span: protocol.stride]) for w in windows])
    steps = cfg.steps or model.sampler.steps
    guidance = model.sampler.guidance.scale if cfg.guidance is None else cfg.guidance
    rollouts = Rollouts(model, protocol, steps, guidance, actions, spec, cfg.seed)
    batches = [list(range(i, min(i + cfg.batch, len(windows)))) for i in range(0, len(windows), cfg.batch)]
    settings = {"model": model_identity(cfg.model), "data": str(Path(cfg.data).resolve()),
                "protocol": protocol.to_dict(), "windows": [window_id(i, clips) for i in range(len(windows))],
                "layout": None if layout is None else vars(layout), "steps": steps, "guidance": guidance,
                "sampler": model.sampler.to_dict(), "seed": cfg.seed, "batch": cfg.batch,
                "sources": [s.name for s in sources]}
    store = PredictionStore(out / "predictions", settings, cfg.overwrite)
    made = predict_all(store, rollouts, sources, clips, batches, protocol.seeds, progress)
    size = protocol.score_size or tuple(clips[0]["frames"].shape[1:3])
    loaded, infos, skip_notes = load_metrics(ScoreContext(weights, cfg.device, protocol, size), len(windows))
    scoring = Scoring(protocol, loaded, scoring_frames(protocol, layout), idm)
    videos = score_all(scoring, store, sources, protocol, clips, batches, out, cfg.videos, progress)
    scores = [replace(scoring.source_scores(s, seed_count(s, protocol.seeds)), videos=videos[s.name])
              for s in sources]
    by_name = {s.name: s for s in scores}
    deltas, delta_notes = ({}, []) if RANDOM.name not in by_name else \
        delta_n(by_name[MODEL.name].means, by_name[RANDOM.name].means)
    results = EvaluationResults(
        protocol={**json.loads(json.dumps(protocol.to_dict())), "windows": len(windows), "seed": cfg.seed, "steps": steps,
                  "guidance": guidance, "batch": cfg.batch, "layout": settings["layout"],
                  "window_ids": settings["windows"]},
        model=model_card(cfg.model, model), command=list(command or []), windows=len(windows), metrics=infos,
        sources=scores, delta_n=deltas,
        action_accuracy=action_accuracy(idm, cfg.idm, scoring, sources) if idm is not None else {},
        counterfactual=write_counterfactual(rollouts, clips, store, out) if spec is not None else None,
        notes=notes + skip_notes + delta_notes + [f"predictions: {made} batch files made, the rest reused"])
    results.save(out)
    return results
