"""Store a bundled model's backbone and IDM in int8 (a scale per output row), after measuring what that costs.

    python scripts/requantize_bundled.py NAME --data HELDOUT_DIR [--out build/int8] [--windows 32]

Evaluates the bundled float16 model and an int8 copy on the same held-out windows (fast preset, one context
frame, 16 generated), pairs them window by window (`vid2world compare`), writes the result into the card
(`card.json`'s weights record, the "Weights in int8" section of `card.md`), then rewrites the bundled weights.
The evaluations stay in OUT (a rerun reuses their predictions).
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
from pathlib import Path

from vid2world.cli import main as cli
from vid2world.eval.compare import compare_evaluations
from vid2world.io.atomic import write_text
from vid2world.zoo.card import STORED, requantized_section
from vid2world.zoo.finish import requantize

MODELS = Path(__file__).resolve().parents[1] / "src" / "vid2world" / "zoo" / "models"


def evaluate(model: Path, data: str, idm: Path, out: Path, windows: int) -> None:
    code = cli(["evaluate", "--model", str(model), "--data", data, "--split", "all", "--protocol", "generic",
                "--context", "1", "--horizon", "16", "--windows", str(windows), "--batch", "8", "--idm", str(idm),
                "--videos", "0", "--no-counterfactual", "--no-random-actions", "--fast", "--out", str(out),
                "--no-progress"])
    if code:
        sys.exit(f"evaluate {model} failed ({code})")


def gaps(before: Path, after: Path) -> dict[str, str]:
    rows = {}
    for gap in compare_evaluations(after, before):
        if gap.source == "model" and gap.metric in ("psnr", "ssim"):
            rows[gap.metric.upper()] = f"{gap.a:.4f} against {gap.b:.4f}: {gap.gap.text()}"
    for label, path in (("before", before), ("now", after)):
        accuracy = json.loads((path / "results.json").read_text())["action_accuracy"]
        rows[f"action accuracy, {label}"] = f"model {accuracy['model']:.4f}, real frames {accuracy['real']:.4f}"
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("--data", required=True, help="held-out episodes (the recipe's heldout recording)")
    parser.add_argument("--out", default="build/int8")
    parser.add_argument("--windows", type=int, default=32)
    args = parser.parse_args()
    bundled, out = MODELS / args.name, Path(args.out)
    card = json.loads((bundled / "card.json").read_text())
    if card.get("weights", {}).get("precision", "float16") != "float16":
        sys.exit(f"{bundled}: its weights are {card['weights']['precision']} already")
    copy = out / args.name
    if copy.exists():
        shutil.rmtree(copy)  # this script's own copy of the bundled model
    shutil.copytree(bundled, copy)
    requantize(copy, "int8-rows")
    before, after = out / f"eval-{args.name}-float16", out / f"eval-{args.name}-int8"
    evaluate(bundled, args.data, bundled / "idm", before, args.windows)
    evaluate(copy, args.data, copy / "idm", after, args.windows)
    record = {"precision": "int8-rows", "from": "float16", "date": datetime.date.today().isoformat(),
              "windows": args.windows, "preset": "fast", "gaps": gaps(before, after),
              "command": f"python scripts/requantize_bundled.py {args.name} --data DIR (the recipe's heldout)"}
    card["weights"] = {"precision": "int8-rows", "requantized": record}
    markdown = (bundled / "card.md").read_text().replace(f"weights stored in {STORED['float16']}.",
                                                         f"weights stored in {STORED['int8-rows']}.")
    section = "\n".join(requantized_section(record))
    markdown = markdown.replace("\n\n## Rebuild\n", f"\n{section}\n\n## Rebuild\n", 1)
    requantize(bundled, "int8-rows")
    write_text(bundled / "card.json", json.dumps(card, indent=1) + "\n")
    write_text(bundled / "card.md", markdown)
    print("\n".join(f"{k}: {v}" for k, v in record["gaps"].items()))


if __name__ == "__main__":
    main()
