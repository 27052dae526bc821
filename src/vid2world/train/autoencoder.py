"""Training a small KL autoencoder of our own (frames -> latents), for world models trained where the Stable
Diffusion VAE is out of reach (2 CPU cores, 64x64 frames).

The loss is LDM's without the adversary: L1 reconstruction plus a small KL to a unit Gaussian, so that latents stay
bounded and sampling from the posterior changes little. After training, `calibrate_scale` sets the codec's
`scale_factor` to 1 / std of the latents, as SD's 0.18215 was chosen, so the UNet sees unit variance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from ..data.clips import to_model_input
from ..io.progress import progress_bar
from ..models.codec import LatentCodec
from .optim import lr_at, optimizer_step, set_lr
from ..models.precision import autocast


@dataclass(frozen=True)
class AutoencoderFitConfig:
    steps: int = 1500
    batch: int = 32  # frames per step
    lr: float = 1e-3
    warmup: int = 50
    kl_weight: float = 1e-6
    precision: str = "bf16"  # fp32 | bf16 (CPU autocast)
    seed: int = 0


def sample_frames(frames: Sequence[np.ndarray], count: int, gen: torch.Generator) -> torch.Tensor:
    """`count` frames drawn uniformly from episodes of uint8 frames [T_i, H, W, 3] -> uint8 [count, H, W, 3]."""
    lengths = torch.tensor([len(f) for f in frames], dtype=torch.float64)
    episodes = torch.multinomial(lengths, count, replacement=True, generator=gen)
    picks = [frames[int(e)][int(torch.randint(len(frames[int(e)]), (1,), generator=gen))] for e in episodes]
    return torch.from_numpy(np.stack(picks))


def _to_images(frames: torch.Tensor) -> torch.Tensor:
    return to_model_input(frames[:, None])[:, :, 0]  # uint8 [N, H, W, 3] -> [-1, 1] [N, 3, H, W]


def decoder_parameters(vae: torch.nn.Module) -> list[torch.nn.Parameter]:
    """What turns latents into frames: the decoder and the 1x1 conv before it."""
    return [p for name, p in vae.named_parameters() if name.startswith(("decoder.", "post_quant_conv."))]


def fit_autoencoder(codec: LatentCodec, frames: Sequence[np.ndarray], config: AutoencoderFitConfig,
                    progress: bool = False, on_step: Callable[[int, dict[str, float]], None] | None = None,
                    decoder_only: bool = False) -> None:
    """Train `codec.vae` on frames drawn from `frames` (episodes of uint8 [T, H, W, 3]). `decoder_only` keeps the
    encoder as it is, so every latent it makes stays the same (and whatever was trained on them stays valid): the
    decoder alone learns to draw these frames from them."""
    gen = torch.Generator().manual_seed(config.seed)
    vae = codec.vae.train()
    if decoder_only:
        vae.eval().requires_grad_(False)
        for p in decoder_parameters(vae):
            p.requires_grad_(True)
        vae.decoder.train()
    params = [p for p in vae.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0, betas=(0.9, 0.99), fused=True)
    for step in progress_bar(range(config.steps), desc="decoder" if decoder_only else "autoencoder", unit="step",
                             enabled=progress):
        set_lr(optimizer, lr_at(step, config.steps, config.lr, config.warmup))
        x = _to_images(sample_frames(frames, config.batch, gen))
        with autocast(config.precision, x.device):
            with torch.set_grad_enabled(not decoder_only):
                posterior = vae.encode(x)
            z = posterior.sample(noise=torch.randn(posterior.mean.shape, generator=gen))
            recon = vae.decode(z).float()
        l1 = (recon - x).abs().mean()
        mean, logvar = posterior.mean.float(), posterior.logvar.float()
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=(1, 2, 3)).mean()
        loss = l1 + config.kl_weight * kl
        loss.backward()
        optimizer_step(optimizer, params, grad_clip=1.0)
        if on_step:
            on_step(step, {"l1": l1.item(), "kl": kl.item()})
    vae.eval().requires_grad_(True)


@torch.no_grad()
def encode_frames(codec: LatentCodec, frames: np.ndarray, batch: int = 256) -> torch.Tensor:
    """uint8 frames [N, H, W, 3] -> scaled posterior means [N, C, h, w] (float32), in batches."""
    out = []
    for lo in range(0, len(frames), batch):
        x = _to_images(torch.from_numpy(np.array(frames[lo:lo + batch])))  # a copy: frames may be read-only
        out.append(codec.vae.encode(x).mode() * codec.scale_factor)
    return torch.cat(out)


@torch.no_grad()
def calibrate_scale(codec: LatentCodec, frames: Sequence[np.ndarray], count: int = 2048, seed: int = 0) -> float:
    """Set and return `codec.scale_factor` = 1 / std of unscaled latent means over `count` sampled frames."""
    sample = sample_frames(frames, count, torch.Generator().manual_seed(seed)).numpy()
    codec.scale_factor = 1.0
    std = float(encode_frames(codec, sample).std())
    codec.scale_factor = round(1.0 / std, 5)
    return codec.scale_factor
