"""`train(config)`: the training loop, on accelerate (one process, or DDP/FSDP under `torchrun` or
`accelerate launch`). One optimiser step = `train.grad_accum` micro-batches of `train.batch_size` clips per process.

Exactness: every random choice comes from a per-rank generator (loss) or torch's global RNG (dropout), both saved
in checkpoints; the data order is a pure function of (seed, epoch, key) and the number of batches drawn. A run
resumed from step k therefore repeats the uninterrupted run's steps k+1..N bit for bit on CPU.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import warnings
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ..data.clips import ClipConfig, ClipDataset, ClipSampler, clip_loader, stable_int
from ..data.store import open_dataset
from ..data.transforms import AugmentConfig, FrameLayout
from ..io.atomic import write_text
from ..io.progress import progress_bar
from ..world.world_model import check_save_target, is_world_model_dir
from .build import build_model, clip_latent_frames
from .checkpoint import (LoadedCheckpoint, TrainerState, latest, load_checkpoint, rng_state, save_checkpoint,
                         set_rng_state)
from .config import ConfigError, TrainConfig
from .distributed import (exportable, full_model_state, full_optimizer_state, is_sharded, load_optimizer_state,
                          make_accelerator)
from .ema import EMA
from .optim import lr_at, optimizer_step, set_lr
from .monitor import LossTally, Monitor
from .objective import Denoiser, Objective, clip_loss, freeze_encoders
from .run_dir import new_directories, prepare_run_dir, weights_digest
from .samples import sample_clip, write_sample


class TrainingError(RuntimeError):
    """A run that cannot go on (a non-finite loss); the message names the step and the batch."""


class TrainingStopped(KeyboardInterrupt):
    """Ctrl-C (SIGINT) during `train`: the message names the step reached and where `--resume` continues."""


@dataclass
class _Reached:
    """How far a run got: for the message when it is stopped, and to know whether it trained at all."""

    start: int | None = None  # the step the loop started from; None: it never started
    step: int = 0


@dataclass
class TrainResult:
    out: str
    steps: int
    resumed_from: int | None
    last_loss: float | None
    model_dir: str | None
    trainable: int = 0  # trainable parameters
    device: str = "cpu"


def make_clips(config: TrainConfig) -> ClipDataset:
    data = config.data
    if not data.path:
        raise ConfigError("data.path: no dataset given (a directory written by `vid2world data record|convert`)")
    dataset = open_dataset(data.path)
    dataset.check()  # a missing or truncated shard is named now, not by a loader worker mid-run
    size = tuple(data.size)
    layout = None
    if data.layout != "resize" or tuple(dataset.meta.frame_size) != size:
        layout = FrameLayout(size, data.layout, tuple(data.inner) if data.inner else None)
    cfg = ClipConfig(data.length, data.frame_skip, layout, AugmentConfig() if data.augment else None, data.split)
    return ClipDataset(dataset, cfg, seed=config.seed)


def check_export_target(config: TrainConfig, resume: bool) -> None:
    """Refuse now, not after hours of training, an OUT/model that the export could not replace: anything but a
    world model, and for a new run any world model (only a resumed run replaces its own export)."""
    model_dir = Path(config.out) / "model"
    if not resume and is_world_model_dir(model_dir):
        raise ConfigError(f"{model_dir}: holds the world model of an earlier run; choose another out=, or move it "
                          "away first")
    check_save_target(model_dir, overwrite=True)


def learning_rate(config: TrainConfig, step: int) -> float:
    """Constant after a linear warm-up of `optim.warmup_steps` (Vid2World: constant 1e-5, no warm-up)."""
    return lr_at(step, config.train.steps, config.optim.lr, config.optim.warmup_steps, decay=False)


def train(config: TrainConfig, resume: bool = False, progress: bool = True, export: bool = True,
          save_last: bool = True) -> TrainResult:
    """Run (or, with `resume`, continue) the training `config` describes; see `docs/training.md`. `export`: write
    the world model to OUT/model at the end; `save_last`: checkpoint the last step (benchmarks turn both off).

    A run that fails before its first step leaves no directory it created behind; Ctrl-C raises `TrainingStopped`
    (a KeyboardInterrupt) saying the step reached and the checkpoint `--resume` continues from."""
    created = new_directories(Path(config.out)) if os.environ.get("RANK", "0") == "0" else None
    reached = _Reached()
    try:
        return _train(config, resume, progress, export, save_last, reached)
    except BaseException as err:
        if created is not None and reached.step == (reached.start or 0):  # nothing trained: nothing worth keeping
            shutil.rmtree(created, ignore_errors=True)
        if not isinstance(err, KeyboardInterrupt) or isinstance(err, TrainingStopped):
            raise
    # raised outside the handler, so the interrupted frames (and their progress bar, which then closes its line)
    # are released before the message is shown
    raise TrainingStopped(_stopped_message(Path(config.out), reached.step))


def _stopped_message(out: Path, step: int) -> str:
    found = latest(out / "checkpoints")
    if found is None:
        return f"stopped at step {step}, before the first checkpoint; nothing to resume (run it again to start over)"
    return f"stopped at step {step}; --resume continues from {found}"


def _train(config: TrainConfig, resume: bool, progress: bool, export: bool, save_last: bool,
           reached: _Reached) -> TrainResult:
    # DDP's reducer warns once per process about 1x1-conv gradient strides; harmless, and noise in every log
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    acc = make_accelerator(config)
    rank, world = acc.process_index, acc.num_processes
    if export:
        check_export_target(config, resume)
    clips = make_clips(config)  # the data is checked before the run directory or the model is made
    resume_from = prepare_run_dir(config, resume, acc.is_main_process)
    acc.wait_for_everyone()
    torch.manual_seed(config.seed)  # identical initial weights on every rank
    model, denoiser, params, optimizer = _trainable(config, clips, acc.device)
    trainable = sum(p.numel() for p in params)
    ema = EMA(denoiser, config.optim.ema_decay) if config.optim.ema_decay else None
    generator = torch.Generator().manual_seed(stable_int(config.seed, "loss", rank))
    torch.manual_seed(stable_int(config.seed, "dropout", rank) % 2**63)
    ckpt = _restore(resume_from, world, rank, denoiser, ema, generator) if resume_from is not None else None
    state = ckpt.state if ckpt is not None else TrainerState(world_size=world, mode=config.mode)
    resumed_step = None if ckpt is None else ckpt.state.step
    wrapped, optimizer = acc.prepare(denoiser, optimizer)
    if resume_from is not None:
        load_optimizer_state(acc, wrapped, optimizer, ckpt.optimizer["optimizer"])
        if acc.scaler is not None and "scaler" in ckpt.optimizer:
            acc.scaler.load_state_dict(ckpt.optimizer["scaler"])
    if is_sharded(acc) and config.log.sample_every and acc.is_main_process:
        print("log.sample_every: no sample rollouts under FSDP (the weights are sharded); export, then roll out")

    bs, accum = config.train.batch_size, config.train.grad_accum
    batches = _batches(config, clips, state, rank, world)
    objective = Objective(config.mode == "world-model", config.train.action_dropout, config.train.image_dropout)
    monitor = Monitor(Path(config.out), config.log.tensorboard, resumed_step) if acc.is_main_process else None
    tally = LossTally(clip_latent_frames(model, config), model.schedule.num_train_timesteps)
    sample = sample_clip(clips, config.seed) if config.log.sample_every and acc.is_main_process \
        and not is_sharded(acc) else None
    if acc.is_main_process:
        print(f"{clips.summary}\n{'resuming from ' + str(resume_from) if resume_from else 'starting'}: "
              f"{config.mode}, {trainable:,} trainable parameters, {world} process(es), "
              f"{bs}x{accum}x{world} clips per step", flush=True)
    bar = progress_bar(total=config.train.steps, initial=state.step, desc="train", unit="step",
                       enabled=progress and acc.is_main_process)
    last_loss, t0, clips_seen = None, time.perf_counter(), 0
    reached.start = reached.step = state.step
    while state.step < config.train.steps:
        lr = learning_rate(config, state.step)
        set_lr(optimizer, lr)
        for micro in range(accum):
            batch = next(batches)
            state.micro_batches += 1
            sync = nullcontext() if micro == accum - 1 else acc.no_sync(wrapped)
            with sync:
                out = clip_loss(wrapped, model, batch, objective, generator)
                _stop_if_not_finite(acc, out.loss, batch, f"step {state.step + 1} (micro-batch {micro + 1} of "
                                    f"{accum}, rank {rank}", Path(config.out))
                acc.backward(out.loss / accum)
            tally.add(out.per_frame, out.levels)
            clips_seen += batch["frames"].shape[0] * world
        grad_norm = optimizer_step(optimizer, params, config.optim.grad_clip, ema, acc.unwrap_model(wrapped),
                                   clip=acc.clip_grad_norm_)
        state.step += 1
        reached.step = state.step
        bar.update(1)
        if state.step % config.log.every == 0 or state.step == config.train.steps:
            rate = clips_seen / (time.perf_counter() - t0)
            last_loss = _log_step(acc, tally, monitor, bar, state.step, {"lr": lr, "grad_norm": float(grad_norm),
                                                                        "clips_per_s": rate})
            t0, clips_seen = time.perf_counter(), 0
        if state.step % config.log.save_every == 0 or (save_last and state.step == config.train.steps):
            _save(acc, config, state, wrapped, optimizer, ema, generator)
        if sample is not None and state.step % config.log.sample_every == 0:
            started = time.perf_counter()
            with ema.applied(acc.unwrap_model(wrapped)) if ema else nullcontext():
                write_sample(model, sample, config.log.sample_context, config.log.sample_steps,
                             Path(config.out) / "samples", state.step)
            t0 += time.perf_counter() - started  # throughput counts training time only
    bar.close()
    model_dir = _finish(acc, config, state, wrapped, model, ema, last_loss, resume_from, export)
    if monitor is not None:
        monitor.close()
    return TrainResult(config.out, state.step, resumed_step, last_loss, model_dir, trainable, str(acc.device))



def _trainable(config: TrainConfig, clips: ClipDataset, device: torch.device):
    """The starting model, its trainable part (`Denoiser`, encoders frozen), those parameters and their optimiser."""
    model = build_model(config, clips.dataset.meta)
    freeze_encoders(model)
    model.codec.to(device)  # frozen, outside the distributed wrapper
    denoiser = Denoiser(model).train()
    params = [p for p in denoiser.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.optim.lr, betas=tuple(config.optim.betas),
                                  weight_decay=config.optim.weight_decay)
    return model, denoiser, params, optimizer

def _batches(config: TrainConfig, clips: ClipDataset, state: TrainerState, rank: int, world: int):
    """This rank's batches, continuing its data stream where the run (or the checkpoint it resumes) stopped."""
    bs = config.train.batch_size
    per_epoch = ClipSampler(len(clips), rank, world).per_epoch  # this rank's keys per epoch
    epoch, start = divmod(state.micro_batches * bs, per_epoch)  # where this rank's stream stopped
    remaining = config.train.steps - state.step
    loader = clip_loader(clips, bs, config.data.workers, rank, world, config.seed, epoch=epoch, start=start,
                         epochs=math.ceil((remaining * config.train.grad_accum * bs + start) / per_epoch) + 1)
    return iter(loader)

def _restore(resume_from: Path, world: int, rank: int, denoiser: nn.Module, ema: EMA | None,
             generator: torch.Generator) -> LoadedCheckpoint:
    """Load a checkpoint's weights, EMA and this rank's random state (the optimiser's follows `acc.prepare`)."""
    ckpt = load_checkpoint(resume_from)
    if ckpt.state.world_size != world:
        raise ConfigError(f"{resume_from}: saved by {ckpt.state.world_size} processes, resumed with {world}; "
                          "the data order and random streams are per process, so the counts must match")
    denoiser.load_state_dict(ckpt.model)
    if ema is not None:
        ema.load_state_dict(ckpt.ema or {})
    set_rng_state(ckpt.rng[rank], generator)
    return ckpt


def _stop_if_not_finite(acc, loss: Tensor, batch: dict[str, Tensor], where: str, out: Path) -> None:
    """Every rank stops together when any rank's loss is NaN/inf (an all-reduced flag), naming the batch."""
    bad = acc.reduce(torch.tensor([0.0 if torch.isfinite(loss) else 1.0], device=acc.device), "sum")
    if bad.item() > 0:
        source = (f"episodes {batch['episode'].tolist()} starts {batch['start'].tolist()}"
                  if not torch.isfinite(loss) else "another rank's batch")
        raise TrainingError(f"non-finite loss {loss.item()} at {where}: {source}); stopped without saving; "
                            f"the last good checkpoint is in {out / 'checkpoints'}")


def _log_step(acc, tally: LossTally, monitor: Monitor | None, bar, step: int, scalars: dict[str, float]) -> float:
    """Every rank's losses since the last log, with `scalars`, to the monitor and the bar; returns the mean loss."""
    losses = tally.scalars(acc.reduce(tally.packed().to(acc.device), "sum").cpu())
    scalars = {**losses, **scalars}
    if acc.device.type == "cuda":  # this process's peak since the start (what OOMs look at)
        scalars["gpu_peak_gb"] = torch.cuda.max_memory_allocated(acc.device) / 1e9
    if monitor is not None:
        monitor.log(step, scalars)
    bar.set_postfix(loss=f"{losses['loss']:.4f}", clips_s=f"{scalars['clips_per_s']:.1f}")
    tally.reset()
    return losses["loss"]


def _save(acc, config: TrainConfig, state: TrainerState, wrapped, optimizer, ema: EMA | None,
          generator: torch.Generator) -> None:
    """Every rank hands its random state to rank 0, which writes the checkpoint alone."""
    from accelerate.utils import gather_object

    rngs = gather_object([rng_state(generator)])
    model_state = full_model_state(acc, wrapped)
    optim_state = {"optimizer": full_optimizer_state(acc, wrapped, optimizer)}
    if acc.scaler is not None:
        optim_state["scaler"] = acc.scaler.state_dict()
    if acc.is_main_process:
        save_checkpoint(Path(config.out) / "checkpoints", state, model_state, optim_state, rngs,
                        None if ema is None else ema.state_dict(), config.log.keep_last)
    acc.wait_for_everyone()


def _finish(acc, config: TrainConfig, state: TrainerState, wrapped, model, ema: EMA | None,
            last_loss: float | None, resume_from: Path | None, export: bool) -> str | None:
    """Export the world model (EMA weights when kept) and write `summary.json` with every rank's weight digest."""
    from accelerate.utils import gather_object

    unwrapped = acc.unwrap_model(wrapped)
    digests = gather_object([{"rank": acc.process_index, "steps": state.step, "micro_batches": state.micro_batches,
                              "weights_sha1": weights_digest(unwrapped)}])  # under FSDP: this rank's shards
    full = full_model_state(acc, wrapped) if export and is_sharded(acc) else None
    model_dir = None
    if acc.is_main_process:
        out = Path(config.out)
        if export:
            with ema.applied(unwrapped) if ema else nullcontext():
                model.metadata["training"] = {"mode": config.mode, "steps": state.step, "config": config.to_dict(),
                                              "ema": ema is not None}
                model_dir = str(exportable(model, full).eval().save_pretrained(out / "model", overwrite=True))
        summary = {"steps": state.step, "last_loss": last_loss, "world_size": acc.num_processes,
                   "resumed_from": None if resume_from is None else str(resume_from), "ranks": digests,
                   "model": model_dir, "state": asdict(state)}
        write_text(out / "summary.json", json.dumps(summary, indent=1))
    acc.wait_for_everyone()
    return model_dir
