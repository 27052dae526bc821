"""One training loss from one batch of clips: what a step of either mode computes (method.md 4.7).

`Denoiser` holds the trainable network (the UNet, and the conditioner whose Resampler trains while its CLIP tower
stays frozen); it is what the distributed wrapper (DDP/FSDP) sees. The codec (VAE) is frozen and runs outside it,
under `no_grad`. `clip_loss` draws every random choice (noise levels, noise, action and image dropout, the VAE's
posterior sample) from the one generator it is given, so a run's randomness is that generator's state.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..data.clips import to_model_input
from ..diffusion.losses import LossOutput, diffusion_forcing_loss, full_sequence_loss
from ..diffusion.schedule import NoiseSchedule
from ..world.frames import check_finite
from ..world.denoise import conditioning_from, conditioning_of, denoise
from ..world.world_model import WorldModel


@dataclass(frozen=True)
class Objective:
    """How a clip becomes a loss: Diffusion Forcing with action dropout (world-model mode) or one noise level per
    clip without actions (pretrain mode)."""

    diffusion_forcing: bool = True
    action_dropout: float = 0.2
    image_dropout: float = 0.1


def freeze_encoders(model: WorldModel) -> None:
    """What does not train (method.md 8): the codec (VAE) and the CLIP image tower; the Resampler trains."""
    model.codec.requires_grad_(False).eval()
    if model.conditioner is not None and hasattr(model.conditioner, "image_encoder"):
        model.conditioner.image_encoder.requires_grad_(False)


class Denoiser(nn.Module):
    """The trainable part of a world model: `forward(x_noisy, levels, concat, cond_frame, frame_actions, mask)`."""

    def __init__(self, model: WorldModel) -> None:
        super().__init__()
        self.unet = model.unet
        self.conditioner = model.conditioner
        self.fps = model.fps

    def forward(self, x_noisy: Tensor, levels: Tensor, concat: Tensor | None, cond_frame: Tensor | None,
                frame_actions: Tensor | None, action_mask: Tensor | None) -> Tensor:
        # the context is computed here, inside the wrapped module, so the Resampler's gradients reach DDP/FSDP
        context = None if self.conditioner is None or cond_frame is None else self.conditioner(cond_frame)
        return denoise(self.unet, x_noisy, levels, conditioning_from(concat, context, self.fps), frame_actions,
                       action_mask)


@torch.no_grad()
def encode_clips(model: WorldModel, frames: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """uint8 frames [B, T, H, W, 3] -> (pixels [B, 3, T, H, W] in [-1, 1], latents [B, C, T, h, w]) with the
    frozen codec (the VAE posterior sampled from `generator`)."""
    pixels = to_model_input(frames.to(model.device))
    return pixels, model.codec.encode(pixels, generator=generator)


def check_batch_actions(batch: dict[str, Tensor]) -> None:
    """A NaN or inf action would only show up later as a non-finite loss: name it, with the clip it came from."""

    def source(row: int) -> str:
        if "episode" not in batch or "start" not in batch:
            return ""
        episode, start = int(batch["episode"][row]), int(batch["start"][row])
        return f" (clip {row} of the batch: episode {episode}, from frame {start})"

    check_finite(batch["actions"], "batch actions", source)


def clip_loss(denoiser: nn.Module, model: WorldModel, batch: dict[str, Tensor], objective: Objective,
              generator: torch.Generator) -> LossOutput:
    """The loss of one batch of clips (`frames` uint8 [B, T, H, W, 3], or `latents` [B, C, T, h, w] already
    encoded by the model's codec; `actions` [B, T, A] when the model has actions). `denoiser` is
    `Denoiser(model)`, possibly wrapped for distributed training."""
    if model.action_dim is not None:
        check_batch_actions(batch)  # before the codec's work
    if "latents" in batch:  # encoded once, ahead of training (cached latents)
        if model.conditioner is not None:
            raise ValueError("cached latents cannot train a model with an image conditioner: it needs the frames")
        pixels, x0 = None, batch["latents"].to(model.device, torch.float32)
    else:
        pixels, x0 = encode_clips(model, batch["frames"], generator)
    b = x0.shape[0]
    concat = conditioning_of(model, x0).concat  # the clean first-frame latent (never dropped)
    cond_frame = None
    if model.conditioner is not None:  # zero the CLIP frame of a clip with probability image_dropout
        keep = (torch.rand(b, generator=generator) >= objective.image_dropout).to(pixels)
        cond_frame = pixels[:, :, 0] * keep[:, None, None, None]
    frame_actions = None
    if model.action_dim is not None:
        frame_actions = model.latent_actions(batch["actions"][:, :-1].to(x0.device, torch.float32))

    def denoise(x: Tensor, levels: Tensor, mask: Tensor) -> Tensor:
        return denoiser(x, levels, concat, cond_frame, frame_actions, mask)

    schedule: NoiseSchedule = model.schedule
    if objective.diffusion_forcing:
        return diffusion_forcing_loss(denoise, schedule, x0, objective.action_dropout, generator)
    return full_sequence_loss(denoise, schedule, x0, 0.0, generator)
