"""The noise schedule: tables as pure functions, and `NoiseSchedule` that noises and un-noises per frame.

The official (DynamiCrafter / Vid2World) schedule: betas = linspace(sqrt(0.00085), sqrt(0.012), 1000)^2 in float64
("linear" in lvdm, "scaled_linear" in diffusers), rescaled to zero terminal SNR, v-prediction, and DynamiCrafter's
dynamic rescale s(k) = linspace(1, 0.7, 400)[k] (0.7 from k = 400 on).

Wan 2.1 is a rectified-flow model (`prediction="flow"`): level k has noise fraction s_k = (k + 1) / K, the frame is
x_k = (1 - s_k) x0 + s_k eps and the network predicts the velocity eps - x0. That is the variance-preserving process
scaled by c_k = sqrt((1 - s_k)^2 + s_k^2), with abar_k = (1 - s_k)^2 / c_k^2: DDIM runs on it unchanged, its result
scaled by c (`flow_scale`); at eta 0 a DDIM move is exactly flow matching's Euler step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

import torch
from torch import Tensor

PREDICTIONS = ("v", "eps", "flow")  # flow: rectified flow (Wan), x_k = (1 - s_k) x0 + s_k eps, output eps - x0


def scaled_linear_betas(beta_start: float, beta_end: float, steps: int) -> Tensor:
    """Float64 betas, squares of a linspace between the square roots."""
    return torch.linspace(beta_start ** 0.5, beta_end ** 0.5, steps, dtype=torch.float64) ** 2


def rescale_zero_terminal_snr(betas: Tensor) -> Tensor:
    """Shift sqrt(alphas_cumprod) so the last is 0 and scale so the first is unchanged (Lin et al. 2024, Alg. 1)."""
    root = torch.cumprod(1.0 - betas.double(), dim=0).sqrt()
    first, last = root[0].clone(), root[-1].clone()
    root = (root - last) * first / (first - last)
    alphas_cumprod = root ** 2
    alphas = torch.cat([alphas_cumprod[:1], alphas_cumprod[1:] / alphas_cumprod[:-1]])
    return 1.0 - alphas


def dynamic_rescale_table(base_scale: float, turning_step: int, steps: int) -> Tensor:
    """s(k): linspace(1, base_scale, turning_step) then base_scale, `steps` + turning_step entries as lvdm stores
    it (float32); only the first `steps` are used."""
    head = torch.linspace(1.0, base_scale, turning_step, dtype=torch.float64)
    return torch.cat([head, torch.full((steps,), base_scale, dtype=torch.float64)]).float()


def flow_sigmas(steps: int) -> Tensor:
    """A rectified flow's noise fraction per level, float64: (k + 1) / steps, pure noise at the last level."""
    return torch.arange(1, steps + 1, dtype=torch.float64) / steps


@dataclass(frozen=True)
class ScheduleConfig:
    """A diffusion noise schedule. Defaults: the official Vid2World / DynamiCrafter-512 schedule."""

    num_train_timesteps: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012
    zero_terminal_snr: bool = True
    prediction: str = "v"  # "v" | "eps"
    dynamic_rescale: float | None = 0.7  # base scale, or None for no dynamic rescale
    dynamic_rescale_turning_step: int = 400

    def __post_init__(self) -> None:
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {self.prediction!r}")
        if self.prediction == "flow" and (self.zero_terminal_snr or self.dynamic_rescale is not None):
            raise ValueError("a flow schedule has its own noise levels: set zero_terminal_snr false and "
                             "dynamic_rescale null")
        if self.zero_terminal_snr and self.prediction == "eps":
            raise ValueError("a zero-terminal-SNR schedule needs v-prediction: at k=999 an eps model cannot recover x0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ScheduleConfig":
        return cls(**d)


class NoiseSchedule:
    """Per-frame noising and parameterisation: every coefficient is looked up per (b, t) from a [B, T] level tensor.

    Video tensors are [B, C, T, H, W]; `levels` are integer noise levels [B, T] (or [B], one per clip).
    """

    def __init__(self, config: ScheduleConfig | None = None) -> None:
        self.config = cfg = config or ScheduleConfig()
        self.flow = cfg.prediction == "flow"
        if self.flow:
            self.sigmas_float64 = flow_sigmas(cfg.num_train_timesteps)
            s = self.sigmas_float64
            self.alphas_cumprod_float64 = (1 - s) ** 2 / ((1 - s) ** 2 + s ** 2)
            self.betas_float64 = 1 - torch.cat([self.alphas_cumprod_float64[:1],
                                                self.alphas_cumprod_float64[1:] / self.alphas_cumprod_float64[:-1]])
        else:
            betas = scaled_linear_betas(cfg.beta_start, cfg.beta_end, cfg.num_train_timesteps)
            if cfg.zero_terminal_snr:
                betas = rescale_zero_terminal_snr(betas)
            self.betas_float64 = betas
            self.alphas_cumprod_float64 = torch.cumprod(1.0 - betas, dim=0)
        self.alphas_cumprod = self.alphas_cumprod_float64.float()
        self.scale_table = (dynamic_rescale_table(cfg.dynamic_rescale, cfg.dynamic_rescale_turning_step,
                                                  cfg.num_train_timesteps)
                            if cfg.dynamic_rescale is not None else None)

    @property
    def num_train_timesteps(self) -> int:
        return self.config.num_train_timesteps

    def _per_frame(self, table: Tensor, levels: Tensor, like: Tensor) -> Tensor:
        levels = levels if levels.ndim == 2 else levels[:, None].expand(like.shape[0], like.shape[2])
        return table.to(like.device)[levels.long()][:, None, :, None, None]

    def alpha_bar(self, levels: Tensor, like: Tensor) -> Tensor:
        """alpha_bar per frame (float64), shaped to broadcast over `like` [B, C, T, H, W]."""
        return self._per_frame(self.alphas_cumprod_float64, levels, like)

    def flow_scale(self, levels: Tensor, like: Tensor) -> Tensor:
        """c_k: a flow frame over its variance-preserving equivalent (float64; ones for other schedules)."""
        if not self.flow:
            return torch.ones_like(self.alpha_bar(levels, like))
        s = self._per_frame(self.sigmas_float64, levels, like)
        return ((1 - s) ** 2 + s ** 2).sqrt()

    def _coefficients(self, levels: Tensor, like: Tensor) -> tuple[Tensor, Tensor]:
        """(sqrt(abar), sqrt(1 - abar)) per frame in `like`'s dtype, rooted in float64 as lvdm's buffers are; for a
        flow schedule (1 - s, s)."""
        if self.flow:
            s = self._per_frame(self.sigmas_float64, levels, like)
            return (1 - s).to(like.dtype), s.to(like.dtype)
        a = self.alpha_bar(levels, like)
        return a.sqrt().to(like.dtype), (1 - a).sqrt().to(like.dtype)

    def scale(self, levels: Tensor, like: Tensor) -> Tensor:
        """Dynamic-rescale factor s(k) per frame (ones without dynamic rescale)."""
        if self.scale_table is None:
            return torch.ones_like(like[:, :1, :, :1, :1])
        return self._per_frame(self.scale_table, levels, like).to(like.dtype)

    def add_noise(self, x0: Tensor, levels: Tensor, noise: Tensor) -> Tensor:
        """x_k = sqrt(abar_k) x0 + sqrt(1 - abar_k) eps, per frame."""
        sa, s1 = self._coefficients(levels, x0)
        return sa * x0 + s1 * noise

    def target(self, x0: Tensor, noise: Tensor, levels: Tensor) -> Tensor:
        """What the model learns to predict: v = sqrt(abar) eps - sqrt(1 - abar) x0, or eps."""
        if self.config.prediction == "eps":
            return noise
        if self.flow:
            return noise - x0
        sa, s1 = self._coefficients(levels, x0)
        return sa * noise - s1 * x0

    def split(self, x_t: Tensor, levels: Tensor, output: Tensor) -> tuple[Tensor, Tensor]:
        """(x0_hat, eps_hat) from the model output at noise levels `levels`, per frame."""
        sa, s1 = self._coefficients(levels, x_t)
        if self.flow:  # x_t = sa x0 + s1 eps and output = eps - x0, with sa + s1 = 1
            return x_t - s1 * output, x_t + sa * output
        if self.config.prediction == "eps":
            return (x_t - s1 * output) / sa, output
        return sa * x_t - s1 * output, sa * output + s1 * x_t
