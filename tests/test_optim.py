"""The one optimiser step and learning-rate schedule every training loop uses (train/optim.py)."""

from __future__ import annotations

import pytest
import torch

from vid2world.train.ema import EMA
from vid2world.train.optim import lr_at, optimizer_step


def test_schedule_warms_up_then_holds_or_decays_to_its_floor():
    assert [lr_at(s, 100, 1.0, 4, decay=False) for s in (0, 3, 4, 99)] == pytest.approx([0.25, 1.0, 1.0, 1.0])
    assert lr_at(4, 100, 1.0, 4) == pytest.approx(1.0) and lr_at(100, 100, 1.0, 4) == pytest.approx(0.1)
    assert lr_at(100, 100, 2.0, 0, floor=0.0) == pytest.approx(0.0)
    halfway = lr_at(52, 100, 1.0, 4, floor=0.0)
    assert halfway == pytest.approx(0.5)  # the cosine's midpoint
    decaying = [lr_at(s, 100, 1.0, 4) for s in range(4, 101)]
    assert all(a >= b for a, b in zip(decaying, decaying[1:]))


def test_optimizer_step_clips_steps_clears_and_updates_the_ema():
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 2)
    ema = EMA(layer, 0.5)
    before = {n: p.detach().clone() for n, p in layer.named_parameters()}
    optimizer = torch.optim.SGD(layer.parameters(), lr=1.0)
    (layer(torch.randn(4, 3)) * 100).sum().backward()
    norm = optimizer_step(optimizer, layer.parameters(), grad_clip=0.01, ema=ema, module=layer)
    assert norm > 0.01  # the norm before clipping
    moved = torch.cat([(p.detach() - before[n]).flatten() for n, p in layer.named_parameters()])
    assert moved.norm() == pytest.approx(0.01, rel=1e-4)  # SGD at lr 1 moves by exactly the clipped gradient
    assert all(p.grad is None for p in layer.parameters())
    for n, p in layer.named_parameters():
        assert torch.allclose(ema.shadow[n], (before[n] + p.detach()) / 2)
    assert optimizer_step(optimizer, layer.parameters()) is None  # no clipping asked


def test_a_fused_optimiser_step_is_seen_by_the_weights_version():
    # a session samples bf16 with a copy of the weights, made again when their version changes: a fused AdamW
    # updates in place without counting it, so the shared step counts it
    from vid2world.models.precision import weights_version
    from vid2world.train.optim import optimizer_step

    layer = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(layer.parameters(), lr=0.1, fused=True)
    before = weights_version(layer)
    layer(torch.ones(1, 3)).sum().backward()
    optimizer_step(optimizer, layer.parameters(), grad_clip=1.0)
    assert weights_version(layer) != before


def test_a_nan_gradient_stops_training_before_any_weight_changes():
    layer = torch.nn.Linear(3, 2)
    before = [p.detach().clone() for p in layer.parameters()]
    optimizer = torch.optim.AdamW(layer.parameters(), lr=1.0)
    (layer(torch.tensor([[1.0, float("nan"), 0.0]]))).sum().backward()
    with pytest.raises(FloatingPointError, match="gradient's norm is nan.*weights were not updated"):
        optimizer_step(optimizer, layer.parameters(), grad_clip=1.0)
    assert all(torch.equal(p, b) for p, b in zip(layer.parameters(), before))
    assert all(p.grad is None for p in layer.parameters())
