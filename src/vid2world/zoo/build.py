"""`vid2world zoo build NAME`: a bundled model from its committed recipe, stage after stage (`stages`, `finish`).

A build resumes at its first unfinished stage, so the stages may run on different days or machines: commit the
build directory's finished stages, or copy them, and run the same command again.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..io.atomic import AtomicDirectory, absolute
from . import card, finish, stages
from ..train.in_memory import FitConfig
from ..world.world_model import WorldModel
from .recipe import Recipe

STAGES = ("record", "autoencoder", "latents", "pretrain", "finetune", "refine", "distill", "idm", "export",
          "evaluate")


def build(recipe: Recipe, out: str | Path, workers: int = 2, progress: bool = True, until: str | None = None,
          idm_steps: int = 1500, eval_windows: dict[str, int] | None = None,
          base_stages: str | Path | None = None) -> Path:
    """Run (or resume) every stage of `recipe` under `out`, up to and including `until` (default: all); returns
    the build directory. The shipped files end up in OUT/model. A recipe with a `base` takes its autoencoder and
    pretrain stages from `base_stages` (default: `stages.base_stages_dir`)."""
    if until is not None and until not in STAGES:
        raise ValueError(f"--until must be one of {STAGES}, got {until!r}")
    last = STAGES.index(until or STAGES[-1])

    def stop_before(stage: str) -> bool:
        return last < STAGES.index(stage)

    out = absolute(out)
    out.mkdir(parents=True, exist_ok=True)
    say = print if progress else (lambda *a, **k: None)
    if recipe.base and not stop_before("autoencoder"):  # before recording: a missing base stage fails at once
        stages.adopt_base_stages(out, recipe, stages.base_stages_dir(recipe, base_stages))
    target = stages.dataset(out, recipe.target, recipe, True, workers, progress)
    heldout = stages.dataset(out, recipe.heldout, recipe, True, workers, progress)
    passive = [] if recipe.base else [stages.dataset(out, s, recipe, False, workers, progress)
                                      for s in recipe.pretrain_data]
    if stop_before("autoencoder"):
        return out
    codec = codec_stages(out, recipe, target, heldout, passive, say, progress)
    if stop_before("latents"):
        return out
    target_latents = stages.cached_latents(out, target, recipe.target, codec)
    passive_latents = [z for ds, s in zip(passive, recipe.pretrain_data)
                       for z in stages.cached_latents(out, ds, s, codec)]
    if stop_before("pretrain"):
        return out
    model = stages.pretrain(out, recipe, codec, passive_latents, progress)
    say(f"pretrain: {stages.describe(out / 'pretrain')}")
    if stop_before("finetune"):
        return out
    latents, actions = stages.training_episodes(target, target_latents)
    chain = fine_tune_chain(recipe)
    if not recipe.refine or stop_before("refine"):
        chain = chain[:1]
    start = last_present(out, chain)
    final = out / chain[start][0]
    if final.is_dir():  # the latest stage present: go on from its weights
        world, todo = WorldModel.from_pretrained(final), chain[start + 1:]
        say(f"{final.name}: {stages.describe(final)}")
    else:
        world = stages.world_model(recipe, model, stages.world_metadata(recipe, target),
                                   target.meta.actions.model_space())
        todo = chain
    for name, config in todo:
        final = out / name
        world = stages.finetune(final, config, world, latents, actions, progress)
        say(f"{name}: {stages.describe(final)}")
    if recipe.distill and not stop_before("distill"):
        final = out / "distill"
        world = stages.distill_stage(final, recipe.distill, world, latents, actions, progress)
        say(f"distill: {stages.describe(final)}")
    if stop_before("idm"):
        return out
    idm = finish.train_idm(out, target.root, idm_steps, progress)
    if stop_before("export"):
        return out
    model_dir = finish.export(out, recipe, final, idm)
    if stop_before("evaluate"):
        return out
    world = WorldModel.from_pretrained(model_dir)  # what ships: the adapted decoder, if any, in float16
    windows = eval_windows or finish.EVAL_WINDOWS
    evals = finish.evaluate_presets(out, recipe, model_dir, heldout.root, idm, windows, progress)
    data = card.card_data(out, recipe, world, evals)
    finish.write_card(model_dir, card.card_markdown(data), data)
    say(f"wrote {model_dir}")
    return out


def codec_stages(out: Path, recipe: Recipe, target, heldout, passive: list, say, progress: bool):
    """The autoencoder stage (trained on every recording, or the base's), then the decoder adapted to the target
    when the recipe asks; returns the autoencoder stage's codec (the encoder, which both share, makes the latents).
    Frames are read only for a stage still to train."""
    frames = stages.episode_frames
    ae = out / "autoencoder"
    ae_frames = [] if ae.exists() else frames(target, "train") + [f for ds in passive for f in frames(ds)]
    codec = stages.train_autoencoder(out, recipe, ae_frames, [] if ae.exists() else frames(heldout), progress)
    say(f"autoencoder: {stages.describe(ae)}")
    if recipe.decoder:
        fresh = not (out / "decoder").exists()
        stages.adapt_decoder(out, recipe, frames(target, "train") if fresh else [], frames(heldout) if fresh else [],
                             progress)
        say(f"decoder: {stages.describe(out / 'decoder')}")
    return codec


def fine_tune_chain(recipe: Recipe) -> list[tuple[str, FitConfig]]:
    """The stages that train the world model, in order: finetune, then each refine phase."""
    return [("finetune", recipe.finetune)] + [(stages.refine_stage(i), c) for i, c in enumerate(recipe.refine)]


def last_present(out: Path, chain: list[tuple[str, FitConfig]]) -> int:
    """Index of the latest stage of `chain` whose directory exists (0 when none does): a build goes on from there,
    so only the latest stage's weights need keeping (`--keep-stages`)."""
    present = [i for i, (name, _) in enumerate(chain) if (out / name).is_dir()]
    return present[-1] if present else 0


def install(out: str | Path, name: str, models: Path) -> Path:
    """Copy a finished build's OUT/model into the package's bundled models (replacing the earlier copy). When the
    weights change, the new card records what the model it replaces scored (and what that one replaced)."""
    source = absolute(out) / "model"
    if not (source / "card.md").is_file():
        raise ValueError(f"{source}: no finished model to install; run `vid2world zoo build {name}` to the end")
    target = models / name
    replaced = card.replaced_models(target, source)
    with AtomicDirectory(target, overwrite=target.exists()) as tmp:
        shutil.copytree(source, tmp.path, dirs_exist_ok=True)
        if replaced:
            data = json.loads((tmp.path / "card.json").read_text())
            data["replaced"] = replaced
            finish.write_card(tmp.path, card.card_markdown(data), data)
    return target
