"""The last stages of `vid2world zoo build`: an inverse-dynamics model for action accuracy, the export (float16 or
int8 weights, the recipe's sampling presets), the evaluation of exactly what ships on held-out episodes (both sampling
presets), and the model card.

    OUT/idm/                the IDM (`vid2world idm train` on the target's data)
    OUT/model/              what ships: config.json, float16 / int8 safetensors, idm/, card.md, card.json
    OUT/eval-quality/, OUT/eval-fast/   `vid2world evaluate` outputs (results.json, report.html, videos)
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from ..eval.idm import FitConfig as IDMFitConfig, fit_idm, save_idm
from ..eval.idm.store import FORMAT as IDM_FORMAT, WEIGHTS_NAME as IDM_WEIGHTS
from ..eval.run import EvaluateConfig, evaluate
from ..io.atomic import AtomicDirectory, write_text
from ..io.weights import read_weights, write_weights
from ..world.world_model import COMPONENT_FILES, CONFIG_NAME, WEIGHTS_NAME
from .recipe import Recipe
from .stages import STAGE_FILE, refine_stage, sampler

EVAL_WINDOWS = {"quality": 6, "fast": 16}  # held-out windows per sampling preset in a full build


def train_idm(out: Path, data: Path, steps: int, progress: bool) -> Path:
    path = out / "idm"
    if not path.exists():
        save_idm(fit_idm(str(data), IDMFitConfig(steps=steps), progress=progress), path)
    return path


def evaluate_presets(out: Path, recipe: Recipe, model_dir: Path, heldout: Path, idm: Path, windows: dict[str, int],
                     progress: bool) -> dict[str, dict[str, Any]]:
    """`evaluate` on the held-out episodes with the quality (the model's default steps) and fast presets, on
    `windows[preset]` windows each (50 guided steps per frame cost 12x the fast preset's 4)."""
    results = {}
    for preset in windows:
        target = out / f"eval-{preset}"
        started = time.time()
        # predictions made with these exact settings are reused; any others are replaced
        cfg = EvaluateConfig(model=str(model_dir), data=str(heldout), protocol="generic", out=str(target),
                             idm=str(idm), windows=windows[preset], batch=8, preset=preset, overwrite=True,
                             context=recipe.eval_context, horizon=recipe.eval_horizon, videos=2,
                             counterfactual=recipe.eval_counterfactual,
                             split="all")  # the held-out recording's every episode: none was trained on
        evaluate(cfg, command=["vid2world", "zoo", "build", recipe.name], progress=progress)
        data = json.loads((target / "results.json").read_text())
        results[preset] = {"steps": data["protocol"]["steps"], "guidance": data["protocol"]["guidance"],
                           "precision": data["protocol"].get("precision", "fp32"),
                           "wall_s": round(time.time() - started, 1),
                           "sources": {s["name"]: s["means"] for s in data["sources"]},
                           "action_accuracy": data.get("action_accuracy", {}), "paired": data.get("paired", {}),
                           "dir": target.name}
    return results


def export(out: Path, recipe: Recipe, model_dir: Path, idm: Path) -> Path:
    """OUT/model (rewritten every time): the fine-tuned model with its backbone and IDM at the recipe's `weights`
    precision (float16 or int8-rows), its codec in float16, and the recipe's sampler (its codec from OUT/decoder
    when the recipe adapts the decoder), the IDM (for the demo's action accuracy) beside it."""
    path = out / "model"
    with AtomicDirectory(path, overwrite=path.exists()) as tmp:
        config = json.loads((model_dir / CONFIG_NAME).read_text())
        if not recipe.distill:  # a distilled student keeps its own: its steps, guidance off
            config["sampler"] = sampler(recipe).to_dict()
        config["metadata"] = {**config.get("metadata", {}), "card": "card.md"}
        (tmp.path / CONFIG_NAME).write_text(json.dumps(config, indent=1))
        shipped_weights(model_dir, tmp.path, recipe.weights)
        if recipe.decoder:  # the codec with the decoder adapted to the target (the same encoder, the same latents)
            shipped_weights(out / "decoder", tmp.path, recipe.weights)
        shutil.copytree(idm, tmp.path / "idm")
        shipped_idm_weights(tmp.path / "idm", recipe.weights)
    return path


def requantize(model_dir: Path, precision: str) -> None:
    """Rewrite a finished model directory's backbone and IDM weights at `precision`, in place and atomically
    (a bundled model moved to int8; its card says what that cost: scripts/requantize_bundled.py)."""
    with AtomicDirectory(model_dir, overwrite=True) as tmp:
        shutil.copytree(model_dir, tmp.path, dirs_exist_ok=True)
        shipped_weights(model_dir, tmp.path, precision)
        if (tmp.path / "idm").is_dir():
            shipped_idm_weights(tmp.path / "idm", precision)


def shipped_idm_weights(idm_dir: Path, precision: str) -> None:
    path = idm_dir / IDM_WEIGHTS
    write_weights(read_weights(path), path, precision, IDM_FORMAT.removeprefix("vid2world."))


def shipped_weights(model_dir: Path, target: Path, precision: str) -> None:
    """Every weight file of a world-model directory written into `target`: the backbone at `precision`, the
    codec and conditioner in float16 (their errors go straight into every pixel; they are small). Loading
    gives the model's float32 back."""
    for name in (WEIGHTS_NAME, *COMPONENT_FILES.values()):
        if (model_dir / name).is_file():
            write_weights(read_weights(model_dir / name), target / name,
                          precision if name == WEIGHTS_NAME else "float16", name.split(".")[0])


def keep_stages(out: Path, target: Path, recipe: Recipe) -> Path:
    """The stages worth keeping so a later build goes on where this one stopped (`zoo build --keep-stages DIR`):
    the autoencoder, the pretrained passive model (unless the recipe has them from its base), the latest finished
    fine-tune stage and the distilled student when there is one (weights in float16), each a stage directory. A
    build starts from the latest fine-tune stage present, so a next refine phase needs nothing else."""
    chain = ["finetune"] + [refine_stage(i) for i in range(len(recipe.refine))]
    finished = [name for name in chain if (out / name / STAGE_FILE).is_file()][-1:]
    if recipe.distill and (out / "distill" / STAGE_FILE).is_file():  # the student, beside the stage it came from
        finished.append("distill")
    with AtomicDirectory(target, overwrite=target.exists()) as tmp:
        if not recipe.base:  # a recipe with a base has its autoencoder and pretrain stages from there
            shutil.copytree(out / "autoencoder", tmp.path / "autoencoder")
        for name in ([] if recipe.base else ["pretrain"]) + finished:
            (tmp.path / name).mkdir()
            for file in (CONFIG_NAME, STAGE_FILE):
                shutil.copy2(out / name / file, tmp.path / name / file)
            shipped_weights(out / name, tmp.path / name, "float16")
    return target


def write_card(model_dir: Path, markdown: str, data: dict[str, Any]) -> None:
    write_text(model_dir / "card.md", markdown)
    write_text(model_dir / "card.json", json.dumps(data, indent=1) + "\n")


def stage(out: Path, name: str) -> dict[str, Any]:
    return json.loads((out / name / STAGE_FILE).read_text())
