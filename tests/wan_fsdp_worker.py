"""Diffusion Forcing steps of a tiny causal, action-conditioned `WanTransformer`, sharded with FSDP2.

Run by tests/test_wan_fsdp.py as `torchrun --nproc_per_node 2 tests/wan_fsdp_worker.py OUT_DIR`: every rank
shards the model with torch's `fully_shard` (one unit per block, one for the rest), trains on its own rows of
each batch over gloo, and rank 0 writes the gathered full model and optimiser state to OUT_DIR/sharded.pt.
The test runs `train_steps` in one process without sharding on the whole batches (`reference`) and compares.

Why torch's `fully_shard` and not accelerate's FSDP2 plugin: accelerate (1.15, accelerate/state.py,
`AcceleratorState.__init__`) turns on `DistributedType.FSDP` only when the distributed type is one of the
accelerator kinds (MULTI_GPU, MULTI_XPU, MULTI_NPU, ...); MULTI_CPU is not among them, so on CPU the plugin is
ignored and `prepare` wraps the model in DDP. The worker records what accelerate picked (`accelerate_type`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                     get_optimizer_state_dict)

from vid2world.diffusion import NoiseSchedule
from vid2world.models.config import ActionSpace
from vid2world.models.wan import WanCausalConfig, WanConfig, WanTransformer
from vid2world.testing import randomize_weights

ROWS, FRAMES, HEIGHT, WIDTH, TEXT_TOKENS = 2, 5, 4, 6, 7  # every batch; each of 2 ranks takes one row
STEPS = 3
LR = 1e-3
FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


def tiny_config() -> WanConfig:
    return WanConfig(num_attention_heads=2, attention_head_dim=12, in_channels=4, out_channels=4, text_dim=16,
                     freq_dim=16, ffn_dim=32, num_layers=2, temporal_length=FRAMES, causal=WanCausalConfig(),
                     action_space=ActionSpace.continuous(8))


def new_model(dtype: torch.dtype) -> WanTransformer:
    """Seeded random weights everywhere (the action embedder's zero-initialised last layer included, so the
    actions' gradients are not zero), block recomputation on as in real training."""
    model = randomize_weights(WanTransformer(tiny_config()), seed=0).to(dtype)
    return model.set_gradient_checkpointing(True)


def batch(step: int, dtype: torch.dtype) -> dict[str, Tensor]:
    """The whole batch of one step, drawn from a seed of its own (so any split of its rows sees the same)."""
    cfg = tiny_config()
    g = torch.Generator().manual_seed(1000 + step)
    rand = lambda *shape: torch.randn(*shape, generator=g, dtype=dtype)  # noqa: E731
    return dict(x0=rand(ROWS, cfg.in_channels, FRAMES, HEIGHT, WIDTH),
                noise=rand(ROWS, cfg.in_channels, FRAMES, HEIGHT, WIDTH),
                levels=torch.randint(0, 1000, (ROWS, FRAMES), generator=g),  # one level per frame
                keep=(torch.rand(ROWS, FRAMES, generator=g) >= 0.2).to(dtype),  # per-frame action dropout
                actions=rand(ROWS, FRAMES, cfg.action_space.dim),
                context=rand(ROWS, TEXT_TOKENS, cfg.text_dim))


def diffusion_forcing_loss(model: nn.Module, schedule: NoiseSchedule, b: dict[str, Tensor]) -> Tensor:
    """v-prediction MSE at per-frame levels (the schedule's dynamic rescale first), mean over rows and
    frames."""
    x0 = b["x0"] * schedule.scale(b["levels"], b["x0"])
    noisy = schedule.add_noise(x0, b["levels"], b["noise"])
    out = model(noisy, b["levels"], b["context"], actions=b["actions"], action_mask=b["keep"])
    target = schedule.target(x0, b["noise"], b["levels"])
    return (out - target).square().mean()


def train_steps(model: nn.Module, rows: slice, dtype: torch.dtype,
                steps: int = STEPS) -> tuple[torch.optim.Optimizer, list[float]]:
    """AdamW steps on `rows` of each batch; returns the optimiser and each step's loss (this process')."""
    schedule = NoiseSchedule()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01)
    losses = []
    for step in range(steps):
        b = {k: v[rows] for k, v in batch(step, dtype).items()}
        loss = diffusion_forcing_loss(model, schedule, b)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return optimizer, losses


def reference(dtype: torch.dtype, rows: slice = slice(None)) -> tuple[dict, dict, list[float]]:
    """The same steps in one process, unsharded, on whole batches (or `rows` of them): (model state,
    optimiser state, losses)."""
    model = new_model(dtype)
    optimizer, losses = train_steps(model, rows, dtype)
    return (get_model_state_dict(model, options=FULL),
            get_optimizer_state_dict(model, optimizer, options=FULL), losses)


def accelerate_type() -> str:
    """What accelerate's FSDP2 plugin turns into on this machine (MULTI_CPU: not FSDP, see the docstring)."""
    from accelerate import Accelerator, FullyShardedDataParallelPlugin
    from accelerate.state import AcceleratorState

    accelerator = Accelerator(cpu=True, fsdp_plugin=FullyShardedDataParallelPlugin(fsdp_version=2))
    kind = accelerator.distributed_type.value
    AcceleratorState._reset_state()  # the process group stays; accelerate's settings go
    return kind


def main(out_dir: Path, dtype: torch.dtype) -> None:
    from torch.distributed.fsdp import fully_shard

    kind = accelerate_type()  # sets up the gloo process group as accelerate would
    if not dist.is_initialized():
        dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    if ROWS % world:
        raise ValueError(f"wan_fsdp_worker: {ROWS} batch rows do not split over {world} processes")
    model = new_model(dtype)
    total = sum(p.numel() for p in model.parameters())
    for block in model.blocks:
        fully_shard(block)
    fully_shard(model)
    local = sum(p.to_local().numel() for p in model.parameters())
    sharded = all(type(p).__name__ == "DTensor" for p in model.parameters())
    per_rank = ROWS // world
    # the loss is a mean over this rank's rows; FSDP averages gradients over ranks: the mean over all rows
    optimizer, losses = train_steps(model, slice(rank * per_rank, (rank + 1) * per_rank), dtype)
    mean_losses = torch.tensor(losses, dtype=torch.float64)
    dist.all_reduce(mean_losses)
    counts = [None] * world
    dist.all_gather_object(counts, (local, sharded))
    state = get_model_state_dict(model, options=FULL)  # collective: every rank takes part
    optim_state = get_optimizer_state_dict(model, optimizer, options=FULL)
    if rank == 0:
        torch.save(dict(model=state, optimizer=optim_state, losses=(mean_losses / world).tolist(),
                        total_numel=total, local_numel=[c[0] for c in counts],
                        all_dtensor=[c[1] for c in counts], world=world, accelerate_type=kind),
                   out_dir / "sharded.pt")
    dist.barrier()
    dist.destroy_process_group()


DTYPES = {"float32": torch.float32, "float64": torch.float64}

if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or sys.argv[2:] and sys.argv[2] not in DTYPES:
        raise SystemExit(f"usage: torchrun --nproc_per_node 2 tests/wan_fsdp_worker.py OUT_DIR "
                         f"[{'|'.join(DTYPES)}]")
    main(Path(sys.argv[1]), DTYPES[sys.argv[2] if sys.argv[2:] else "float32"])
