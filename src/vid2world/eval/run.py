"""`evaluate`: infer every source to disk, then score them from disk, and write `results.json` (docs/evaluation.md).

    OUT/predictions/   the generated frames (predict.py; reused by a rerun, resumed after a kill)
    OUT/videos/        ground truth | prediction mp4s, a few windows per source
    OUT/counterfactual.mp4, OUT/results.json (results.py: the contract with the report)
    OUT/report.md, OUT/report.html, OUT/plots/ (report.py, from results.json)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..data.clips import ClipDataset
from ..data.transforms import FrameLayout
from ..metrics import WeightsDir
from .baselines import delta_n
from ..io.outputs import OutputDirectory
from .counterfactual import FILE as COUNTERFACTUAL
from .counterfactual import write_counterfactual
from .idm_hook import DETAILS as IDM_DETAILS
from .idm_hook import action_accuracy, open_idm
from .inputs import model_card, model_identity, model_layout, open_inputs
from .predict import SETTINGS_FILE, PredictionStore, predict_all, seed_count, window_id
from .protocols import Protocol, get_protocol, protocol_windows, with_split
from .report.plots import PLOTS_DIR
from .report.write import REPORT_HTML, REPORT_MD, write_report
from .results import RESULTS_FILE, EvaluationResults
from .score import Scoring, model_against_baselines, score_all
from .scorers import ScoreContext, load_metrics, scoring_frames
from .sources import MODEL, RANDOM, Rollouts, Source, sources_for


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
    preset: str | None = None  # "fast" | "quality": the model's sampling preset, when `steps` is not given
    guidance: float | None = None
    precision: str | None = None  # the UNet's (fp32 | bf16); None: the preset's
    seed: int = 0
    seeds: int | None = None
    device: str = "cpu"
    videos: int = 2  # side-by-side videos per source
    counterfactual: bool = True  # the held-action grid of window 0 (models with actions)
    context: int | None = None  # generic protocol
    horizon: int | None = None
    stride: int | None = None
    split: str | None = None  # the split the windows come from (None: the protocol's); "all": every episode
    overwrite: bool = False  # replace predictions made with other settings
    random_actions: bool = True  # the random-actions baseline and Delta-N (off for comparisons between models)


# what an evaluation writes at the top of OUT
OUTPUTS = ("predictions", RESULTS_FILE, REPORT_MD, REPORT_HTML, PLOTS_DIR, "videos", COUNTERFACTUAL, IDM_DETAILS)


def check_out(out: Path) -> OutputDirectory:
    """OUT must be new, empty, or an earlier evaluation's (rerun, resume); a file of the user's there, even under
    an evaluation's name, is refused before any work and never replaced."""
    return OutputDirectory(out, "evaluate", outputs=OUTPUTS,
                           legacy=lambda path: (path / "predictions" / SETTINGS_FILE).is_file())


@dataclass(frozen=True)
class Plan:
    """What one evaluation works on, all decided and checked before the first rollout."""

    out: Path
    outputs: OutputDirectory
    protocol: Protocol
    clips: ClipDataset
    layout: FrameLayout | None
    sources: list[Source]
    rollouts: Rollouts
    batches: list[list[int]]
    weights: WeightsDir
    idm: Any
    notes: list[str]


def make_plan(cfg: EvaluateConfig) -> Plan:
    out = check_out(Path(cfg.out))
    model, dataset = open_inputs(cfg.model, cfg.data, cfg.device)
    protocol = get_protocol(cfg.protocol, windows=cfg.windows, seeds=cfg.seeds, context=cfg.context,
                            horizon=cfg.horizon, stride=cfg.stride)
    protocol = with_split(protocol, cfg.split, dataset)
    windows, split_note = protocol_windows(dataset, protocol)
    layout = model_layout(model, dataset)
    clips = ClipDataset(dataset, replace(protocol.clip_config(), layout=layout, split=None), windows=windows)
    spec = dataset.meta.actions if model.action_dim is not None else None
    sources, notes = sources_for(model, spec, len(windows), cfg.random_actions)
    rows = slice(0, protocol.clip_config().span, protocol.stride)
    actions = None if spec is None else np.stack(
        [np.asarray(dataset.episode(w.episode).actions[w.start:][rows]) for w in windows])
    sampling = model.sampling(cfg.preset, steps=cfg.steps, guidance=cfg.guidance, precision=cfg.precision)
    rollouts = Rollouts(model, protocol, sampling, actions, spec, cfg.seed)
    batches = [list(range(i, min(i + cfg.batch, len(windows)))) for i in range(0, len(windows), cfg.batch)]
    return Plan(out.path, out, protocol, clips, layout, sources, rollouts, batches, WeightsDir.resolve(cfg.weights),
                open_idm(cfg.idm, cfg.device, dataset), ([split_note] if split_note else []) + notes)


def settings_of(cfg: EvaluateConfig, plan: Plan) -> dict[str, Any]:
    """Everything the predictions depend on: a rerun with any of it changed must not reuse them."""
    r = plan.rollouts
    return json.loads(json.dumps({
        "model": model_identity(cfg.model), "data": str(Path(cfg.data).resolve()), "protocol": plan.protocol.to_dict(),
        "windows": [window_id(i, plan.clips) for i in range(len(plan.clips))],
        "layout": None if plan.layout is None else vars(plan.layout), "steps": r.sampling.steps,
        "guidance": r.sampling.guidance, "precision": r.sampling.precision,
        "sampler": r.model.sampler.to_dict(), "seed": cfg.seed, "batch": cfg.batch,
        "sources": [s.name for s in plan.sources]}))


def evaluate(cfg: EvaluateConfig, command: list[str] | None = None, progress: bool = True) -> EvaluationResults:
    """Run one evaluation (see the module doc) and return what `results.json` holds."""
    plan = make_plan(cfg)
    protocol, settings = plan.protocol, settings_of(cfg, plan)
    plan.outputs.files(OUTPUTS)  # the directory and its record, now that the inputs are checked
    store = PredictionStore(plan.out / "predictions", settings, cfg.overwrite)
    made = predict_all(store, plan.rollouts, plan.sources, plan.clips, plan.batches, protocol.seeds, progress)
    size = protocol.score_size or tuple(plan.clips[0]["frames"].shape[1:3])
    loaded, infos, skip_notes = load_metrics(ScoreContext(plan.weights, cfg.device, protocol, size),
                                             len(plan.clips))
    scoring = Scoring(protocol, loaded, scoring_frames(protocol, plan.layout), plan.idm)
    videos = score_all(scoring, store, plan.sources, protocol, plan.clips, plan.batches, plan.out, cfg.videos,
                       progress)
    scores = [replace(scoring.source_scores(s, seed_count(s, protocol.seeds)), videos=videos[s.name])
              for s in plan.sources]
    by_name = {s.name: s for s in scores}
    deltas, delta_notes = ({}, []) if RANDOM.name not in by_name else \
        delta_n(by_name[MODEL.name].means, by_name[RANDOM.name].means)
    has_actions = plan.rollouts.spec is not None
    results = EvaluationResults(
        protocol={**settings["protocol"], "windows": len(plan.clips), "seed": cfg.seed, "steps": settings["steps"],
                  "guidance": settings["guidance"], "precision": settings["precision"], "batch": cfg.batch, "layout": settings["layout"],
                  "window_ids": settings["windows"]},
        model=model_card(cfg.model, plan.rollouts.model), command=list(command or []), windows=len(plan.clips),
        metrics=infos, sources=scores, delta_n=deltas, paired=model_against_baselines(scores, infos),
        action_accuracy={} if plan.idm is None else action_accuracy(plan.idm, cfg.idm, scoring, plan.sources,
                                                                               plan.out),
        counterfactual=write_counterfactual(plan.rollouts, plan.clips, store, plan.out)
        if has_actions and cfg.counterfactual else None,
        notes=plan.notes + skip_notes + delta_notes + [f"predictions: {made} batch files made, the rest reused"])
    results.save(plan.out)
    write_report(plan.out)
    return results
