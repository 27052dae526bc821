"""A bundled model's card: what it was trained on, how long, on what machine, how well it does, how to rebuild it.
Written from the build directory's stage records and evaluations, never by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..data.store import open_dataset
from ..eval.paired import PairedDifference
from ..world.bundled import MODELS
from ..world.storage import WEIGHTS_NAME
from ..world.world_model import WorldModel
from .finish import stage
from .recipe import Recipe
from .stages import STAGE_FILE, episode_frames, reconstruction_psnr, refine_stage

SCORES = (("model", "model"), ("model, another episode's actions", "other actions"),
          ("copy last context frame", "copy last frame"), ("model, random actions", "random actions"))


def _data_rows(out: Path, recipe: Recipe) -> list[dict[str, Any]]:
    rows = []
    own = [recipe.target, recipe.heldout] + ([] if recipe.base else list(recipe.pretrain_data))
    roles = ["fine-tune (actions)", "held out"] + ["pretrain (no actions)"] * (len(own) - 2)
    for role, s in zip(roles, own):
        ds = open_dataset(out / "data" / s.name)
        rows.append({"role": role, "env": s.env, "seed": s.seed, "episodes": len(ds), "frames": ds.num_frames})
    if recipe.base:  # the pretrained model is the base's: its data as the base's card records it, else the recipe
        card = MODELS / recipe.base / "card.json"
        base = json.loads(card.read_text())["data"] if card.is_file() else [
            {"role": "pretrain", "env": s.env, "seed": s.seed, "episodes": s.episodes, "frames": None}
            for s in recipe.pretrain_data]
        rows += [{**r, "role": f"pretrain (no actions), {recipe.base}'s stage"} for r in base
                 if r["role"].startswith("pretrain")]
    return rows


def card_data(out: Path, recipe: Recipe, model: WorldModel, evals: dict[str, dict[str, Any]]) -> dict[str, Any]:
    names = ("autoencoder", "decoder", "pretrain", "finetune") + tuple(refine_stage(i)
                                                                      for i in range(len(recipe.refine))) \
        + (("distill",) if recipe.distill else ())
    # a build that went on from a kept stage has no record of the stages before it: the card lists those it has
    stages = {name: stage(out, name) for name in names if (out / name / STAGE_FILE).is_file()}
    for record in stages.values():  # keep the card small: the curves stay in the build directory
        for key in ("loss", "l1"):
            if key in record:
                values = record.pop(key)
                record[f"{key}_last50"] = round(sum(values[-50:]) / len(values[-50:]), 5)
    params = {"unet": sum(p.numel() for p in model.unet.parameters()),
              "autoencoder": sum(p.numel() for p in model.codec.parameters())}
    if recipe.base:  # the base's codec, scored on this model's held-out frames as well as on the base's
        heldout = episode_frames(open_dataset(out / "data" / recipe.heldout.name))
        stages["autoencoder"]["target_heldout_psnr"] = reconstruction_psnr(model.codec, heldout)
    return {"name": recipe.name, "description": recipe.description, "env": recipe.target.env, "base": recipe.base,
            "frame_size": recipe.frame_size, "parameters": params, "data": _data_rows(out, recipe),
            "stages": stages, "evaluation": evals, "rebuild": f"vid2world zoo build {recipe.name}",
            "weights": {"precision": recipe.weights},
            "heldout": f"Held-out episodes of {recipe.heldout.env} recorded from seed {recipe.heldout.seed}, never "
                       f"used for training; {recipe.eval_context} context frame(s), {recipe.eval_horizon} generated "
                       "autoregressively, every generated frame scored."}


def _metric_table(evals: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["| preset (DDIM steps, guidance, UNet precision) | source | PSNR (dB) | SSIM |", "|---|---|---|---|"]
    for preset, e in evals.items():
        for key, label in SCORES:
            means = e["sources"].get(key)
            if means:
                lines.append(f"| {preset} ({e['steps']}, {e['guidance']:g}, {e.get('precision', 'fp32')}) | {label} "
                             f"| {means['psnr']:.2f} | {means['ssim']:.3f} |")
    paired = [(p, label, e["paired"][key]["psnr"]) for p, e in evals.items() for key, label in SCORES[1:]
              if "psnr" in e.get("paired", {}).get(key, {})]
    if paired:
        lines += ["", "Window by window (the model's PSNR minus the baseline's on the same window, mean and 95% "
                      "bootstrap interval over the windows):", ""]
        lines += [f"- {preset}, against {label}: {PairedDifference(**d).text(2, ' dB')}, the model ahead on {d['wins']} "
                  f"of {d['windows']} windows" for preset, label, d in paired]
    acc = [(p, e["action_accuracy"]) for p, e in evals.items() if e.get("action_accuracy")]
    if acc:
        lines += ["", "Action accuracy (an inverse-dynamics model reads the action back from consecutive frames):", ""]
        for preset, a in acc:
            lines.append(f"- {preset}: {_accuracy_line(a)}")
    return lines


STORED = {"float16": "float16", "int8-rows": "int8 with a scale per output row (the codec in float16)"}


def _accuracy_line(a: dict[str, Any]) -> str:
    """`eval.idm_hook.action_accuracy`'s summary: floats under model / real / chance, or a note without them."""
    return ", ".join(f"{key} {a[key]:.3f}" for key in ("model", "real", "chance") if key in a) or a.get("note", "")


def card_markdown(data: dict[str, Any]) -> str:
    st = data["stages"]
    lines = [f"# {data['name']}", "", data["description"], "",
             f"Parameters: UNet {data['parameters']['unet'] / 1e6:.2f} M, autoencoder "
             f"{data['parameters']['autoencoder'] / 1e6:.2f} M; weights stored in "
             f"{STORED[data.get('weights', {}).get('precision', 'float16')]}.", "",
             "## Data", "", "| role | env | seed | episodes | frames |", "|---|---|---|---|---|"]
    lines += [f"| {r['role']} | {r['env']} | {r['seed']} | {r['episodes']} | {r['frames'] or '-'} |"
              for r in data["data"]]
    lines += ["", "## Training", "", "| stage | steps | wall time | machine | final loss (mean of last 50) |",
              "|---|---|---|---|---|"]
    for name, record in st.items():
        loss = record.get("loss_last50", record.get("l1_last50"))
        lines.append(f"| {name} | {record['config']['steps']} | {record['wall_s'] / 60:.1f} min | {record['machine']} "
                     f"| {loss} |")
    if "heldout_psnr" in st["autoencoder"]:
        whose = f" ({data['base']}'s)" if data.get("base") else ""
        lines += ["", f"Autoencoder{whose} reconstruction on held-out frames: {st['autoencoder']['heldout_psnr']:.2f} "
                      f"dB (latent scale factor {st['autoencoder']['scale_factor']})."]
        if "decoder" in st:
            lines[-1] += (f" Its decoder, fine-tuned on this model's frames with the encoder kept: "
                          f"{st['decoder']['heldout_psnr_before']:.2f} dB before, "
                          f"{st['decoder']['heldout_psnr']:.2f} dB after on this model's held-out frames.")
        if "target_heldout_psnr" in st["autoencoder"]:
            lines[-1] += (f" As shipped, on this model's held-out frames: "
                          f"{st['autoencoder']['target_heldout_psnr']:.2f} dB.")
    lines += ["", "## Held-out evaluation", "", f"{data['heldout']}", ""]
    lines += _metric_table(data["evaluation"])
    for old in data.get("replaced", []):
        steps = ", ".join(f"{name} {n}" for name, n in old["stages"].items())
        lines += ["", "## The model this one replaced", "", f"Trained in the stages {steps}; on the held-out "
                  "episodes it scored:", ""] + _metric_table(old["evaluation"])
    lines += requantized_section(data.get("weights", {}).get("requantized"))
    lines += ["", "## Rebuild", "", "```", data["rebuild"], "```", ""]
    return "\n".join(lines)


def requantized_section(record: dict[str, Any] | None) -> list[str]:
    """The card's lines on weights stored at a lower precision after the evaluation above: what that cost, paired
    window by window on the same held-out windows (`scripts/requantize_bundled.py`)."""
    if not record:
        return []
    lines = ["", f"## Weights in {record['precision'].split('-')[0]} ({record['date']})", "",
             f"The evaluation above ran the {record['from']} weights. Stored as now, against them, on "
             f"{record['windows']} held-out windows ({record['preset']} preset; 95% interval over the windows):", "",
             "| score | now - before |", "|---|---|"]
    lines += [f"| {name} | {gap} |" for name, gap in record["gaps"].items()]
    return lines + ["", f"Command: `{record['command']}`"]


def replaced_models(installed: Path, new: Path) -> list[dict[str, Any]]:
    """What the bundled model in `installed` scored, when `new` holds other weights, before those it replaced
    itself ([] when nothing is installed or the weights are the same)."""
    card_file = installed / "card.json"
    if not card_file.is_file():
        return []
    old = json.loads(card_file.read_text())
    weights = installed / WEIGHTS_NAME
    if weights.is_file() and weights.read_bytes() == (new / WEIGHTS_NAME).read_bytes():
        return old.get("replaced", [])  # the same model rebuilt: nothing replaced
    record = {"stages": {name: r["config"]["steps"] for name, r in old["stages"].items()},
              "evaluation": old["evaluation"]}
    return [record] + old.get("replaced", [])
