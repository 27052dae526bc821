"""The tables of docs/results.md, from a finished `vid2world zoo build` directory and a `vid2world demo` output:

    vid2world zoo build vizdoom-deathmatch --out build/zoo/vizdoom-deathmatch
    vid2world demo --out out/demo
    python scripts/zoo_results.py build/zoo/vizdoom-deathmatch out/demo

prints Markdown: the held-out scores of both sampling presets with the baselines, the per-horizon PSNR, the action
accuracy, and the demo's turning test. Nothing here is typed by hand."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from vid2world.eval.paired import PairedDifference

SOURCES = ("model", "model, another episode's actions", "model, random actions", "copy last context frame")
HORIZONS = (1, 2, 4, 8, 12, 16)


def heldout_tables(build: Path) -> list[str]:
    lines = ["| preset | DDIM steps | guidance | source | PSNR (dB) | SSIM |", "|---|---|---|---|---|---|"]
    curves = ["| preset | source | " + " | ".join(f"t+{h}" for h in HORIZONS) + " |",
              "|---|---|" + "---|" * len(HORIZONS)]
    windows: list[str] = []
    accuracy = ["| preset | IDM on real frames | IDM on model frames | other actions | random actions | chance |",
                "|---|---|---|---|---|---|"]
    for preset in ("quality", "fast"):
        if not (build / f"eval-{preset}" / "results.json").is_file():
            continue  # a build run with --eval-presets fast
        r = json.loads((build / f"eval-{preset}" / "results.json").read_text())
        steps, guidance = r["protocol"]["steps"], r["protocol"]["guidance"]
        by_name = {s["name"]: s for s in r["sources"]}
        for name in SOURCES:
            if name in by_name:
                m = by_name[name]["means"]
                lines.append(f"| {preset} | {steps} | {guidance:g} | {name} | {m['psnr']:.2f} | {m['ssim']:.3f} |")
                curve = by_name[name]["per_horizon"].get("psnr", [])
                cells = [f"{curve[h - 1]:.2f}" if h <= len(curve) else "" for h in HORIZONS]
                curves.append(f"| {preset} | {name} | " + " | ".join(cells) + " |")
        a = r.get("action_accuracy") or {}
        if "model" in a:
            src = a.get("sources", {})
            accuracy.append(f"| {preset} | {a['real']:.3f} | {a['model']:.3f} | "
                            f"{src.get(SOURCES[1], float('nan')):.3f} | {src.get(SOURCES[2], float('nan')):.3f} | "
                            f"{a['chance']:.3f} |")
        windows.append(f"{preset} {r['windows']}")
    return ([f"Held-out windows per preset: {', '.join(windows)}; 1 context frame, 16 generated frames, every one "
             "scored.", ""] + lines +
            ["", "PSNR (dB) by horizon:", ""] + curves + ["", "Action accuracy:", ""] + accuracy)


def turning_table(demo: Path) -> list[str]:
    r = json.loads((demo / "report.json").read_text())
    t = r["turning"]
    lines = [f"{t['follows']} of {t['of']} starts follow the game (turn of {t['turn_degrees_per_step']:g} degrees "
             f"per step held for {t['steps']} steps; {r['sampling']['steps']} DDIM steps, guidance "
             f"{r['sampling']['guidance']:g}).", "",
             "| start seed | game, left | model, left | game, right | model, right | follows |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {s['seed']} | {s['game_left']:+.2f} | {s['model_left']:+.2f} | {s['game_right']:+.2f} | "
              f"{s['model_right']:+.2f} | {'yes' if s['follows'] else 'no'} |" for s in t["starts"]]
    scores, gaps, cfg = r["scores"], r.get("against_baselines", {}), r["config"]
    lines += ["", f"Demo rollouts ({cfg['starts']} fresh episodes, seed {cfg['seed']}, starts {cfg.get('settle', 0)} "
                  "steps after the spawn):", "",
              "| source | PSNR (dB) | SSIM | model − source, PSNR (95% interval over the starts) |", "|---|---|---|---|"]
    for name, s in scores.items():
        d = gaps.get(name)
        gap = f"{PairedDifference(**d).text(2)}, {d['wins']} of {d['windows']}" if d else ""
        lines.append(f"| {name} | {s['psnr']:.2f} | {s['ssim']:.3f} | {gap} |")
    if "spawn_scores" in r:
        spawn, d = r["spawn_scores"], r["spawn_against_baselines"]["copy last frame"]
        lines += ["", f"From the spawn frame itself: model {spawn['model']['psnr']:.2f} dB, copy last frame "
                      f"{spawn['copy last frame']['psnr']:.2f} dB; model − copy {PairedDifference(**d).text(2)}."]
    return lines


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python scripts/zoo_results.py BUILD_DIR DEMO_DIR")
    print("\n".join(heldout_tables(Path(sys.argv[1])) + [""] + turning_table(Path(sys.argv[2]))))
