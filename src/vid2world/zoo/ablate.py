"""`vid2world zoo ablate NAME`: the paper's claims in miniature, on a bundled model's data at equal budgets.

Every arm fine-tunes a world model from the build's committed stages with the same steps, batch and seeds, and
differs from the shipped recipe's conversion in one thing; every run is scored by `vid2world evaluate` on the same
held-out windows (the fast preset, at each guidance scale of the sweep for the `transfer` arm).

    OUT/runs/<arm>-s<seed>/               the fine-tuned world model (stage.json: wall time, losses, config)
    OUT/runs/<arm>-s<seed>/eval-<S>x-g<G>/   its evaluation: S DDIM steps (the recipe's fast preset), guidance G
    OUT/ablations.json, OUT/ablations.md, OUT/per-horizon.png   means and spreads over the seeds

A run or evaluation whose directory is complete is kept, so the command resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..diffusion.guidance import GuidanceConfig
from ..eval.paired import paired_difference
from ..eval.predict import SETTINGS_FILE
from ..eval.results import EvaluationResults
from ..eval.run import EvaluateConfig, evaluate
from ..io.atomic import absolute
from ..world.world_model import WorldModel
from . import finish, stages
from .ablate_report import SWEEP_TITLE, write_summary
from .build import build
from .recipe import Conversion, Recipe


@dataclass(frozen=True)
class Arm:
    """One way to get a world model from the passive video model."""

    description: str
    transfer: str = "extrapolative"
    temporal_norm: str = "frame"
    from_scratch: bool = False  # the same causal UNet from random weights, not from the pretrained model


ARMS = {
    "transfer": Arm("pretrained, extrapolative transfer, frame norm (the shipped conversion)"),
    "scratch": Arm("random weights, same architecture and fine-tuning", from_scratch=True),
    "masked": Arm("pretrained, masked transfer", transfer="masked"),
    "shift": Arm("pretrained, shift transfer", transfer="shift"),
    "norm-causal": Arm("pretrained, causal temporal norm", temporal_norm="causal"),
    "norm-clip": Arm("pretrained, clip temporal norm (not strictly causal: the window is recomputed)",
                     temporal_norm="clip"),
}
COMPARISONS = (("(a) transferred vs from scratch", ("transfer", "scratch")),
               ("(b) weight transfer", ("transfer", "masked", "shift")),
               ("(d) temporal norm", ("transfer", "norm-causal", "norm-clip")))
SWEEP_ARM = "transfer"  # (c): the guidance sweep runs on this arm
PAIRED_METRICS = ("psnr", "ssim")  # per-frame scores, higher is better: the arms are paired window by window on them


@dataclass(frozen=True)
class AblationConfig:
    build: str  # the zoo build directory: data, latents, autoencoder, pretrain (made or resumed when missing)
    out: str
    steps: int = 150
    batch: int = 4
    seeds: int = 3
    arms: tuple[str, ...] = tuple(ARMS)
    guidances: tuple[float, ...] = (1.0,)  # besides the fast preset's: 1 = no guidance
    windows: int = 16
    idm_steps: int = 1500

    def __post_init__(self) -> None:
        unknown = [a for a in self.arms if a not in ARMS]
        if unknown:
            raise ValueError(f"--arms: unknown arm(s) {unknown}; expected some of {list(ARMS)}")


def run_name(arm: str, seed: int) -> str:
    return f"{arm}-s{seed}"


def arm_recipe(recipe: Recipe, arm: Arm, cfg: AblationConfig, seed: int) -> Recipe:
    """The recipe one run fine-tunes with: the arm's conversion, the ablation's budget, the run's seed."""
    tune = dataclasses.replace(recipe.finetune, steps=cfg.steps, batch=cfg.batch, seed=seed,
                               warmup=min(recipe.finetune.warmup, cfg.steps // 10))
    return dataclasses.replace(recipe, conversion=Conversion(arm.transfer, arm.temporal_norm), finetune=tune,
                               pretrain=dataclasses.replace(recipe.pretrain, seed=seed))


def fast_guidance(recipe: Recipe) -> float:
    return recipe.fast_guidance if recipe.fast_guidance is not None else GuidanceConfig().scale


def evaluations(cfg: AblationConfig, recipe: Recipe, arm: str) -> list[float]:
    """The guidance scales a run of `arm` is scored at: the sweep for its arm, else the fast preset's scale. Every
    evaluation samples with the recipe's fast preset (steps, precision), whatever the run's saved config says."""
    fast = fast_guidance(recipe)
    return sorted(set(cfg.guidances) | {fast}) if arm == SWEEP_ARM else [fast]


def run_ablations(recipe: Recipe, cfg: AblationConfig, progress: bool = True) -> dict[str, Any]:
    """Train and evaluate every (arm, seed) still missing under OUT/runs, then write the summary; returns it."""
    build_dir = build(recipe, cfg.build, progress=progress, until="pretrain")
    say = print if progress else (lambda *a, **k: None)
    target = stages.dataset(build_dir, recipe.target, recipe, True, 2, False)
    heldout = stages.dataset(build_dir, recipe.heldout, recipe, True, 2, False)
    codec = stages.load_codec(build_dir / "autoencoder")
    passive = WorldModel.from_pretrained(build_dir / "pretrain")
    latents, actions = stages.training_episodes(target, stages.cached_latents(build_dir, target, recipe.target, codec))
    idm = finish.train_idm(build_dir, target.root, cfg.idm_steps, progress)
    metadata = stages.world_metadata(recipe, target)
    out = absolute(cfg.out)
    for seed in range(cfg.seeds):
        for name in cfg.arms:
            arm, path = ARMS[name], out / "runs" / run_name(name, seed)
            if not path.is_dir():
                recipe_s = arm_recipe(recipe, arm, cfg, seed)
                source = stages.passive_model(recipe_s, codec) if arm.from_scratch else passive
                world = stages.world_model(recipe_s, source, metadata, target.meta.actions.model_space())
                stages.finetune(path, recipe_s.finetune, world, latents, actions, progress)
                say(f"{path.name}: {stages.describe(path)}")
            for g in evaluations(cfg, recipe, name):
                evaluate_run(path, g, cfg, recipe, heldout.root, idm, progress)
    summary = summarize(out, cfg, recipe)
    write_summary(out, summary, COMPARISONS, SWEEP_ARM)
    return summary


def eval_dir(path: Path, recipe: Recipe, guidance: float) -> Path:
    return path / f"eval-{recipe.fast_steps}x-g{guidance:g}"


def evaluate_run(path: Path, guidance: float, cfg: AblationConfig, recipe: Recipe, heldout: Path, idm: Path,
                 progress: bool) -> Path:
    target = eval_dir(path, recipe, guidance)
    if scored_as_asked(target, cfg.windows):
        return target
    ecfg = EvaluateConfig(model=str(path), data=str(heldout), protocol="generic", out=str(target), idm=str(idm),
                          windows=cfg.windows, split="all", batch=8, steps=recipe.fast_steps, guidance=guidance,
                          precision=recipe.fast_precision, overwrite=True, context=recipe.eval_context,
                          horizon=recipe.eval_horizon, videos=0, counterfactual=False,
                          random_actions=False)  # the arms are compared with each other, not with random actions
    evaluate(ecfg, command=["vid2world", "zoo", "ablate", recipe.name], progress=progress)
    return target


def scored_as_asked(target: Path, windows: int) -> bool:
    """An evaluation to keep: asked for these windows of every held-out episode, with per-window scores in its
    results (what pairs the arms). Any other is made again; `evaluate` reuses its predictions when they match."""
    try:
        results = EvaluationResults.load(target)
        asked = json.loads((target / "predictions" / SETTINGS_FILE).read_text())["protocol"]
    except (FileNotFoundError, ValueError, KeyError):
        return False
    every_episode = "split" in asked and asked["split"] is None  # how `--split all` is recorded
    return asked.get("windows") == windows and every_episode and all(s.per_window for s in results.sources)


def run_scores(eval_dir: Path) -> dict[str, Any]:
    """One evaluation's numbers: the model's PSNR, SSIM and per-horizon PSNR, the other-actions rollout's PSNR,
    and the inverse-dynamics model's action accuracy on the model's frames."""
    data = json.loads((eval_dir / "results.json").read_text())
    sources = {s["name"]: s for s in data["sources"]}
    model = sources["model"]
    other = next((s for name, s in sources.items() if name.startswith("model, another")), None)
    return {"psnr": model["means"]["psnr"], "ssim": model["means"]["ssim"],
            "psnr_other_actions": None if other is None else other["means"]["psnr"],
            "action_accuracy": data.get("action_accuracy", {}).get("model"),
            "psnr_per_horizon": model.get("per_horizon", {}).get("psnr", []),
            "window_ids": data["protocol"].get("window_ids", []),
            "per_window": {m: model.get("per_window", {}).get(m, []) for m in PAIRED_METRICS}}


def pair_cells(mine: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """One cell against another on the same windows: per metric, mine - reference window by window (each window's
    score averaged over the seeds first; `eval.paired`'s interval), and the seeds whose mean PSNR is ahead of the
    reference's run with the same seed."""
    runs = mine["seeds"] + reference["seeds"]
    if len({tuple(r["window_ids"]) for r in runs}) != 1 or not all(r["per_window"]["psnr"] for r in runs):
        raise ValueError("ablations: two arms scored on different windows, or without per-window scores, cannot be "
                         "paired; run `zoo ablate` again to score them alike")
    out: dict[str, Any] = {
        m: asdict(paired_difference(np.mean([r["per_window"][m] for r in mine["seeds"]], axis=0),
                                    np.mean([r["per_window"][m] for r in reference["seeds"]], axis=0), True))
        for m in PAIRED_METRICS}
    out["seeds_ahead"] = sum(a["psnr"] > b["psnr"] for a, b in zip(mine["seeds"], reference["seeds"]))
    return out


def pair_arms(cells: dict[str, Any], fast: float) -> dict[str, Any]:
    """Each comparison's arms against its first (at the fast preset's guidance), and the sweep's scales against
    the fast preset's: {title: {"reference": cell, "arms": {cell: pair_cells(...)}}}."""
    groups = [(title, [f"{a}@{fast:g}" for a in arms]) for title, arms in COMPARISONS]
    sweep = sorted((k for k in cells if k.startswith(f"{SWEEP_ARM}@")), key=lambda k: float(k.split("@")[1]))
    groups.append((SWEEP_TITLE, [f"{SWEEP_ARM}@{fast:g}"] + [k for k in sweep if k != f"{SWEEP_ARM}@{fast:g}"]))
    out = {}
    for title, keys in groups:
        present = [k for k in keys if k in cells]
        if len(present) > 1 and present[0] == keys[0]:
            out[title] = {"reference": keys[0], "arms": {k: pair_cells(cells[k], cells[keys[0]]) for k in present[1:]}}
    return out


def _spread(values: list[float]) -> dict[str, float]:
    v = np.asarray([x for x in values if x is not None], dtype=float)
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": int(len(v))}


def summarize(out: Path, cfg: AblationConfig, recipe: Recipe) -> dict[str, Any]:
    """Mean and standard deviation over seeds of every run's scores, per (arm, guidance)."""
    cells: dict[str, dict[str, Any]] = {}
    for name in cfg.arms:
        for g in evaluations(cfg, recipe, name):
            runs = [run_scores(eval_dir(out / "runs" / run_name(name, s), recipe, g)) for s in range(cfg.seeds)]
            cell = {key: _spread([r[key] for r in runs])
                    for key in ("psnr", "ssim", "psnr_other_actions", "action_accuracy")}
            cell["psnr_per_horizon"] = np.mean([r["psnr_per_horizon"] for r in runs], axis=0).round(4).tolist()
            cell["seeds"] = runs
            cells[f"{name}@{g:g}"] = cell
    return {"recipe": recipe.name, "budget": {"steps": cfg.steps, "batch": cfg.batch, "clip": recipe.finetune.clip,
                                              "seeds": cfg.seeds, "windows": cfg.windows},
            "sampling": {"steps": recipe.fast_steps, "precision": recipe.fast_precision},
            "arms": {a: ARMS[a].description for a in cfg.arms}, "fast_guidance": fast_guidance(recipe),
            "cells": cells, "paired": pair_arms(cells, fast_guidance(recipe))}
