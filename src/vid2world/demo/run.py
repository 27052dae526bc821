"""`vid2world demo`: the bundled ViZDoom world model against the real game, offline, nothing trained.

Writes into OUT: `side_by_side.mp4` (game | model | model under another episode's actions), `counterfactual.mp4`
and `counterfactual.png` (one start, four held actions: model above, game below), `report.md` and `report.json`
(scores with baselines, action accuracy, the turning test, the causality check). See `vizdoom` for the method.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .. import zoo
from ..bench.drift import measure_drift
from ..causal.diagnostics import ProbeInputs, future_leak
from ..metrics.drift import format_drift
from ..data.spec import ActionSpec
from ..eval.paired import PairedDifference
from ..eval.videos import grid
from ..io.atomic import atomic_file, write_text
from ..io.outputs import OutputDirectory
from ..io.progress import progress_bar
from ..io.video import write_video
from ..world.world_model import WorldModel
from .vizdoom import (DemoConfig, against_baselines, compare, counterfactual, frame_scores, record_starts,
                      turn_test)

MODEL = "vizdoom-deathmatch"
OUTPUTS = {"video": "side_by_side.mp4", "counterfactual": "counterfactual.mp4", "picture": "counterfactual.png",
           "report": "report.md", "json": "report.json"}


def causality_check(model: WorldModel, t: int = 3) -> float:
    """The largest change of any output frame <= t when frames after t change (0 for a strictly causal model)."""
    with torch.no_grad():
        leak = future_leak(model.unet, ProbeInputs.random(model.unet, batch=1, frames=8, size=16).to(model.device), t)
    return float(leak[: t + 1].max())


def action_accuracy(model_dir: Path, frames: np.ndarray, generated: np.ndarray, actions: np.ndarray
                    ) -> dict[str, Any] | None:
    """Accuracy of the actions the bundled IDM reads from the real and the generated frames (None without IDM)."""
    if not (model_dir / "idm").is_dir():
        return None
    from ..eval.idm import load_idm

    idm = load_idm(model_dir / "idm")
    padded = np.concatenate([actions, actions[:, -1:]], axis=1)  # the last frame's action is not scored
    real = idm.score(frames, padded)
    dreamed = idm.score(np.concatenate([frames[:, :1], generated], axis=1), padded)
    return {"real": real["action_accuracy"], "model": dreamed["action_accuracy"], "chance": real["chance_accuracy"]}


def run_demo(out: str | Path, device: str = "cpu", progress: bool = True, config: DemoConfig = DemoConfig()
             ) -> dict[str, Path]:
    """Run the demo (module doc) into `out`; returns the paths written. `out` must be new, empty or an earlier
    demo's: a file the demo did not write there is never replaced (checked before any work)."""
    directory = OutputDirectory(out, "demo", outputs=OUTPUTS.values(),
                                legacy=lambda path: all((path / n).is_file() for n in OUTPUTS.values()))
    started = time.time()
    model_dir = zoo.path(MODEL)
    model = zoo.load(MODEL, device=device)
    spec, env = ActionSpec.from_dict(model.metadata["actions"]), model.metadata["env"]
    sampling = model.sampling("fast", steps=config.steps)
    report: dict[str, Any] = {"model": MODEL, "env": env, "sampling": asdict(sampling), "config": asdict(config),
                              "causality_max_past_change": causality_check(model)}
    bar = progress_bar(total=5, desc="demo", unit="part", enabled=progress)
    played, acted = record_starts(env, model.metadata["frame_size"][0], config.starts, config.settle + config.horizon,
                                  config.seed)
    frames, actions = played[:, config.settle:], acted[:, config.settle:]
    predictions = compare(model, frames, actions, sampling)
    spawn = played[:, : config.horizon + 1]  # the same episodes from the spawn frame itself
    spawned = compare(model, spawn, acted[:, : config.horizon], sampling)
    bar.update(1)
    report["scores"] = frame_scores(frames[:, 1:], predictions)
    report["against_baselines"] = against_baselines(report["scores"])
    report["spawn_scores"] = frame_scores(spawn[:, 1:], spawned)
    report["spawn_against_baselines"] = against_baselines(report["spawn_scores"])
    report["action_accuracy"] = action_accuracy(model_dir, frames, predictions["model"], actions)
    bar.update(1)
    report["turning"] = turn_test(model, env, spec, config, sampling)
    bar.update(1)
    cells, labels = counterfactual(model, env, spec, config, sampling)
    bar.update(1)
    if config.drift_frames:
        report["drift"] = measure_drift(model, model_dir, config.drift_frames, config.drift_block, config.seed,
                                        sampling=sampling)
    bar.update(1)
    bar.close()
    report["wall_s"] = round(time.time() - started, 1)
    paths = dict(zip(OUTPUTS, directory.files(OUTPUTS.values())))
    return _write(paths, frames, predictions, cells, labels, report)


def _write(paths: dict[str, Path], frames: np.ndarray, predictions: dict[str, np.ndarray], cells: list[np.ndarray],
           labels: list[str], report: dict[str, Any]) -> dict[str, Path]:
    rows = []
    for i in range(min(4, len(frames))):
        rows += [frames[i], *(np.concatenate([frames[i, :1], predictions[k][i]]) for k in ("model", "other actions"))]
    names = ["game", "model", "model, other actions"] * (len(rows) // 3)
    write_video(grid(rows, names, columns=3), paths["video"], fps=4)
    sheet = grid(cells, labels, columns=4)
    write_video(sheet, paths["counterfactual"], fps=4)
    with atomic_file(paths["picture"]) as tmp:
        Image.fromarray(np.concatenate([sheet[len(sheet) // 2], sheet[-1]], axis=1)).save(tmp, format="PNG")
    write_text(paths["json"], json.dumps(report, indent=1) + "\n")
    write_text(paths["report"], report_markdown(report))
    return paths


def report_markdown(r: dict[str, Any]) -> str:
    lines = [f"# vid2world demo: {r['model']} against {r['env']}", "",
             f"{r['config']['starts']} fresh episodes (seed {r['config']['seed']}, never used for training), "
             f"{r['config']['horizon']} frames generated from one real frame with the game's actions, "
             f"{r['sampling']['steps']} DDIM steps per frame, guidance {r['sampling']['guidance']:g}; "
             f"{r['wall_s']:.0f} s in all.", "",
             "| source | PSNR (dB) | SSIM |", "|---|---|---|"]
    lines += [f"| {name} | {s['psnr']:.2f} | {s['ssim']:.3f} |" for name, s in r["scores"].items()]
    if "spawn_scores" in r:
        spawn, gap = r["spawn_scores"], r["spawn_against_baselines"]["copy last frame"]
        lines += ["", f"Starts are taken {r['config']['settle']} game steps after the spawn: at the spawn the player "
                      "stands still for a step, which one context frame cannot show. From the spawn frame itself the "
                      f"model scores {spawn['model']['psnr']:.2f} dB against {spawn['copy last frame']['psnr']:.2f} "
                      f"for the copied frame; model − copy: {PairedDifference(**gap).text(2, ' dB')}."]
    paired = r.get("against_baselines", {})
    if paired:
        lines += ["", "Start by start (the model's PSNR minus the baseline's on the same start, mean and 95% bootstrap "
                      "interval over the starts):", ""]
        lines += [f"- against {name}: {PairedDifference(**d).text(2, ' dB')}, the model ahead on {d['wins']} of "
                  f"{d['windows']} starts" for name, d in paired.items()]
    acc = r.get("action_accuracy")
    if acc:
        lines += ["", f"Action accuracy (the inverse-dynamics model reads the actions back): model frames "
                      f"{acc['model']:.3f}, real frames {acc['real']:.3f}, chance {acc['chance']:.3f}."]
    turn = r["turning"]
    lines += ["", f"## Turning: {turn['follows']} of {turn['of']} starts follow the game",
              "", f"Hold a turn of {turn['turn_degrees_per_step']:g} degrees per step for {turn['steps']} steps; mean "
                  "horizontal view shift per step in pixels (phase correlation of consecutive frames). A start "
                  "follows when both directions match the game's sign and lie within a factor of 2 of its size.",
              "", "| start seed | game, left | model, left | game, right | model, right | follows |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {s['seed']} | {s['game_left']:+.2f} | {s['model_left']:+.2f} | {s['game_right']:+.2f} | "
              f"{s['model_right']:+.2f} | {'yes' if s['follows'] else 'no'} |" for s in turn["starts"]]
    drift = r.get("drift")
    if drift:
        lines += ["", f"## A long session: {drift['frames']} frames beside the real game", "",
                  "The scripted policy drives the model and the real game with the same actions from the same start "
                  "frame; per block, each statistic's mean for the model and the game (`vid2world bench drift`, "
                  "docs/results.md). A collapse to blur, grey, noise or a frozen picture would fail it.", "",
                  format_drift(drift), "",
                  f"The codec's own round trip keeps {drift['codec_sharpness_ratio']:.2f} of the real frames' "
                  "sharpness: the most a model drawing through it can keep."]
        if "idm_accuracy" in drift["blocks"][0]:
            pairs = ", ".join(f"{row['idm_accuracy']['model']:.2f} / {row['idm_accuracy']['real']:.2f}"
                              for row in drift["blocks"])
            lines += ["", f"IDM action accuracy per block (model / real): {pairs}."]
    lines += ["", f"Causality check: the largest change of a past output when the future changes: "
                  f"{r['causality_max_past_change']:.1e} (0 = strictly causal).", ""]
    return "\n".join(lines)
