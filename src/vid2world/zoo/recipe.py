"""A bundled model's recipe: the committed YAML that `vid2world zoo build NAME` follows, as small dataclasses.

One recipe names its data (the target's action-labelled episodes, a held-out set recorded from other seeds, and
action-free video of other games for pretraining), the autoencoder, the UNet, and each training stage's budget.
`quick()` shrinks every count so the same stages run end to end in a few minutes (tests, CI).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from ..data.record import RecordConfig
from ..io.weights import PRECISIONS
from ..models.config import reject_unknown_fields
from ..models.vae import VAEConfig
from ..train.autoencoder import AutoencoderFitConfig
from ..train.distill import DistillConfig
from ..train.in_memory import FitConfig

RECIPES = Path(__file__).parent / "recipes"


@dataclass(frozen=True)
class Source:
    """Episodes recorded from a simulator (`vid2world data record`)."""

    env: str
    episodes: int
    steps: int = 120
    seed: int = 0
    policy: str = "scripted"
    val_episodes: int = 0

    @property
    def name(self) -> str:
        return f"{self.env.replace(':', '_')}-s{self.seed}"

    def record_config(self, size: int, actions: bool, workers: int) -> RecordConfig:
        return RecordConfig(env=self.env, episodes=self.episodes, steps=self.steps, policy=self.policy, size=size,
                            seed=self.seed, actions=actions, val_episodes=self.val_episodes, workers=workers)


@dataclass(frozen=True)
class Conversion:
    """How the passive model becomes a world model (`causal.causalize`)."""

    transfer: str = "extrapolative"
    temporal_norm: str = "frame"


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    frame_size: int
    target: Source  # action-labelled: the world model's data
    heldout: Source  # the same environment, seeds never used for training: evaluation and the demo
    pretrain_data: tuple[Source, ...]  # action-free video of other environments
    vae: VAEConfig
    autoencoder: AutoencoderFitConfig
    unet_preset: str
    unet: Mapping[str, Any] = field(default_factory=dict)  # overrides of the preset
    pretrain: FitConfig = FitConfig()
    conversion: Conversion = Conversion()
    finetune: FitConfig = FitConfig()
    refine: tuple[FitConfig, ...] = ()  # further fine-tunes, each from the last one's weights (warm restarts)
    fps: int = 3  # the frame-rate condition (Vid2World uses 3 for every dataset)
    sampler_steps: int = 50  # the `quality` preset's DDIM steps
    fast_steps: int = 8  # the `fast` preset's (interactive play)
    fast_guidance: float | None = None  # the `fast` preset's guidance scale (None: the default, 2.5)
    fast_precision: str = "fp32"  # the `fast` preset's UNet precision (bf16: autocast)
    eval_context: int = 1
    eval_horizon: int = 16
    eval_counterfactual: bool = True  # the held-out evaluation's counterfactual grid (off in quick builds: 25 s)
    # another recipe whose autoencoder and pretrained passive model this one starts from: one pretrained video model,
    # several world models (the paper's setting); its data, codec, UNet and pretrain budget are that recipe's
    base: str | None = None
    # the base's decoder fine-tuned on the target's frames, its encoder kept (the latents, and what the pretrained
    # model learnt on them, stay as they are): a codec trained on other games draws a new one badly
    decoder: AutoencoderFitConfig | None = None
    # the last training stage: a few-step student of the fine-tuned model (`vid2world distill`), which is what ships;
    # both its presets sample with the student's steps, guidance off
    distill: DistillConfig | None = None
    # the shipped backbone's and IDM's weights: float16, or int8 with a scale per output row (half the bytes again;
    # io/weights.py), so that more models fit the bundle's size limit
    weights: str = "float16"

    def quick(self) -> "Recipe":
        """The same stages with every count cut to what runs in a few minutes on 2 cores."""
        def small(s: Source, episodes: int) -> Source:
            return dataclasses.replace(s, episodes=min(s.episodes, episodes), steps=min(s.steps, 24),
                                       val_episodes=min(s.val_episodes, 1))

        def short(fit, **more):
            return dataclasses.replace(fit, steps=3, batch=2, **more)

        return dataclasses.replace(
            self, target=small(self.target, 4), heldout=small(self.heldout, 2),
            pretrain_data=tuple(small(s, 2) for s in self.pretrain_data[:2]),
            autoencoder=short(self.autoencoder, warmup=1), pretrain=short(self.pretrain, warmup=1, compile=False),
            finetune=short(self.finetune, warmup=1, compile=False),
            refine=tuple(short(r, warmup=1, compile=False) for r in self.refine),
            decoder=self.decoder and short(self.decoder, warmup=1), eval_horizon=min(self.eval_horizon, 4),
            distill=self.distill and dataclasses.replace(self.distill, steps=3, batch=2, warmup=1),
            eval_counterfactual=False,
            sampler_steps=min(self.sampler_steps, 3), fast_steps=min(self.fast_steps, 2))


def _fit(cls, d: Mapping[str, Any] | None):
    d = dict(d or {})
    reject_unknown_fields(cls, d)
    return cls(**d)


# what a recipe with a `base` takes from it: the stages it reuses and everything they were made with
INHERITED = ("pretrain_data", "vae", "autoencoder", "unet_preset", "unet", "pretrain", "frame_size", "fps")


def recipe_from_dict(d: Mapping[str, Any]) -> Recipe:
    d = dict(d)
    reject_unknown_fields(Recipe, d)
    if d.get("weights", "float16") not in PRECISIONS:
        raise ValueError(f"weights: expected one of {list(PRECISIONS)}, got {d['weights']!r}")
    if d.get("decoder") is not None and not d.get("base"):
        raise ValueError("decoder: only a recipe with a base adapts its decoder (the others train their own)")
    if d.get("base"):
        given = sorted(set(INHERITED) & set(d))
        if given:
            raise ValueError(f"{given} come from the base recipe {d['base']!r}: leave them out")
        base = yaml.safe_load(_recipe_path(d["base"]).read_text())
        if base.get("base"):
            raise ValueError(f"base recipe {d['base']!r} has a base itself; name the first one")
        d.update({k: base[k] for k in INHERITED if k in base})
    d["target"], d["heldout"] = _fit(Source, d["target"]), _fit(Source, d["heldout"])
    d["pretrain_data"] = tuple(_fit(Source, s) for s in d.get("pretrain_data", ()))
    d["vae"] = VAEConfig.from_dict(d["vae"])
    d["autoencoder"] = _fit(AutoencoderFitConfig, d.get("autoencoder"))
    d["pretrain"] = _fit(FitConfig, d.get("pretrain"))
    d["finetune"] = _fit(FitConfig, d.get("finetune"))
    phases = d.get("refine") or ()
    d["refine"] = tuple(_fit(FitConfig, r) for r in ([phases] if isinstance(phases, Mapping) else phases))
    d["conversion"] = _fit(Conversion, d.get("conversion"))
    if d.get("decoder") is not None:
        d["decoder"] = _fit(AutoencoderFitConfig, d["decoder"])
    if d.get("distill") is not None:
        d["distill"] = _fit(DistillConfig, d["distill"])
    return Recipe(**d)


def recipe_names() -> list[str]:
    return sorted(p.stem for p in RECIPES.glob("*.yaml"))


def _recipe_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if not path.suffix:
        path = RECIPES / f"{name_or_path}.yaml"
        if not path.is_file():
            raise ValueError(f"unknown bundled model {name_or_path!r}; recipes: {recipe_names()}")
    return path


def load_recipe(name_or_path: str) -> Recipe:
    """A committed recipe by name (`vizdoom-deathmatch`) or a YAML file of the same layout."""
    path = _recipe_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
        return recipe_from_dict(data)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such recipe file") from None
    except (TypeError, KeyError, ValueError, yaml.YAMLError) as err:
        raise ValueError(f"{path}: not a valid recipe ({err})") from None
