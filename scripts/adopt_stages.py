"""Lay out a build directory for `vid2world zoo build vizdoom-deathmatch` from what the repository keeps, so the
build goes on at its distill stage instead of training everything again (issue 31, docs/zoo.md):

    python scripts/adopt_stages.py build/zoo/vizdoom-deathmatch [--student build/distill/vizdoom-1step]
    vid2world zoo build vizdoom-deathmatch --install

- autoencoder/ and pretrain/: restored from the commit that last held them (zoo/stages, `STAGES_COMMIT`);
- finetune/ and refine/: their records only (stage.json, from the bundled card): the card lists them; the build
  goes on from the latest stage with weights;
- refine-2/: the bundled model's weights (the last fine-tune stage shipped before the student), its record;
- idm/: the bundled inverse-dynamics model (the build keeps an idm/ it finds);
- distill/ (with --student): a `vid2world distill` run's student with the same settings as the recipe's
  distill stage, its record made from the run's distill.json.
Nothing present is replaced.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

from vid2world.world.world_model import WorldModel
from vid2world.zoo import path as bundled_path
from vid2world.zoo.recipe import load_recipe
from vid2world.zoo.stages import STAGE_FILE, STAGES_COMMIT, stage_record

NAME = "vizdoom-deathmatch"


def restore_stages(out: Path) -> None:
    archive = subprocess.run(["git", "archive", STAGES_COMMIT, f"zoo/stages/{NAME}"], check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            parts = Path(member.name).parts  # zoo/stages/NAME/<stage>/<file>
            if member.isfile() and parts[3] in ("autoencoder", "pretrain") and not (out / parts[3]).exists():
                target = out / "_restore" / parts[3] / parts[4]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tar.extractfile(member).read())
    for stage in ("autoencoder", "pretrain"):
        if (out / "_restore" / stage).exists():
            (out / "_restore" / stage).rename(out / stage)
    shutil.rmtree(out / "_restore", ignore_errors=True)


def adopt_records(out: Path) -> None:
    model = bundled_path(NAME)
    card = json.loads((model / "card.json").read_text())
    for stage in ("finetune", "refine", "refine-2"):
        if (out / stage).exists():
            continue
        tmp = out / f"_{stage}"
        tmp.mkdir(parents=True)
        if stage == "refine-2":
            for file in ("config.json", "model.safetensors", "codec.safetensors"):
                shutil.copy2(model / file, tmp / file)
        (tmp / STAGE_FILE).write_text(json.dumps(card["stages"][stage], indent=1))
        tmp.rename(out / stage)
    if not (out / "idm").exists():
        shutil.copytree(model / "idm", out / "idm")


def adopt_student(out: Path, run: Path) -> None:
    if (out / "distill").exists():
        return
    record = json.loads((run / "model" / "distill.json").read_text())
    recipe = load_recipe(NAME)
    if record["config"] != json.loads(json.dumps(recipe.distill.__dict__)):
        raise SystemExit(f"{run}: distilled with {record['config']}, the recipe's distill stage says "
                         f"{recipe.distill}")
    # runs before distill added up its resumed parts recorded only the last part's seconds
    wall_s = record.get("wall_s", record.get("wall_s_this_run"))
    stage = stage_record(wall_s, config=record["config"], loss=record["loss"])
    WorldModel.from_pretrained(run / "model").save_pretrained(out / "distill", {STAGE_FILE: stage})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--student", type=Path, default=None)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    restore_stages(args.out)
    adopt_records(args.out)
    if args.student:
        adopt_student(args.out, args.student)
    print(f"{args.out}: " + ", ".join(sorted(p.name for p in args.out.iterdir())))


if __name__ == "__main__":
    main()
