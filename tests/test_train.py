"""The trainer (issue 6): real runs of `vid2world train` on a small recorded ViZDoom dataset, on CPU.

Multi-process runs use `torchrun` with gloo; the resume test kills a real process with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from vid2world.data.clips import ClipSampler
from vid2world.data.record import RecordConfig, record_dataset
from vid2world.train import trainer as trainer_module
from vid2world.train.checkpoint import TrainerState, checkpoints, save_checkpoint
from vid2world.train.config import ConfigError, load_config
from vid2world.train.ema import EMA, ema_update
from vid2world.train.monitor import LossTally, read_metrics
from vid2world.train.trainer import TrainingError, learning_rate, train
from vid2world.world.world_model import WorldModel

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"
BIN = Path(sys.executable).parent
# small and fast: 32x32 frames, 6-frame clips, no samples unless a test asks
FAST = ["data.size=[32,32]", "data.length=6", "train.batch_size=2", "log.every=2", "log.sample_every=0",
        "log.tensorboard=false"]


@pytest.fixture(scope="module")
def doom(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    record_dataset(RecordConfig("vizdoom:deathmatch", episodes=6, steps=20, size=32, seed=3), root / "doom",
                   progress=False)
    return root / "doom"


@pytest.fixture(scope="module")
def doom_video(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("video")
    record_dataset(RecordConfig("vizdoom:deathmatch", episodes=4, steps=16, size=32, seed=5, actions=False),
                   root / "video", progress=False)
    return root / "video"


def cli(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(list(args), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, **kw)


def finished(proc: subprocess.Popen, timeout: float = 240) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]
    return out


def final_weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(checkpoints(out / "checkpoints")[-1] / "model.safetensors"))


# ---- whole runs -------------------------------------------------------------------------------------------------
def test_two_process_ddp_with_torchrun(doom, tmp_path):
    out = tmp_path / "ddp"
    log = finished(cli(str(BIN / "torchrun"), "--nproc_per_node", "2", "-m", "vid2world.cli", "train", str(TINY),
                       f"data.path={doom}", f"out={out}", "train.steps=4", "log.save_every=2", *FAST,
                       "--no-progress"))
    assert "2 process(es)" in log
    summary = json.loads((out / "summary.json").read_text())
    ranks = summary["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["steps"] == 4 and r["micro_batches"] == 4 for r in ranks)
    assert ranks[0]["weights_sha1"] == ranks[1]["weights_sha1"], "DDP ranks diverged"
    # rank 0 alone wrote each checkpoint: one set of files, holding both ranks' random states
    for ckpt in checkpoints(out / "checkpoints"):
        assert sorted(p.name for p in ckpt.iterdir()) == ["model.safetensors", "optimizer.pt", "rng.pt",
                                                          "trainer.json"]
        rng = torch.load(ckpt / "rng.pt", weights_only=True)
        assert len(rng) == 2 and not torch.equal(rng[0]["generator"], rng[1]["generator"])
    assert not [p for p in (out / "checkpoints").iterdir() if p.name.startswith(".")], "temporary files left"
    assert WorldModel.from_pretrained(out / "model").unet.is_causal


def test_sigkill_and_resume_is_bit_exact(doom, tmp_path):
    args = [str(BIN / "vid2world"), "train", str(TINY), f"data.path={doom}", "train.steps=10", "log.save_every=3",
            "train.grad_accum=2", "optim.ema_decay=0.9", "data.workers=1", "data.augment=true", *FAST, "--no-progress"]
    whole = tmp_path / "whole"
    finished(cli(*args, f"out={whole}"))
    killed = tmp_path / "killed"
    proc = cli(*args, f"out={killed}")
    deadline = time.time() + 180
    while not (killed / "checkpoints" / "step-00000003" / "trainer.json").exists():
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert time.time() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and not (killed / "summary.json").exists(), "killed too late"
    resumed_log = finished(cli(*args, f"out={killed}", "--resume"))
    assert "resuming from" in resumed_log
    a, b = final_weights(whole), final_weights(killed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ"
    ema_a = load_file(str(checkpoints(whole / "checkpoints")[-1] / "ema.safetensors"))
    ema_b = load_file(str(checkpoints(killed / "checkpoints")[-1] / "ema.safetensors"))
    assert all(torch.equal(ema_a[k], ema_b[k]) for k in ema_a)
    assert json.loads((killed / "summary.json").read_text())["resumed_from"].endswith("step-00000003") or \
        json.loads((killed / "summary.json").read_text())["resumed_from"].endswith("step-00000006")
    # metrics of the resumed run continue the killed run's without duplicates
    steps = [m["step"] for m in read_metrics(killed / "metrics.jsonl")]
    assert steps == sorted(set(steps)) and steps[-1] == 10


def test_overfit_smoke_lowers_the_loss(doom, tmp_path):
    """The documented smoke run, shortened: `tiny` on 6 recorded episodes (docs/training.md has the 2-minute one)."""
    config = load_config(TINY, [f"data.path={doom}", f"out={tmp_path / 'fit'}", "train.steps=120", "log.every=20",
                                "data.size=[32,32]", "data.length=6", "train.batch_size=4", "log.sample_every=60",
                                "log.tensorboard=true"])
    result = train(config, progress=False)
    losses = [m["loss"] for m in read_metrics(tmp_path / "fit" / "metrics.jsonl")]
    assert len(losses) == 6
    assert losses[-1] < losses[0] / 2, f"loss did not fall by 2x: {losses}"
    assert sorted(p.name for p in (tmp_path / "fit" / "samples").iterdir()) == [
        "step-00000060.gif", "step-00000060.mp4", "step-00000120.gif", "step-00000120.mp4"]
    assert list((tmp_path / "fit" / "tensorboard").glob("events.out.tfevents.*"))
    model = WorldModel.from_pretrained(result.model_dir)
    first = read_metrics(tmp_path / "fit" / "metrics.jsonl")[0]
    assert {f"loss_by_level/{i:03d}-{i + 99:03d}" for i in range(0, 1000, 100)} <= first.keys()
    assert {f"loss_by_frame/{t:02d}" for t in range(6)} <= first.keys()
    assert model.metadata["training"]["steps"] == 120


def test_pretrain_then_world_model(doom, doom_video, tmp_path):
    """A passive pixel-space video model pretrained on action-free video, then causalized and fine-tuned."""
    pre = load_config(None, ["mode=pretrain", "model.preset=pixel-tiny", f"data.path={doom_video}",
                             f"out={tmp_path / 'pre'}", "train.steps=3", "data.size=[32,32]", "data.length=6",
                             "log.tensorboard=false", "data.workers=0", "log.sample_every=3", "log.sample_steps=2"])
    passive = WorldModel.from_pretrained(train(pre, progress=False).model_dir)
    assert not passive.unet.is_causal and passive.action_dim is None
    assert (tmp_path / "pre" / "samples" / "step-00000003.gif").stat().st_size > 0  # action-free rollouts too
    wm = load_config(None, [f"model.init={tmp_path / 'pre' / 'model'}", "model.preset=pixel-tiny",
                            f"data.path={doom}", f"out={tmp_path / 'wm'}", "train.steps=3", "data.size=[32,32]",
                            "data.length=6", "log.tensorboard=false", "data.workers=0", "log.sample_every=3"])
    model = WorldModel.from_pretrained(train(wm, progress=False).model_dir)
    assert model.unet.is_causal and model.unet.config.causal.temporal_norm == "frame" and model.action_dim == 12
    frames = np.zeros((1, 2, 32, 32, 3), np.uint8)
    assert model.rollout(frames, np.zeros((1, 2, 12), np.float32), steps=2).shape == (1, 1, 32, 32, 3)
    assert (tmp_path / "wm" / "samples" / "step-00000003.mp4").stat().st_size > 0


# ---- errors -----------------------------------------------------------------------------------------------------
def test_action_width_mismatch_is_found_before_the_first_step(doom, tmp_path):
    config = load_config(TINY, [f"data.path={doom}", f"out={tmp_path / 'a'}", "model.action_space=continuous:7",
                                *FAST])
    with pytest.raises(ConfigError, match=r"width 7.*width 12"):
        train(config, progress=False)
    assert not (tmp_path / "a" / "checkpoints").exists()
    # a model directory with another action head: named with both widths
    config = load_config(TINY, [f"data.path={doom}", f"out={tmp_path / 'b'}", "train.steps=1", *FAST])
    model_dir = train(config, progress=False).model_dir
    other = tmp_path / "other"
    record_dataset(RecordConfig("crafter", episodes=2, steps=8, size=32, seed=1), other, progress=False)
    config = load_config(TINY, [f"data.path={other}", f"out={tmp_path / 'c'}", f"model.init={model_dir}", *FAST])
    with pytest.raises(ConfigError, match=r"model.init .*takes multi_hot actions of width 12, but .* width 17"):
        train(config, progress=False)


def test_nan_loss_stops_with_step_and_batch_named_and_saves_nothing(doom, tmp_path, monkeypatch):
    real = trainer_module.clip_loss
    calls = []

    def poisoned(*args, **kw):
        out = real(*args, **kw)
        calls.append(1)
        if len(calls) == 3:
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(trainer_module, "clip_loss", poisoned)
    config = load_config(TINY, [f"data.path={doom}", f"out={tmp_path / 'n'}", "train.steps=5", "log.save_every=2",
                                *FAST])
    with pytest.raises(TrainingError, match=r"non-finite loss nan at step 3 .*episodes \[\d+, \d+\] starts"):
        train(config, progress=False)
    assert [p.name for p in checkpoints(tmp_path / "n" / "checkpoints")] == ["step-00000002"]
    assert sorted(p.name for p in (tmp_path / "n" / "checkpoints").iterdir()) == ["step-00000002"]
    assert not (tmp_path / "n" / "model").exists()


def test_cli_errors(doom, tmp_path):
    from vid2world.cli import main

    assert main(["train", str(TINY), f"data.path={doom}", "train.stpes=3"]) == 2
    out = tmp_path / "r"
    assert main(["train", str(TINY), f"data.path={doom}", f"out={out}", "train.steps=1", *FAST, "--no-progress"]) == 0
    assert main(["train", str(TINY), f"data.path={doom}", f"out={out}", "train.steps=2", *FAST]) == 2  # no --resume
    with pytest.raises(ConfigError, match=r"different config \(optim.lr: 0.001 -> 0.5"):
        train(load_config(TINY, [f"data.path={doom}", f"out={out}", "optim.lr=0.5", *FAST]), resume=True)
    assert main(["train", str(TINY), f"data.path={doom}", f"out={tmp_path / 'none'}", *FAST, "--resume"]) == 2
    with pytest.raises(ConfigError, match=r"model.unet .*random initialisation only"):
        train(load_config(TINY, [f"data.path={doom}", f"out={tmp_path / 'u'}", f"model.init={out / 'model'}",
                                 "model.unet.model_channels=64", *FAST]))
    with pytest.raises(ConfigError, match="data.size .*multiples of 16"):
        train(load_config(TINY, [f"data.path={doom}", f"out={tmp_path / 's'}", *FAST, "data.size=[40,40]"]))


# ---- pieces -----------------------------------------------------------------------------------------------------
def test_ema_update_and_swap():
    shadow = {"w": torch.tensor([1.0, 2.0])}
    ema_update(shadow, {"w": torch.tensor([3.0, 6.0])}, decay=0.75)
    assert torch.allclose(shadow["w"], torch.tensor([1.5, 3.0]))
    layer = torch.nn.Linear(2, 1)
    ema = EMA(layer, 0.5)
    before = layer.weight.detach().clone()
    with torch.no_grad():
        layer.weight.add_(2.0)
    ema.update(layer)
    with ema.applied(layer):
        assert torch.allclose(layer.weight, before + 1.0)
    assert torch.allclose(layer.weight, before + 2.0)


def test_learning_rate_warmup():
    config = load_config(None, ["optim.lr=0.1", "optim.warmup_steps=4"])
    assert [learning_rate(config, s) for s in range(6)] == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1])


def test_loss_tally_buckets():
    tally = LossTally(frames=2)
    tally.add(torch.tensor([[1.0, 3.0], [5.0, 7.0]]), torch.tensor([[0, 150], [99, 999]]))
    scalars = tally.scalars(tally.packed())
    assert scalars["loss_by_level/000-099"] == 3.0 and scalars["loss_by_level/100-199"] == 3.0
    assert scalars["loss_by_level/900-999"] == 7.0 and "loss_by_level/500-599" not in scalars
    assert scalars["loss_by_frame/00"] == 3.0 and scalars["loss_by_frame/01"] == 5.0


def test_sampler_start_continues_the_key_stream():
    whole = list(ClipSampler(7, rank=1, world_size=2, seed=3, epoch=0, epochs=3))
    per_epoch = ClipSampler(7, 1, 2).per_epoch
    for consumed in (0, 2, 5, 9):
        epoch, start = divmod(consumed, per_epoch)
        assert list(ClipSampler(7, 1, 2, 3, epoch, epochs=3 - epoch, start=start)) == whole[consumed:]


def test_checkpoints_keep_last_and_leave_no_temporaries(tmp_path):
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path, TrainerState(step=step), {"w": torch.ones(2)}, {"optimizer": {}}, [{}], None,
                        keep_last=2)
    assert [p.name for p in checkpoints(tmp_path)] == ["step-00000003", "step-00000004"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000003", "step-00000004"]
    (tmp_path / "step-00000009").mkdir()  # incomplete (no trainer.json): never found
    assert checkpoints(tmp_path)[-1].name == "step-00000004"


# ---- shipped configs --------------------------------------------------------------------------------------------
def test_every_shipped_config_loads():
    names = sorted(p.name for p in (ROOT / "configs").glob("*.yaml"))
    assert {"tiny.yaml", "doom-pretrain.yaml", "doom-world.yaml", "dynamicrafter-512-rt1.yaml",
            "dynamicrafter-512-csgo.yaml", "dynamicrafter-512-recon.yaml"} <= set(names)
    for name in names:
        config = load_config(ROOT / "configs" / name)
        assert config.mode in ("pretrain", "world-model"), name
    rt1 = load_config(ROOT / "configs" / "dynamicrafter-512-rt1.yaml")  # method.md section 8
    assert (rt1.optim.lr, rt1.optim.grad_clip, rt1.train.batch_size, rt1.train.grad_accum) == (1e-5, 0.5, 2, 2)
    assert rt1.model.gradient_checkpointing and rt1.train.action_dropout == 0.2 and rt1.data.size == [320, 512]


def test_dynamicrafter_config_fine_tunes_a_checkpoint(tmp_path):
    """configs/dynamicrafter-512-rt1.yaml on a tiny stand-in of DynamiCrafter's model.ckpt (same layout) and a small
    dataset with RT-1's 13-d continuous actions: converted, then trained with the VAE and CLIP frozen."""
    from vid2world.data.spec import ActionSpec, DatasetMeta
    from vid2world.data.writer import DatasetWriter
    from vid2world.checkpoints.registry import PRETRAINED
    from vid2world.testing import random_parts, write_checkpoint

    parts = random_parts(PRETRAINED["tiny"], seed=1)
    ckpt = write_checkpoint(tmp_path / "model.ckpt", parts)
    rng = np.random.default_rng(0)
    meta = DatasetMeta("rt1-like", 3.0, (40, 64), ActionSpec.continuous([f"a{i}" for i in range(13)]))
    with DatasetWriter(tmp_path / "rt1", meta) as writer:
        for _ in range(3):
            writer.add(rng.integers(0, 255, (12, 40, 64, 3), dtype=np.uint8), rng.normal(size=(12, 13)))
    config = load_config(ROOT / "configs" / "dynamicrafter-512-rt1.yaml", [
        "model.preset=tiny", f"model.init={ckpt}", f"data.path={tmp_path / 'rt1'}", f"out={tmp_path / 'run'}",
        "data.size=[64,128]", "data.length=8", "data.workers=0", "train.steps=2", "train.precision=bf16",
        "optim.lr=1e-3", "log.sample_every=0", "log.tensorboard=false"])
    model = WorldModel.from_pretrained(train(config, progress=False).model_dir)
    assert model.unet.is_causal and model.action_dim == 13 and model.window == 8
    assert model.unet.config.action_space.kind == "continuous"
    vae = model.codec.vae.state_dict()
    assert all(torch.equal(vae[k], v) for k, v in parts["vae"].items()), "the VAE must stay frozen"
    image = model.conditioner.image_encoder.state_dict()
    assert all(torch.equal(image[k], v) for k, v in parts["image_encoder"].items()), "CLIP must stay frozen"
    proj = model.conditioner.image_proj.state_dict()
    assert not all(torch.equal(proj[k], v) for k, v in parts["image_proj"].items()), "the Resampler trains"


def test_bench_train_times_the_real_loop(tmp_path):
    from vid2world.cli import main

    assert main(["bench", "train", "--preset", "tiny", "--latent", "4x4", "--frames", "6", "--steps", "4",
                 "--no-progress", "--json", str(tmp_path / "b.json")]) == 0
    result = json.loads((tmp_path / "b.json").read_text())
    assert result["frame_size"] == [32, 32] and result["trainable_parameters"] > 1_000_000
    assert 0 < result["step_s"] and result["clips_per_s"] == pytest.approx(2 / result["step_s"])
    assert result["gpu_peak_gb"] is None and result["device"] == "cpu" and np.isfinite(result["last_loss"])
    assert main(["bench", "train", "--preset", "tiny", "--steps", "2", "--warmup", "2"]) == 2
