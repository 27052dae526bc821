"""`vid2world zoo build NAME` and `vid2world zoo list`: their arguments and handlers."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..io.args import add_progress_flag, choice_list, float_list, positive_int


def _build(args: argparse.Namespace) -> int:
    from . import MODELS
    from .build import STAGES, build, install
    from .finish import EVAL_WINDOWS
    from .recipe import load_recipe

    recipe = load_recipe(args.name)
    if args.quick:
        recipe = recipe.quick()
    out = args.out or f"build/zoo/{recipe.name}{'-quick' if args.quick else ''}"
    path = build(recipe, out, workers=args.workers, progress=not args.no_progress, until=args.until,
                 idm_steps=3 if args.quick else 1500,
                 eval_windows={p: 2 if args.quick else EVAL_WINDOWS[p] for p in args.eval_presets.split(",")},
                 base_stages=args.base_stages)
    print(f"build directory: {path}")
    if args.keep_stages:
        from .finish import keep_stages

        print(f"kept the finished training stages in {keep_stages(path, Path(args.keep_stages), recipe)}")
    if args.install:
        if args.until not in (None, STAGES[-1]):
            raise ValueError("--install needs the whole build: leave out --until")
        print(f"installed {install(path, recipe.name, MODELS)}")
    return 0


def _ablate(args: argparse.Namespace) -> int:
    from .ablate import AblationConfig, run_ablations
    from .recipe import load_recipe

    recipe = load_recipe(args.name)
    if args.quick:
        recipe = recipe.quick()
    build = args.build or f"build/zoo/{recipe.name}{'-quick' if args.quick else ''}"
    cfg = AblationConfig(build=build, out=args.out or f"{build}-ablations", steps=args.steps, batch=args.batch,
                         seeds=args.seeds, arms=tuple(args.arms), guidances=tuple(args.guidance),
                         windows=args.windows, idm_steps=3 if args.quick else 1500)
    run_ablations(recipe, cfg, progress=not args.no_progress)
    print(f"wrote {Path(cfg.out) / 'ablations.md'}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from . import names, path
    from .recipe import recipe_names

    for name in names():
        card = json.loads((path(name) / "card.json").read_text()) if (path(name) / "card.json").is_file() else {}
        size = sum(f.stat().st_size for f in path(name).rglob("*") if f.is_file()) / 2 ** 20  # idm/ included
        print(f"{name:24s} {size:5.1f} MiB  {card.get('description', '')}")
    missing = sorted(set(recipe_names()) - set(names()))
    for name in missing:
        print(f"{name:24s} (recipe only: `vid2world zoo build {name} --install`)")
    return 0


def register(sub) -> None:
    """The `zoo` command: build and list the bundled models."""
    zoo = sub.add_parser("zoo", help="the bundled world models: rebuild one from its committed recipe, list them")
    zoo_sub = zoo.add_subparsers(dest="zoo_command", required=True)
    b = zoo_sub.add_parser("build", help="record, train the autoencoder, pretrain, convert, fine-tune, evaluate, "
                                         "export; resumes at the first unfinished stage")
    b.add_argument("name", help="a recipe name (`vid2world zoo list`) or a recipe YAML file")
    b.add_argument("--out", default=None, help="build directory (default: build/zoo/NAME[-quick])")
    b.add_argument("--quick", action="store_true", help="the same stages with tiny counts: minutes, for tests")
    b.add_argument("--until", default=None, help="stop after this stage: record, autoencoder, latents, pretrain, "
                                                 "finetune, refine (every phase of recipes that have them), "
                                                 "distill (recipes that ship a few-step student), idm, export, "
                                                 "evaluate "
                                                 "(default: all, the card last)")
    b.add_argument("--workers", type=positive_int, default=2, help="recording processes (default: 2)")
    b.add_argument("--eval-presets", default="quality,fast", choices=["quality,fast", "fast", "quality"],
                   metavar="PRESETS", help="sampling presets to evaluate: quality,fast (default), fast or quality "
                                           "(the quality preset's 50 guided steps take about 15 minutes on 2 cores)")
    b.add_argument("--keep-stages", default=None, metavar="DIR",
                   help="also copy the finished training stages a later one starts from (autoencoder, pretrain, and "
                        "every fine-tune stage a refine phase follows; float16) into DIR, to carry to another day or "
                        "machine: copy them into a build directory and the build starts after them")
    b.add_argument("--base-stages", default=None, metavar="DIR",
                   help="for a recipe with a base (one that starts from another recipe's pretrained model): the "
                        "directory holding the base's autoencoder/ and pretrain/ stages (default: zoo/stages/BASE, "
                        "else build/zoo/BASE; docs/zoo.md)")
    b.add_argument("--install", action="store_true",
                   help="copy the finished model into the package's bundled models (replacing the earlier one)")
    add_progress_flag(b)
    b.set_defaults(func=_build)
    _register_ablate(zoo_sub)
    ls = zoo_sub.add_parser("list", help="the bundled models and the recipes")
    ls.set_defaults(func=_list)


def _register_ablate(zoo_sub) -> None:
    from .ablate import ARMS

    a = zoo_sub.add_parser("ablate", help="the paper's claims in miniature: fine-tune arms that differ in one thing "
                                          "(transfer, norm, pretraining) at equal budgets over seeds, evaluate each")
    a.add_argument("name", help="a recipe name (`vid2world zoo list`) or a recipe YAML file")
    a.add_argument("--build", default=None, help="the build directory whose data and pretrained stages the arms "
                                                 "start from (default: build/zoo/NAME[-quick]; made when missing)")
    a.add_argument("--out", default=None, help="where the runs and the summary go (default: BUILD-ablations)")
    a.add_argument("--quick", action="store_true", help="the recipe's quick variant (tests)")
    a.add_argument("--steps", type=positive_int, default=150, help="fine-tuning steps of every run (default: 150)")
    a.add_argument("--batch", type=positive_int, default=4, help="clips per step of every run (default: 4)")
    a.add_argument("--seeds", type=positive_int, default=3, help="seeds per arm (default: 3)")
    a.add_argument("--arms", type=choice_list(tuple(ARMS)), default=list(ARMS),
                   help=f"comma-separated arms (default: all: {','.join(ARMS)})")
    a.add_argument("--guidance", type=float_list, default=[1.0],
                   help="guidance scales the transfer arm is also scored at, besides the fast preset's (default: 1, "
                        "no guidance)")
    a.add_argument("--windows", type=positive_int, default=16, help="held-out windows per evaluation (default: 16)")
    add_progress_flag(a)
    a.set_defaults(func=_ablate)
