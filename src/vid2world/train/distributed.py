"""What differs between one process, DDP and FSDP: the accelerator, and full (unsharded) state dicts.

Checkpoints always hold full state dicts, gathered with `torch.distributed.checkpoint.state_dict` (collective under
FSDP, a plain copy otherwise), so a run saved under one strategy reads the same way under any. Under FSDP the
modules' own parameters are shards, so anything that needs whole weights on rank 0 (export) uses the gathered copy.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                     get_optimizer_state_dict, set_optimizer_state_dict)

from ..models.conditioning import conditioner_from_config

from ..world.world_model import WorldModel
from .config import ConfigError, TrainConfig

FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


def make_accelerator(config: TrainConfig):
    """An `accelerate.Accelerator` for the config: precision, DDP or FSDP (FSDP2, GPUs only)."""
    from accelerate import Accelerator, DistributedDataParallelKwargs, DistributedType

    precision = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}[config.train.precision]
    cuda = torch.cuda.is_available()
    if precision == "fp16" and not cuda:
        raise ConfigError("train.precision fp16 needs a GPU (gradient scaling); use bf16 or fp32 on CPU")
    kwargs = {}
    fsdp = config.train.distributed == "fsdp"
    if fsdp:
        from accelerate import FullyShardedDataParallelPlugin

        if config.optim.ema_decay:
            raise ConfigError("optim.ema_decay with train.distributed fsdp: EMA of sharded weights is not supported; "
                              "use ddp, or no EMA")
        kwargs["fsdp_plugin"] = FullyShardedDataParallelPlugin(fsdp_version=2, reshard_after_forward=True)
    # accelerate keeps its settings in a process-wide singleton: forget the last run's (precision) so that several
    # runs in one process (notebooks, tests, benchmarks) each get their own; the process group stays as it is
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state()
    acc = Accelerator(cpu=not cuda, mixed_precision=precision, step_scheduler_with_optimizer=False,
                      kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=False)], **kwargs)
    if fsdp and acc.num_processes > 1 and acc.distributed_type != DistributedType.FSDP:
        raise ConfigError(f"train.distributed fsdp: accelerate runs {acc.distributed_type.value} here (FSDP needs "
                          "CUDA devices); use train.distributed=ddp on CPU")
    return acc


def is_sharded(acc) -> bool:
    from accelerate import DistributedType

    return acc.distributed_type == DistributedType.FSDP


def full_model_state(acc, wrapped: nn.Module) -> dict[str, torch.Tensor]:
    """Every weight of the trainable module, unsharded, on the CPU (complete on rank 0; collective)."""
    return get_model_state_dict(acc.unwrap_model(wrapped), options=FULL)


def full_optimizer_state(acc, wrapped: nn.Module, optimizer) -> dict:
    """The optimiser's state keyed by parameter name, unsharded (complete on rank 0; collective)."""
    return get_optimizer_state_dict(acc.unwrap_model(wrapped), _inner(optimizer), options=FULL)


def load_optimizer_state(acc, wrapped: nn.Module, optimizer, state: dict) -> None:
    """Load a state from `full_optimizer_state` into the prepared optimiser (every rank reads it)."""
    set_optimizer_state_dict(acc.unwrap_model(wrapped), _inner(optimizer), state,
                             options=StateDictOptions(full_state_dict=True))


def _inner(optimizer):
    return getattr(optimizer, "optimizer", optimizer)  # accelerate's wrapper holds the torch optimiser


def exportable(model: WorldModel, full_state: dict[str, torch.Tensor] | None) -> WorldModel:
    """`model` itself, or (sharded runs) a copy holding the gathered `full_state` of its UNet and conditioner."""
    if full_state is None:
        return model
    with torch.device("meta"):
        unet = type(model.backbone)(model.backbone.config)  # any backbone: its class and config
        conditioner = None if model.conditioner is None else conditioner_from_config(model.conditioner.config())
    def part(prefix: str) -> dict[str, torch.Tensor]:  # Denoiser's state: "unet.*" and "conditioner.*"
        return {k.removeprefix(prefix): v for k, v in full_state.items() if k.startswith(prefix)}

    unet.load_state_dict(part("unet."), assign=True)
    if conditioner is not None:
        conditioner.load_state_dict(part("conditioner."), assign=True)
    return WorldModel(unet, model.codec, model.schedule.config, model.sampler, fps=model.fps,
                      concat_first_frame=model.concat_first_frame, conditioner=conditioner,
                      metadata=model.metadata)
