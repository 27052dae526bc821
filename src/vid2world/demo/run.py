"""`vid2world demo`: the main job on a fresh machine, offline.

Until bundled simulator models ship, the demo shows the core of vid2world on CPU in a few minutes:
1. causalization: the tiny DynamiCrafter-architecture UNet (random stand-in weights) causalized in each
   temporal-norm mode, and how much each variant's past outputs move when the future changes (`causality.png`);
2. a world model: a tiny causal UNet trained with Diffusion Forcing on a square steered by the action, saved as a
   world-model directory, and rolled out frame by frame from one frame and an action sequence (`rollout.mp4`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from ..bench.causal import format_study, run_study
from ..io.atomic import atomic_file, write_text
from ..world.world_model import WorldModel
from .square import rollout_video, train_square_world


def leak_heatmap(result: dict[str, Any], path: Path) -> None:
    """One row per model variant, one cell per frame; colour = log10 of the output change when the frames after
    `leak_at` are perturbed. Black = exactly zero (strictly causal)."""
    rows = [r for r in result["rows"] if r["transfer"] in (None, "extrapolative")]
    frames, t = result["frames"], result["leak_at"]
    cell, left, top = 44, 250, 58
    width, height = left + cell * frames + 20, top + cell * len(rows) + 56
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    draw.text((10, 8), f"Output change per frame when frames {t + 1}..{frames - 1} are perturbed", fill="black")
    draw.text((10, 24), "(black = exactly 0: frame cannot see the future)", fill="black")
    for j in range(frames):
        draw.text((left + j * cell + 14, top - 16), f"t{j}", fill="black")
    for i, r in enumerate(rows):
        label = "original (full-sequence)" if r["transfer"] is None else f"causal, norm={r['temporal_norm']}"
        y = top + i * cell
        draw.text((10, y + cell // 2 - 6), label, fill="black")
        for j, value in enumerate(r["leak_per_frame"]):
            level = 0.0 if value <= 0 else min(1.0, max(0.0, (math.log10(value) + 7) / 7.5))  # 1e-7 .. ~3
            colour = (0, 0, 0) if value <= 0 else (int(255 * level), int(180 * (1 - level)), 40)
            draw.rectangle([left + j * cell, y, left + (j + 1) * cell - 2, y + cell - 2], fill=colour)
            draw.text((left + j * cell + 4, y + cell // 2 - 6), f"{value:.0e}" if value else "0", fill="white")
    x_cut = left + (t + 1) * cell - 1
    draw.line([x_cut, top - 4, x_cut, top + cell * len(rows)], fill="blue", width=2)
    draw.text((10, height - 40), "left of the blue line: the past; right: the perturbed future", fill="blue")
    img.save(path)


def run_demo(out: str | Path, device: str = "cpu", train_steps: int = 320, progress: bool = True) -> dict[str, Path]:
    """Write the causality study (`study.json`, `study.md`, `causality.png`), a trained square-world model
    (`square-world-model/`, reused when present) and its rollouts (`rollout.mp4`, `report.json`) into `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result = run_study(device=device)
    paths = {"json": out / "study.json", "markdown": out / "study.md", "picture": out / "causality.png",
             "model": out / "square-world-model", "video": out / "rollout.mp4", "report": out / "report.json"}
    write_text(paths["json"], json.dumps(result, indent=1))
    write_text(paths["markdown"], format_study(result) + "\n")
    with atomic_file(paths["picture"]) as tmp:
        leak_heatmap(result, tmp)

    losses: list[float] = []
    if (paths["model"] / "config.json").is_file():
        model = WorldModel.from_pretrained(paths["model"], device=device)
    else:
        model, losses = train_square_world(steps=train_steps, progress=progress)
        model.to(device).save_pretrained(paths["model"])
    report = rollout_video(model, out, progress=progress)
    report["train_steps"], report["loss_first_last"] = train_steps, losses[:1] + losses[-1:]
    write_text(paths["report"], json.dumps(report, indent=1))
    return paths
