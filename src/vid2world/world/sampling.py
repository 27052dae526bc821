"""How a world model samples: its stored settings (`SamplerConfig`), its two presets, and `Sampling`, the one object a
session, a rollout, an evaluation, play and the benchmarks run with, resolved in one place (`SamplerConfig.resolve`).

`quality` is the sampler's own steps, guidance and precision; `fast` (interactive play) overrides some of them with
`SamplerConfig.fast`. A caller's explicit steps, guidance, precision or cache then override the preset.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Mapping

from ..diffusion.guidance import GuidanceConfig
from ..diffusion.timesteps import SPACINGS, ddim_timesteps, history_level
from ..models.config import reject_unknown_fields
from ..models.precision import PRECISIONS
from .anchor import IMAGE_CONDS

SAMPLING_PRESETS = ("quality", "fast")  # `--quality` / `--fast`


def _check_steps(name: str, steps: Any) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 1000:
        raise ValueError(f"{name} must be an integer in 1..1000, got {steps!r}")


def _check_precision(name: str, precision: Any) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"{name} must be one of {PRECISIONS}, got {precision!r}")


def _check_guidance(name: str, guidance: Any) -> None:
    if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or not math.isfinite(guidance):
        raise ValueError(f"{name} must be a finite number (1 = off), got {guidance!r}")


@dataclass(frozen=True)
class Sampling:
    """What one session samples with: DDIM steps, guidance scale, the backbone's precision and whether the history
    is cached (strictly causal backbones) or recomputed every step."""

    steps: int
    guidance: float
    precision: str = "fp32"
    cache: bool = True

    def __post_init__(self) -> None:
        _check_steps("steps", self.steps)
        _check_guidance("guidance", self.guidance)
        _check_precision("precision", self.precision)

    def override(self, *, steps: int | None = None, guidance: float | None = None, precision: str | None = None,
                 cache: bool | None = None) -> "Sampling":
        """These settings with the values a caller gave (None: keep), each checked."""
        given = {"steps": steps, "guidance": guidance, "precision": precision, "cache": cache}
        changes = {k: v for k, v in given.items() if v is not None}
        if "guidance" in changes:
            _check_guidance("guidance", changes["guidance"])
            changes["guidance"] = float(changes["guidance"])
        if "cache" in changes:
            changes["cache"] = bool(changes["cache"])
        return replace(self, **changes) if changes else self


@dataclass(frozen=True)
class FastPreset:
    """What the `fast` preset changes of the sampler's own settings (None: keep the sampler's)."""

    steps: int = 8
    guidance: float | None = None
    precision: str | None = None

    def __post_init__(self) -> None:
        _check_steps("fast.steps", self.steps)
        if self.guidance is not None:
            _check_guidance("fast.guidance", self.guidance)
        if self.precision is not None:
            _check_precision("fast.precision", self.precision)


# config.json files written before `fast` was one object kept its three fields side by side
_LEGACY_FAST = {"fast_steps": "steps", "fast_guidance": "guidance", "fast_precision": "precision"}


@dataclass(frozen=True)
class SamplerConfig:
    """How frames are sampled. Defaults follow the official release (method.md section 12, `release`/`strict`)."""

    steps: int = 50
    spacing: str = "trailing"
    eta: float = 1.0
    history_level: int | str = "penultimate"  # "penultimate" (official: 39 at 50 steps) | "clean" | int (paper: 20)
    window: int | None = None  # frames the model sees at once (history + new); None: the backbone's training length
    slide: bool = True  # roll the window along for rollouts longer than it; False: longer rollouts are an error
    cache: bool = True  # KV/conv/norm cache (strictly causal models); False: recompute the window every step
    final_alpha_one: bool = False  # lvdm ends at abar_0, not 1
    guidance: GuidanceConfig = field(default_factory=GuidanceConfig)
    # the frame whose latent (and CLIP tokens) condition a sliding window: its first (the release) or the episode's
    image_cond: str = "window_first"
    # the backbone's matmuls and convs: fp32, or bf16 autocast (AMX / AVX-512 BF16 CPUs, GPUs); the sampler stays fp32
    precision: str = "fp32"
    fast: FastPreset = field(default_factory=FastPreset)  # the `fast` preset (interactive play)
    shift: float = 1.0  # a flow model's timestep shift (Wan: 5): steps spent at high noise; 1 for DDPM models

    def __post_init__(self) -> None:
        _check_steps("steps", self.steps)
        if self.spacing not in SPACINGS:
            raise ValueError(f"spacing must be one of {SPACINGS}, got {self.spacing!r}")
        if not (isinstance(self.eta, (int, float)) and 0 <= self.eta <= 1):
            raise ValueError(f"eta must be in [0, 1], got {self.eta!r}")
        if self.image_cond not in IMAGE_CONDS:
            raise ValueError(f"image_cond must be one of {IMAGE_CONDS}, got {self.image_cond!r}")
        if self.window is not None and self.window < 1:
            raise ValueError(f"window must be >= 1 frame, got {self.window}")
        _check_precision("precision", self.precision)
        history_level(ddim_timesteps(self.steps, self.spacing, shift=self.shift), self.history_level)  # validates

    def resolve(self, preset: str | None = None, *, steps: int | None = None, guidance: float | None = None,
                precision: str | None = None, cache: bool | None = None) -> Sampling:
        """The `Sampling` of a preset (None: `quality`), with any of its values overridden by the caller's."""
        if preset is not None and preset not in SAMPLING_PRESETS:
            raise ValueError(f"sampling preset must be one of {SAMPLING_PRESETS}, got {preset!r}")
        base = Sampling(self.steps, self.guidance.scale, self.precision, self.cache)
        if preset == "fast":
            f = self.fast
            base = Sampling(f.steps, base.guidance if f.guidance is None else f.guidance,
                            f.precision or base.precision, base.cache)
        return base.override(steps=steps, guidance=guidance, precision=precision, cache=cache)

    def with_sampling(self, sampling: Sampling) -> "SamplerConfig":
        """These settings with a session's steps, guidance, precision and cache."""
        return replace(self, steps=sampling.steps, precision=sampling.precision, cache=sampling.cache,
                       guidance=replace(self.guidance, scale=sampling.guidance))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SamplerConfig":
        d = dict(d)
        fast = dict(d.pop("fast", None) or {})
        for old, new in _LEGACY_FAST.items():
            if old in d:
                fast[new] = d.pop(old)
        reject_unknown_fields(cls, d)
        unknown = sorted(set(fast) - {f.name for f in fields(FastPreset)})
        if unknown:
            raise ValueError(f"unknown fast preset keys {unknown}; valid keys: steps, guidance, precision")
        d["guidance"] = GuidanceConfig.from_dict(d.get("guidance", {}))
        return cls(**d, fast=FastPreset(**fast))
