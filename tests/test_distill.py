"""Few-step distillation (`train/distill.py`): the student's training pass is the teacher's session, it learns,
and a run resumes exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import vid2world as v2w
from vid2world.world.sampling import FastPreset
from vid2world.train.distill import (DistillConfig, distill, distill_loss, make_student, own_context,
                                     teacher_sampling)
from vid2world.train.in_memory import EpisodeSampler
from vid2world.train.latent_cache import cached_latents

from .test_world_model import pixel_unet


def episodes(n=3, t=10, seed=0):
    rng = np.random.default_rng(seed)
    latents = [rng.standard_normal((t, 3, 8, 8)).astype(np.float32) for _ in range(n)]
    actions = [rng.standard_normal((t, 2)).astype(np.float32) for _ in range(n)]
    return latents, actions


def teacher(dtype=torch.float64, steps=1, guidance=1.0):
    fast = FastPreset(steps=steps, guidance=guidance, precision="fp32")
    sampler = v2w.SamplerConfig(steps=steps, eta=0.0, history_level="clean", window=5, fast=fast)
    return v2w.WorldModel(pixel_unet().to(dtype), sampler=sampler)


def held_batch(latents, actions, seed=3):
    return EpisodeSampler(latents, actions, 5, "latents").batch(4, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("k", [1, 4])
def test_a_copy_of_a_one_step_teacher_has_zero_loss(k):
    # the student's recomputed window and the teacher's cached session compute the same frame from the same
    # noise: any misalignment of actions, levels or noise between the two would show as a loss
    t = teacher()
    config = DistillConfig(student_steps=1, precision="fp32", teacher_guidance=1.0)
    student = make_student(t, config, "teacher")
    latents, actions = episodes()
    loss = distill_loss(t, student, teacher_sampling(t, config), held_batch(latents, actions), k,
                        torch.Generator().manual_seed(0), "fp32")
    scale = float(np.mean([np.mean(x ** 2) for x in latents]))
    assert loss.item() <= 1e-20 * scale
    other = distill_loss(t, student,
                         teacher_sampling(t, DistillConfig(teacher_guidance=3.0)), held_batch(latents, actions), k,
                         torch.Generator().manual_seed(0), "fp32")
    assert other.item() > 1e-6 * scale  # guidance changes the teacher's frame: the loss sees it


def test_distillation_learns_a_guided_teacher():
    t = teacher(torch.float32, steps=2, guidance=2.5)
    latents, actions = episodes()
    config = DistillConfig(steps=30, batch=4, lr=3e-4, warmup=2, precision="fp32", ema_decay=None)
    sampling = teacher_sampling(t, config)

    def held_loss(model):
        return distill_loss(t, model, sampling, held_batch(latents, actions), 3, torch.Generator().manual_seed(0),
                            "fp32").item()

    before = held_loss(make_student(t, config, "teacher"))
    student, losses, _ = distill(t, latents, actions, config, source="teacher")
    assert len(losses) == 30 and held_loss(student) < 0.8 * before
    assert student.sampling("fast").steps == 1 and student.sampling("fast").guidance == 1.0
    assert student.metadata["distilled_from"] == "teacher"


def test_a_stopped_distillation_resumes_exactly(tmp_path):
    t = teacher(torch.float32, steps=2, guidance=2.5)  # the tiny UNet has dropout: its stream must resume too
    latents, actions = episodes()
    config = DistillConfig(steps=8, batch=2, lr=3e-4, warmup=2, precision="fp32", ema_decay=0.9, own_context=0.5)
    student, losses, _ = distill(t, latents, actions, config)
    state = tmp_path / "state.pt"  # stopped during step 6 (saved after step 4), then resumed: the same run

    def stop(step, loss):
        if step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        distill(t, latents, actions, config, state=state, checkpoint_every=4, on_step=stop)
    first_part = torch.load(state, weights_only=True)["wall_s"]
    resumed, resumed_losses, wall_s = distill(t, latents, actions, config, state=state, checkpoint_every=4)
    assert resumed_losses == losses
    assert 0 < first_part < wall_s  # the seconds of both parts, added up
    for a, b in zip(student.backbone.state_dict().values(), resumed.backbone.state_dict().values()):
        assert torch.equal(a, b)


def test_own_context_is_the_students_rollout_from_the_first_real_frame():
    t = teacher(torch.float64, steps=2, guidance=2.5)
    config = DistillConfig(student_steps=1, precision="fp32")
    student = make_student(t, config, "teacher")
    latents, actions = episodes()
    batch = held_batch(latents, actions)
    lat = batch["latents"][:, :, :4].double()
    fa = student.latent_actions(batch["actions"][:, :3].double())
    made = own_context(student, lat[:, :, :3], fa, seed=5)
    assert torch.equal(made[:, :, :1], lat[:, :, :1]) and not torch.allclose(made[:, :, 1:], lat[:, :, 1:3])
    session = student.latent_session(lat[:, :, :1], fa[:, :1], sampling=student.sampling("fast"), seed=5)
    assert torch.equal(made[:, :, 1:2], session.step_latent(fa[:, 1]))  # the student's own session, step by step
    sampling = teacher_sampling(t, config)
    real, own = (distill_loss(t, student, sampling, batch, 3, torch.Generator().manual_seed(0), "fp32", flag)
                 for flag in (False, True))
    assert real.item() != own.item()


def test_bad_distill_settings_are_named():
    with pytest.raises(ValueError, match="distill.student_steps"):
        DistillConfig(student_steps=0)
    with pytest.raises(ValueError, match="distill.precision"):
        DistillConfig(precision="fp16")
    with pytest.raises(ValueError, match="distill.own_context"):
        DistillConfig(own_context=1.5)


def test_the_distill_command_writes_a_student_and_goes_on_after_a_stop(tmp_path, capsys):
    from vid2world.cli import main

    from .test_eval_run import make_inputs

    model, data = make_inputs(tmp_path / "inputs")
    out = tmp_path / "student"
    config = tmp_path / "distill.yaml"
    config.write_text("steps: 3\nbatch: 2\nprecision: fp32\nteacher_steps: 2\nteacher_guidance: 2.0\n")
    assert main(["distill", str(model), "--data", str(data), "--out", str(out), "--config", str(config),
                 "--no-progress"]) == 0
    student = v2w.WorldModel.from_pretrained(out / "model")
    assert student.sampling("fast").steps == 1 and student.sampling("quality").guidance == 1.0
    record = json.loads((out / "model" / "distill.json").read_text())
    assert len(record["loss"]) == 3 and record["config"]["teacher_guidance"] == 2.0
    assert (out / "latents-train.npy").is_file() and (out / "state.pt").is_file()
    assert main(["distill", str(model), "--data", str(data), "--out", str(out), "--no-progress"]) == 0
    assert "already distilled" in capsys.readouterr().out


@pytest.mark.parametrize("override, message", [("stpes=3", "unknown DistillConfig keys"),
                                               ("steps", "expected key=value"),
                                               ("student_steps=9", "distill.student_steps")])
def test_bad_distill_overrides_are_one_line_errors(tmp_path, capsys, override, message):
    from vid2world.cli import main

    code = main(["distill", "missing-model", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
                 "--set", override])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_cached_latents_are_encoded_once_and_refuse_another_datasets_file(tmp_path):
    calls = []

    def encode(frames):
        calls.append(len(frames))
        return torch.from_numpy(frames[..., :2].transpose(0, 3, 1, 2).astype(np.float32))

    episodes_ = [np.random.default_rng(i).integers(0, 255, (n, 4, 4, 3), dtype=np.uint8) for i, n in enumerate((3, 5))]
    first = cached_latents(tmp_path / "z.npy", episodes_, encode)
    again = cached_latents(tmp_path / "z.npy", episodes_, encode)
    assert calls == [3, 5] and [len(z) for z in again] == [3, 5]
    assert all(np.array_equal(a, b) and a.dtype == np.float16 for a, b in zip(first, again))
    with pytest.raises(ValueError, match=r"z\.npy: 8 latents for the 3 frames"):
        cached_latents(tmp_path / "z.npy", episodes_[:1], encode)
