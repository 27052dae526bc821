"""Few-step distillation (`train/distill.py`): the student's training pass is the teacher's session, it learns,
and a run resumes exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vid2world as v2w
from vid2world.world.sampling import FastPreset
from vid2world.train.distill import DistillConfig, distill, distill_loss, make_student, teacher_sampling
from vid2world.train.in_memory import EpisodeSampler

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
    student, losses = distill(t, latents, actions, config, source="teacher")
    assert len(losses) == 30 and held_loss(student) < 0.8 * before
    assert student.sampling("fast").steps == 1 and student.sampling("fast").guidance == 1.0
    assert student.metadata["distilled_from"] == "teacher"


def test_a_stopped_distillation_resumes_exactly(tmp_path):
    t = teacher(torch.float32, steps=2, guidance=2.5)  # the tiny UNet has dropout: its stream must resume too
    latents, actions = episodes()
    config = DistillConfig(steps=8, batch=2, lr=3e-4, warmup=2, precision="fp32", ema_decay=0.9)
    student, losses = distill(t, latents, actions, config)
    state = tmp_path / "state.pt"  # stopped during step 6 (saved after step 4), then resumed: the same run

    def stop(step, loss):
        if step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        distill(t, latents, actions, config, state=state, checkpoint_every=4, on_step=stop)
    resumed, resumed_losses = distill(t, latents, actions, config, state=state, checkpoint_every=4)
    assert resumed_losses == losses
    for a, b in zip(student.backbone.state_dict().values(), resumed.backbone.state_dict().values()):
        assert torch.equal(a, b)


def test_bad_distill_settings_are_named():
    with pytest.raises(ValueError, match="distill.student_steps"):
        DistillConfig(student_steps=0)
    with pytest.raises(ValueError, match="distill.precision"):
        DistillConfig(precision="fp16")
