"""The stages of `vid2world zoo build`, each a function of the recipe and the build directory.

    OUT/data/<source>/      recorded datasets (`data record`), reused when their recorder settings match
    OUT/autoencoder/        the codec (frames <-> latents), its reconstruction PSNR on held-out frames
    OUT/latents/<source>.npy   every dataset encoded once (float16 [frames, C, h, w]): `train.latent_cache`
    OUT/pretrain/           the passive video model (full-sequence, no actions), a world-model directory
    OUT/finetune/           the causal world model (converted, fine-tuned with actions)
    OUT/refine/, OUT/refine-2/, ...   the model fine-tuned again from the stage before (warm restarts): the
                            recipe's `refine` phases, so a model trains on over several sessions

A stage whose directory exists is done: a build stopped anywhere resumes at the first missing stage, and a stage's
directory appears only when it is complete (written under a temporary name, then renamed). Each stage records its
wall time and step losses in `stage.json`.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..causal import causalize
from ..data.record import record_dataset
from ..data.store import Dataset, open_dataset
from ..diffusion.schedule import ScheduleConfig
from ..io.atomic import AtomicDirectory, atomic_file
from ..models.codec import LatentCodec, codec_from_config
from ..models.config import UNetConfig
from ..models.unet import VideoUNet
from ..train import latent_cache
from ..train.autoencoder import calibrate_scale, encode_frames, fit_autoencoder
from ..train.distill import DistillConfig, distill
from ..train.in_memory import FitConfig, fit_world_model
from ..world.world_model import FastPreset, SamplerConfig, WorldModel
from .recipe import Recipe, Source

STAGE_FILE = "stage.json"


def sampler(recipe: Recipe) -> SamplerConfig:
    """Deterministic DDIM (eta 0) over trailing steps, the history kept clean: what small models sample best with.
    A `clip`-norm model has no causal state to cache: it recomputes the window."""
    fast = FastPreset(recipe.fast_steps, recipe.fast_guidance, recipe.fast_precision)
    return SamplerConfig(steps=recipe.sampler_steps, fast=fast, spacing="trailing", eta=0.0, history_level="clean",
                         cache=recipe.conversion.temporal_norm != "clip")


def _stage_record(started: float, **more: Any) -> str:
    return stage_record(time.time() - started, **more)


def stage_record(wall_s: float, **more: Any) -> str:
    """A stage's `stage.json`: its wall seconds, the machine it ran on and what `more` says."""
    return json.dumps({"wall_s": round(wall_s, 1), "machine": _machine(), **more}, indent=1)


def _machine() -> str:
    import os
    import platform

    return f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads"


# ---- data -----------------------------------------------------------------------------------------------------
def dataset(out: Path, source: Source, recipe: Recipe, actions: bool, workers: int, progress: bool) -> Dataset:
    """The recorded dataset of `source` under OUT/data (recorded now unless an identical recording exists)."""
    path = out / "data" / source.name
    cfg = source.record_config(recipe.frame_size, actions, workers)
    if path.exists():
        ds = open_dataset(path)
        recorded = dict(ds.meta.extra.get("recorder", {}))
        wanted = asdict(cfg)
        recorded.pop("workers", None), wanted.pop("workers", None)  # workers do not change the episodes
        if recorded != wanted:
            raise ValueError(f"{path}: recorded with {recorded}, the recipe asks for {wanted}; move it away")
        return ds
    return record_dataset(cfg, path, progress=progress)


def episode_frames(ds: Dataset, split: str | None = None) -> list[np.ndarray]:
    return [ds.episode(int(i)).frames for i in ds.episodes_in(split)]


# ---- autoencoder ----------------------------------------------------------------------------------------------
def train_autoencoder(out: Path, recipe: Recipe, frames: list[np.ndarray], heldout: list[np.ndarray],
                      progress: bool) -> LatentCodec:
    path = out / "autoencoder"
    if path.exists():
        return load_codec(path)
    started = time.time()
    torch.manual_seed(recipe.autoencoder.seed)
    codec = LatentCodec(recipe.vae, scale_factor=1.0, per_frame=False, posterior="mode")
    losses: list[float] = []
    fit_autoencoder(codec, frames, recipe.autoencoder, progress=progress,
                    on_step=lambda step, d: losses.append(round(d["l1"], 5)))
    scale = calibrate_scale(codec, frames, seed=recipe.autoencoder.seed)
    save_codec_stage(path, codec, _stage_record(started, scale_factor=scale,
                                                heldout_psnr=reconstruction_psnr(codec, heldout), l1=losses,
                                                config=asdict(recipe.autoencoder)))
    return codec


def save_codec_stage(path: Path, codec: LatentCodec, record: str) -> None:
    """A codec stage directory (weights, config, stage record), written atomically."""
    with AtomicDirectory(path) as tmp:
        save_file({k: v.contiguous() for k, v in codec.state_dict().items()}, str(tmp.path / "codec.safetensors"))
        (tmp.path / "config.json").write_text(json.dumps(codec.config(), indent=1))
        (tmp.path / STAGE_FILE).write_text(record)


def load_codec(path: Path) -> LatentCodec:
    codec = codec_from_config(json.loads((path / "config.json").read_text()))
    codec.load_state_dict(load_file(str(path / "codec.safetensors")))
    return codec.eval()


@torch.no_grad()
def reconstruction_psnr(codec: LatentCodec, episodes: list[np.ndarray], limit: int = 1024) -> float:
    """Mean PSNR (dB) of the first `limit` frames of `episodes` (uint8 [T, H, W, 3] each) decoded from their
    latents, against the frames."""
    from ..metrics import psnr
    from ..world.frames import tensor_to_frames

    frames = np.concatenate(episodes)[:limit]
    latents = encode_frames(codec, frames)  # [N, C, h, w]
    decoded = codec.decode(latents.transpose(0, 1)[None])  # [1, 3, N, H, W]
    return round(float(psnr(tensor_to_frames(decoded, as_numpy=True), frames[None]).mean()), 3)


# where the base's stages are looked for by default: restored from the repository's history (they left the tree to
# keep the tracked weights within the bundled models' 40 MiB), or a build of the base
STAGES_COMMIT = "e77f062"


def base_stages_dir(recipe: Recipe, given: str | Path | None) -> Path:
    """`given`, else the first of zoo/stages/BASE and build/zoo/BASE (the base's default build directory) that
    holds a pretrain stage."""
    if given is not None:
        return Path(given)
    candidates = [Path("zoo/stages") / recipe.base, Path("build/zoo") / recipe.base]
    return next((c for c in candidates if (c / "pretrain" / STAGE_FILE).is_file()), candidates[0])


def adopt_base_stages(out: Path, recipe: Recipe, source: Path) -> None:
    """Copy the base recipe's autoencoder and pretrain stages from `source` into the build (those it lacks)."""
    for name in ("autoencoder", "pretrain"):
        if (out / name).exists():
            continue
        if not (source / name / STAGE_FILE).is_file():
            raise ValueError(
                f"{source / name}: no finished {name} stage; recipe {recipe.name} starts from {recipe.base}'s "
                f"autoencoder and pretrain. Restore the ones the bundled models came from (`git restore "
                f"--source={STAGES_COMMIT} -- zoo/stages/{recipe.base}`), or build them (`vid2world zoo build "
                f"{recipe.base} --until pretrain`), or pass --base-stages DIR holding them")
        with AtomicDirectory(out / name) as tmp:
            shutil.copytree(source / name, tmp.path, dirs_exist_ok=True)


def adapt_decoder(out: Path, recipe: Recipe, frames: list[np.ndarray], heldout: list[np.ndarray], progress: bool
                  ) -> LatentCodec:
    """OUT/decoder: the autoencoder stage's codec with its decoder fine-tuned on the target's frames (`recipe.decoder`),
    the encoder unchanged; its stage record has the held-out reconstruction before and after."""
    path = out / "decoder"
    if path.exists():
        return load_codec(path)
    started = time.time()
    codec = load_codec(out / "autoencoder")
    before = reconstruction_psnr(codec, heldout)
    losses: list[float] = []
    fit_autoencoder(codec, frames, recipe.decoder, progress=progress, decoder_only=True,
                    on_step=lambda step, d: losses.append(round(d["l1"], 5)))
    save_codec_stage(path, codec, _stage_record(started, heldout_psnr_before=before,
                                                heldout_psnr=reconstruction_psnr(codec, heldout), l1=losses,
                                                config=asdict(recipe.decoder)))
    return codec


# ---- cached latents -------------------------------------------------------------------------------------------
def cached_latents(out: Path, ds: Dataset, source: Source, codec: LatentCodec) -> list[np.ndarray]:
    """Every episode of `ds` encoded once by `codec` (posterior means, float16), cached in OUT/latents."""
    return latent_cache.cached_latents(out / "latents" / f"{source.name}.npy", episode_frames(ds),
                                       lambda frames: encode_frames(codec, frames))


# ---- the video model and the world model ----------------------------------------------------------------------
def passive_model(recipe: Recipe, codec: LatentCodec) -> WorldModel:
    cfg = UNetConfig.preset(recipe.unet_preset, **recipe.unet)
    torch.manual_seed(recipe.pretrain.seed)
    return WorldModel(VideoUNet(cfg), codec, ScheduleConfig(dynamic_rescale=None), sampler(recipe), fps=recipe.fps,
                      metadata={"stage": "pretrain"})


def pretrain(out: Path, recipe: Recipe, codec: LatentCodec, latents: list[np.ndarray], progress: bool
             ) -> WorldModel:
    path = out / "pretrain"
    if path.exists():
        return WorldModel.from_pretrained(path)
    started = time.time()
    model = passive_model(recipe, codec)
    losses = fit_world_model(model, latents, None, recipe.pretrain, progress=progress, latents=True)
    model.save_pretrained(path, {STAGE_FILE: _stage_record(started, loss=_rounded(losses),
                                                            config=asdict(recipe.pretrain))})
    return model


def world_metadata(recipe: Recipe, target: Dataset) -> dict[str, Any]:
    """What a world model of `recipe` says about itself: its simulator, frame size, action layout, frame rate."""
    return {"name": recipe.name, "env": recipe.target.env, "frame_size": [recipe.frame_size] * 2,
            "actions": target.meta.actions.to_dict(), "fps": target.meta.fps}


def training_episodes(target: Dataset, latents: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The fine-tuning set: the latents and actions of the target's training episodes."""
    ids = target.episodes_in("train")
    return [latents[i] for i in ids], [np.asarray(target.episode(int(i)).actions) for i in ids]


def world_model(recipe: Recipe, passive: WorldModel, metadata: dict[str, Any], action_space) -> WorldModel:
    """The passive model made causal with an action head (`causalize`), ready to fine-tune."""
    unet, _ = causalize(passive.unet, recipe.conversion.transfer, recipe.conversion.temporal_norm, action_space,
                        seed=recipe.finetune.seed)
    return WorldModel(unet, passive.codec, passive.schedule.config, sampler(recipe), fps=recipe.fps, metadata=metadata)


def finetune(path: Path, config: FitConfig, model: WorldModel, latents: list[np.ndarray],
             actions: list[np.ndarray], progress: bool) -> WorldModel:
    """`model` trained with actions under `config` and saved to `path` (OUT/finetune or a refine phase's); the saved
    model when that stage is done."""
    if path.exists():
        return WorldModel.from_pretrained(path)
    started = time.time()
    losses = fit_world_model(model, latents, actions, config, progress=progress, latents=True)
    model.save_pretrained(path, {STAGE_FILE: _stage_record(started, loss=_rounded(losses), config=asdict(config))})
    return model


def distill_stage(path: Path, config: DistillConfig, teacher: WorldModel, latents: list[np.ndarray],
                  actions: list[np.ndarray], progress: bool) -> WorldModel:
    """The few-step student of `teacher` saved to `path` (OUT/distill); the saved one when that stage is done.
    The run keeps its state beside the stage (OUT/distill-state.pt) and goes on from it after a stop."""
    if path.exists():
        return WorldModel.from_pretrained(path)
    student, losses, wall_s = distill(teacher, latents, actions, config, source="the fine-tuned model",
                                      progress=progress, state=path.parent / "distill-state.pt")
    student.save_pretrained(path, {STAGE_FILE: stage_record(wall_s, loss=_rounded(losses), config=asdict(config))})
    return student


def refine_stage(phase: int) -> str:
    """The directory name of refine phase `phase` (0-based): refine, refine-2, refine-3, ..."""
    return "refine" if phase == 0 else f"refine-{phase + 1}"


def _rounded(values: list[float]) -> list[float]:
    return [round(v, 5) for v in values]


def describe(path: Path) -> str:
    """One line from a finished stage's `stage.json`: wall time and the last losses."""
    record = json.loads((path / STAGE_FILE).read_text())
    parts = [f"{record['wall_s'] / 60:.1f} min"]
    for key in ("heldout_psnr", "loss", "l1"):
        if key in record:
            value = record[key]
            parts.append(f"{key} {np.mean(value[-50:]):.4f}" if isinstance(value, list) else f"{key} {value}")
    return ", ".join(parts)
