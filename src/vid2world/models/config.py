"""Configuration of the video UNet: one frozen dataclass per concern, presets by name.

`UNetConfig` mirrors the constructor of DynamiCrafter's `UNetModel` (lvdm `openaimodel3d.py`) closely enough that
a DynamiCrafter or Vid2World YAML maps onto it field by field (`UNetConfig.from_lvdm`), plus two things the
upstream code expresses through string flags: the action space and the causal settings.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

TEMPORAL_NORM_MODES = ("clip", "causal", "frame")


def reject_unknown_fields(cls: type, d: Mapping[str, Any]) -> None:
    """Every config's `from_dict` check: unknown keys raise ValueError naming them and the valid ones."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {unknown}; valid keys: {sorted(known)}")


class PresetConfig:
    """`to_dict` / `from_dict` / `preset` shared by the frozen architecture configs of a checkpoint's parts (VAE,
    CLIP towers, Resampler). A subclass sets `_PRESETS` (name -> config) and `_KIND` (how errors name it)."""

    _PRESETS: dict[str, Any] = {}
    _KIND = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]):
        reject_unknown_fields(cls, d)
        return cls(**d)

    @classmethod
    def preset(cls, name: str, **overrides: Any):
        if name not in cls._PRESETS:
            raise ValueError(f"unknown {cls._KIND or cls.__name__} preset {name!r}; available: {sorted(cls._PRESETS)}")
        config = cls._PRESETS[name]
        return dataclasses.replace(config, **overrides) if overrides else config  # frozen: sharing is safe


@dataclass(frozen=True)
class ActionSpace:
    """The per-frame action input of a world model.

    `continuous`: real vectors of width `dim` (RT-1: 13, RECON: 3), embedded by an MLP whose first layer is linear.
    `multi_hot`: 0/1 vectors over `dim` entries (CS:GO: 51), embedded as the sum of the active rows of a learned
    table, then an MLP (the official CS:GO path).
    """

    kind: str
    dim: int
    names: tuple[str, ...] = ()
    # continuous only: the range of each entry; given, actions enter the embedding scaled to [-1, 1] (`scaled`), so
    # a target position in a 512-pixel workspace (Push-T) meets the first Linear as gently as a unit vector does
    low: tuple[float, ...] = ()
    high: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("continuous", "multi_hot"):
            raise ValueError(f"ActionSpace.kind must be 'continuous' or 'multi_hot', got {self.kind!r}")
        if int(self.dim) < 1:
            raise ValueError(f"ActionSpace.dim must be >= 1, got {self.dim}")
        if self.names and len(self.names) != self.dim:
            raise ValueError(f"ActionSpace.names has {len(self.names)} entries, expected dim={self.dim}")
        if self.low or self.high:
            if self.kind != "continuous" or len(self.low) != self.dim or len(self.high) != self.dim:
                raise ValueError(f"ActionSpace low/high: a continuous space's {self.dim} entries each, got "
                                 f"{len(self.low)} and {len(self.high)} ({self.kind})")
            if not all(math.isfinite(lo) and math.isfinite(hi) and hi >= lo for lo, hi in zip(self.low, self.high)):
                raise ValueError(f"ActionSpace low/high: finite with high >= low, got {self.low} and {self.high}")

    @classmethod
    def continuous(cls, dim: int, names: tuple[str, ...] = (), low: tuple[float, ...] = (),
                   high: tuple[float, ...] = ()) -> "ActionSpace":
        return cls("continuous", int(dim), tuple(names), tuple(map(float, low)), tuple(map(float, high)))

    @classmethod
    def multi_hot(cls, dim: int, names: tuple[str, ...] = ()) -> "ActionSpace":
        return cls("multi_hot", int(dim), tuple(names))

    def scaled(self, actions: Any) -> Any:
        """Actions [..., dim] as the embedding takes them: [low, high] onto [-1, 1] where a range is known
        (a constant entry is only centred), unchanged otherwise (the official models' raw inputs)."""
        if not self.low:
            return actions
        centre = actions.new_tensor([(lo + hi) / 2 for lo, hi in zip(self.low, self.high)])
        half = actions.new_tensor([(hi - lo) / 2 or 1.0 for lo, hi in zip(self.low, self.high)])
        return (actions - centre) / half

    def to_dict(self) -> dict[str, Any]:
        ranges = {"low": list(self.low), "high": list(self.high)} if self.low else {}
        return {"kind": self.kind, "dim": self.dim, "names": list(self.names), **ranges}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ActionSpace":
        return cls(d["kind"], int(d["dim"]), tuple(d.get("names", ())), tuple(map(float, d.get("low", ()))),
                   tuple(map(float, d.get("high", ()))))


@dataclass(frozen=True)
class CausalConfig:
    """How a causalized UNet keeps frame t from seeing frames after t.

    Temporal attention is always masked and temporal convolutions always padded on the left only; what varies:
    - `temporal_norm`: statistics of the GroupNorms that span the time axis. `clip` pools all frames of the clip
      (the official code; leaks the future), `causal` pools frames 0..t, `frame` uses frame t alone.
    - `out_conv_height_causal`: the official code's quirk of building the final 3x3 output conv causal along image
      height. Needed to reproduce released Vid2World checkpoints; off otherwise.
    """

    temporal_norm: str = "frame"
    out_conv_height_causal: bool = False

    def __post_init__(self) -> None:
        if self.temporal_norm not in TEMPORAL_NORM_MODES:
            raise ValueError(f"temporal_norm must be one of {TEMPORAL_NORM_MODES}, got {self.temporal_norm!r}")

    @property
    def strictly_causal(self) -> bool:
        return self.temporal_norm != "clip"


@dataclass(frozen=True)
class UNetConfig:
    """Architecture of `VideoUNet`. Field names follow lvdm's `UNetModel` arguments where one exists."""

    in_channels: int = 8
    out_channels: int = 4
    model_channels: int = 320
    channel_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    attention_resolutions: tuple[int, ...] = (4, 2, 1)
    num_head_channels: int = 64
    transformer_depth: int = 1
    context_dim: int | None = 1024
    dropout: float = 0.1
    temporal_conv_dropout: float = 0.1  # the temporal conv blocks' dropout: lvdm hard-codes 0.1 whatever `dropout`
    # says, and configs saved before this field existed trained with that
    norm_groups: int = 32  # GroupNorm groups everywhere (lvdm: 32). Small models want fewer: with one channel per
    # group, a GroupNorm removes the per-channel noise-level/action embedding a ResBlock adds.
    use_linear: bool = True
    temporal_conv: bool = True
    temporal_attention: bool = True
    init_attn: bool = True  # lvdm `addition_attention`: a temporal transformer right after the input conv
    image_cross_attention: bool = True
    image_cross_attention_scale_learnable: bool = False
    text_context_len: int = 77
    image_tokens_per_frame: int = 16
    fs_condition: bool = True
    default_fs: int = 24
    temporal_length: int = 16  # the training clip length; informative only, longer sequences run unchanged
    action_space: ActionSpace | None = None
    causal: CausalConfig | None = None  # None: the original full-sequence (non-causal) model
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        for name in ("in_channels", "out_channels", "model_channels", "num_res_blocks", "num_head_channels"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"UNetConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("dropout", "temporal_conv_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:  # also refuses NaN
                raise ValueError(f"UNetConfig.{name} must be in [0, 1), got {getattr(self, name)}")
        widths = [self.model_channels * m for m in self.channel_mult] + [self.model_channels]
        bad = [w for w in widths if w % self.norm_groups]
        if bad:
            raise ValueError(f"every UNet width must be a multiple of norm_groups={self.norm_groups} (GroupNorm); "
                             f"got widths {widths}")

    @property
    def time_embed_dim(self) -> int:
        return 4 * self.model_channels

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.channel_mult) - 1)

    @property
    def temporal_norm(self) -> str:
        return self.causal.temporal_norm if self.causal else "clip"

    @property
    def strictly_causal(self) -> bool:
        """No frame sees a later one (causal, with a per-frame or causal temporal norm): the cache is exact."""
        return self.causal is not None and self.causal.strictly_causal

    def replace(self, **changes: Any) -> "UNetConfig":
        return dataclasses.replace(self, **changes)

    # ---- serialisation -------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["channel_mult"] = list(self.channel_mult)
        d["attention_resolutions"] = list(self.attention_resolutions)
        d["action_space"] = self.action_space.to_dict() if self.action_space else None
        d["causal"] = dataclasses.asdict(self.causal) if self.causal else None
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "UNetConfig":
        reject_unknown_fields(cls, d)
        d = dict(d)
        for key in ("channel_mult", "attention_resolutions"):
            if key in d:
                d[key] = tuple(d[key])
        if d.get("action_space") is not None:
            d["action_space"] = ActionSpace.from_dict(d["action_space"])
        if d.get("causal") is not None:
            d["causal"] = CausalConfig(**d["causal"])
        return cls(**d)

    @classmethod
    def from_lvdm(cls, params: Mapping[str, Any]) -> "UNetConfig":
        """Map the `unet_config.params` of a DynamiCrafter / Vid2World YAML onto a config.

        Vid2World's `use_causal_attention: true` means the official causal model (clip norm, height-causal output
        conv); its `action_dim` selects the multi-hot path only when it equals 51, exactly as the official code.
        """
        unsupported = {k: params[k] for k in ("use_scale_shift_norm", "resblock_updown", "tempspatial_aware",
                                               "use_relative_position") if params.get(k)}
        if unsupported:
            raise ValueError(f"lvdm UNet options not supported by VideoUNet: {unsupported}")
        action_space = None
        if params.get("action_emb"):
            dim = int(params.get("action_dim", 13))
            action_space = ActionSpace.multi_hot(dim) if dim == 51 else ActionSpace.continuous(dim)
        causal = None
        if params.get("use_causal_attention"):
            causal = CausalConfig(temporal_norm="clip", out_conv_height_causal=True)
        return cls(
            in_channels=params["in_channels"], out_channels=params["out_channels"],
            model_channels=params["model_channels"], channel_mult=tuple(params.get("channel_mult", (1, 2, 4, 8))),
            num_res_blocks=params["num_res_blocks"], attention_resolutions=tuple(params["attention_resolutions"]),
            num_head_channels=params["num_head_channels"], transformer_depth=params.get("transformer_depth", 1),
            context_dim=params.get("context_dim"), dropout=params.get("dropout", 0.0),
            use_linear=params.get("use_linear", False), temporal_conv=params.get("temporal_conv", False),
            temporal_attention=params.get("temporal_attention", True),
            init_attn=params.get("addition_attention", False),
            image_cross_attention=params.get("image_cross_attention", False),
            image_cross_attention_scale_learnable=params.get("image_cross_attention_scale_learnable", False),
            fs_condition=params.get("fs_condition", False), default_fs=params.get("default_fs", 4),
            temporal_length=params.get("temporal_length") or 16, action_space=action_space, causal=causal,
            gradient_checkpointing=False,
        )

    # ---- presets ---------------------------------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "UNetConfig":
        """A named architecture: `dynamicrafter-256`, `dynamicrafter-512`, `dynamicrafter-1024` or `tiny`."""
        if name not in PRESETS:
            raise ValueError(f"unknown UNet preset {name!r}; available: {sorted(PRESETS)}")
        return PRESETS[name].replace(**overrides)

    @staticmethod
    def preset_names() -> list[str]:
        return sorted(PRESETS)


_DYNAMICRAFTER = UNetConfig()  # the defaults are DynamiCrafter-512's UNet (configs/inference_512_v1.0.yaml)

PRESETS: dict[str, UNetConfig] = {
    # configs/inference_256_v1.0.yaml: learnable image cross-attention scale, default fps 3.
    "dynamicrafter-256": _DYNAMICRAFTER.replace(image_cross_attention_scale_learnable=True, default_fs=3),
    "dynamicrafter-512": _DYNAMICRAFTER,
    # configs/inference_1024_v1.0.yaml: the 512 UNet with default fps 10.
    "dynamicrafter-1024": _DYNAMICRAFTER.replace(default_fs=10),
    # Every structural feature of the 512 model at toy size (the official fixtures' tiny configuration).
    "tiny": _DYNAMICRAFTER.replace(
        model_channels=32, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(1,),
        num_head_channels=8, context_dim=32, temporal_length=6,
    ),
    # Pixel-space video UNets for our own small simulator models: RGB in and out, no text/image context, no fps.
    "pixel-tiny": _DYNAMICRAFTER.replace(
        in_channels=3, out_channels=3, model_channels=32, channel_mult=(1, 2), num_res_blocks=1,
        attention_resolutions=(2,), num_head_channels=8, context_dim=None, image_cross_attention=False,
        fs_condition=False, norm_groups=8, dropout=0.0, temporal_conv_dropout=0.0, temporal_length=8,
    ),
    "pixel-64": _DYNAMICRAFTER.replace(  # 64x64 frames: attention at 16x16 and 8x8
        in_channels=3, out_channels=3, model_channels=64, channel_mult=(1, 2, 2, 2), num_res_blocks=2,
        attention_resolutions=(4, 8), num_head_channels=32, context_dim=None, image_cross_attention=False,
        fs_condition=False, norm_groups=16, dropout=0.0, temporal_conv_dropout=0.0, temporal_length=16,
    ),
    # Latent-space video UNet for our own small autoencoders (64x64 frames -> 16x16x4 latents), attention at 8x8:
    # the bundled models' architecture, chosen by measured CPU training speed (docs/zoo.md).
    "latent-small": _DYNAMICRAFTER.replace(
        in_channels=4, out_channels=4, model_channels=64, channel_mult=(1, 2), num_res_blocks=1,
        attention_resolutions=(2,), num_head_channels=32, context_dim=None, image_cross_attention=False,
        fs_condition=False, norm_groups=16, dropout=0.0, temporal_conv_dropout=0.0, temporal_length=8,
    ),
}

__all__ = ["ActionSpace", "CausalConfig", "UNetConfig", "PRESETS", "TEMPORAL_NORM_MODES"]
