"""What an evaluation found, as one JSON file (`results.json` in the output directory): the contract between scoring
(`vid2world evaluate`) and the report, so either can change without the other.

Every number in it was computed by the same code on the same windows for every source (the model and the baselines).
Paths are relative to the output directory.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..io.atomic import write_text

RESULTS_FILE = "results.json"
FORMAT_VERSION = 1


@dataclass
class SourceScores:
    """One source of predictions scored on the evaluation windows: the model, or a baseline.

    `per_horizon[metric][h]` is the mean over windows of `metric` on the h-th scored frame; `means[metric]` is the
    metric's aggregate as method.md 10.1 defines it (mean over every scored frame; for set metrics such as FID and
    FVD, the distance over the pooled features, with no per-horizon curve)."""

    name: str  # "model", "copy last context frame", "model, another episode's actions", "model, random actions"
    kind: str  # "model" or "baseline": how the report draws it
    means: dict[str, float] = field(default_factory=dict)
    per_horizon: dict[str, list[float]] = field(default_factory=dict)
    videos: list[str] = field(default_factory=list)  # side-by-side ground truth | prediction mp4s
    std: dict[str, float] = field(default_factory=dict)  # over seeds, when the source ran with several (else empty)
    # each per-frame metric's mean over the scored frames of every window, in `protocol.window_ids`' order (averaged
    # over seeds): what pairs two evaluations of the same windows, e.g. the arms of `zoo ablate`
    per_window: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class MetricInfo:
    """How one metric was computed and read."""

    name: str  # "psnr", "ssim", "lpips", "fid", "fvd", "mse", "idm_accuracy"
    higher_is_better: bool
    unit: str = ""  # "dB", "" ...
    convention: str = ""  # the exact convention (value range, resize, network file), written into every output
    skipped: str | None = None  # why it was not computed (a missing weights file, named), None when computed


@dataclass
class EvaluationResults:
    """Everything the report shows. `delta_n[metric]` is method.md 10.3's Delta-N in percent (ground-truth vs random
    actions); `action_accuracy` holds the inverse-dynamics scores when an IDM was given."""

    protocol: dict[str, Any]  # name and every setting (context, horizon, stride, windows, scored frames, ...)
    model: dict[str, Any]  # the model card: directory, config summary, parameters, action space
    command: list[str]  # the command line that produced this
    windows: int  # how many evaluation windows were scored
    metrics: list[MetricInfo] = field(default_factory=list)
    sources: list[SourceScores] = field(default_factory=list)
    delta_n: dict[str, float] = field(default_factory=dict)
    # the model against each baseline window by window: {baseline: {metric: {difference, low, high, wins, windows}}}
    # (`eval.paired`: mean of model - baseline over the windows, its 95% bootstrap interval, windows the model wins)
    paired: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    action_accuracy: dict[str, Any] = field(default_factory=dict)  # {"idm": path, "real": acc, "model": acc, "chance": p}
    counterfactual: str | None = None  # grid video: one start, several action sequences
    notes: list[str] = field(default_factory=list)  # skips and anything else the reader must know
    format_version: int = FORMAT_VERSION

    def source(self, name: str) -> SourceScores:
        for s in self.sources:
            if s.name == name:
                return s
        raise KeyError(f"no source {name!r} in the results (have {[s.name for s in self.sources]})")

    def save(self, out_dir: str | os.PathLike) -> Path:
        path = Path(out_dir) / RESULTS_FILE
        write_text(path, json.dumps(asdict(self), indent=2, allow_nan=False) + "\n")
        return path

    @classmethod
    def load(cls, out_dir: str | os.PathLike) -> "EvaluationResults":
        path = Path(out_dir) / RESULTS_FILE
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no evaluation results here (run `vid2world evaluate` first)") from None
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from None
        if raw.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path}: format_version {raw.get('format_version')!r}, expected {FORMAT_VERSION}")
        raw["metrics"] = [MetricInfo(**m) for m in raw.get("metrics", [])]
        raw["sources"] = [SourceScores(**s) for s in raw.get("sources", [])]
        return cls(**raw)
