"""Causal action guidance (method.md section 6): classifier-free guidance over the newest action only.

    v = v_u + s (v_c - v_u)          v_u: the same call with only the newest frame's action dropped (mask 0)
    v <- phi * v * std(v_c) / std(v) + (1 - phi) * v      guidance rescale (Lin et al. 2024), per sample

`std` is the unbiased standard deviation over every non-batch element of the window the model saw (the official
code: history frames included) or of the newest frame alone (`rescale_scope="current_frame"`). History frames'
outputs do not depend on the newest action, so on them v = v_c; `Moments` lets a cached rollout add their
statistics without recomputing them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

from torch import Tensor

SCOPES = ("window", "current_frame")
CONVENTIONS = ("cfg", "paper_lambda")


@dataclass
class Moments:
    """Per-sample count, sum and sum of squares (float64) of a set of values, for an exact std over a union."""

    count: int
    total: Tensor  # [B]
    squares: Tensor  # [B]

    @classmethod
    def of(cls, x: Tensor) -> "Moments":
        flat = x.detach().double().flatten(1)
        return cls(flat.shape[1], flat.sum(dim=1), flat.square().sum(dim=1))

    def __add__(self, other: "Moments") -> "Moments":
        return Moments(self.count + other.count, self.total + other.total, self.squares + other.squares)

    def std(self) -> Tensor:
        """Unbiased standard deviation per sample (torch.std's default)."""
        mean = self.total / self.count
        return ((self.squares - self.count * mean.square()).clamp_min(0) / (self.count - 1)).sqrt()


def combine(v_cond: Tensor, v_uncond: Tensor, scale: float) -> Tensor:
    """Classifier-free combination v_u + s (v_c - v_u)."""
    return v_uncond + scale * (v_cond - v_uncond)


def rescale(guided: Tensor, std_cond: Tensor, std_guided: Tensor, phi: float) -> Tensor:
    """Guidance rescale with given per-sample stds [B]: phi * guided * std_c / std_g + (1 - phi) * guided."""
    ratio = (std_cond / std_guided).to(guided.dtype).reshape(-1, *([1] * (guided.ndim - 1)))
    return phi * guided * ratio + (1 - phi) * guided


def unconditional_mask(mask: Tensor) -> Tensor:
    """The unconditional pass's action mask [B, T]: the conditional one with only the newest frame dropped."""
    out = mask.clone()
    out[:, -1] = 0
    return out


@dataclass(frozen=True)
class GuidanceConfig:
    """Causal action guidance settings. `scale` in the code's convention (1 = off); `paper_lambda` reads it as the
    paper's lambda, s = 1 + lambda."""

    scale: float = 2.5
    rescale: float = 0.7
    rescale_scope: str = "window"
    convention: str = "cfg"

    def __post_init__(self) -> None:
        if self.rescale_scope not in SCOPES:
            raise ValueError(f"guidance rescale_scope must be one of {SCOPES}, got {self.rescale_scope!r}")
        if self.convention not in CONVENTIONS:
            raise ValueError(f"guidance convention must be one of {CONVENTIONS}, got {self.convention!r}")
        if not 0.0 <= self.rescale <= 1.0:
            raise ValueError(f"guidance rescale must be in [0, 1], got {self.rescale}")
        if self.cfg_scale < 0:
            raise ValueError(f"guidance scale must be >= 0 (1 = no guidance), got {self.scale}")

    @property
    def cfg_scale(self) -> float:
        return 1.0 + self.scale if self.convention == "paper_lambda" else self.scale

    @property
    def active(self) -> bool:
        """Whether an unconditional pass is needed at all."""
        return self.cfg_scale != 1.0

    def apply(self, v_cond: Tensor, v_uncond: Tensor, history: Moments | None = None,
              history_guided: Moments | None = None) -> Tensor:
        """The guided, rescaled output for the newest frame(s) [B, C, n, H, W].

        `history` / `history_guided`: moments of the history frames' conditional / guided outputs (window scope).
        When only `history` is given the guided history is taken equal to it (exact for a strictly causal model).
        """
        guided = combine(v_cond, v_uncond, self.cfg_scale)
        if self.rescale == 0:
            return guided
        cond_m, guided_m = Moments.of(v_cond), Moments.of(guided)
        if self.rescale_scope == "window" and history is not None:
            cond_m = cond_m + history
            guided_m = guided_m + (history_guided if history_guided is not None else history)
        return rescale(guided, cond_m.std(), guided_m.std(), self.rescale)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "GuidanceConfig":
        return cls(**d)
