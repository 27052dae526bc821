"""`WanConfig`: the architecture of a Wan 2.1 video DiT (diffusers' `WanTransformer3DModel` config, field for
field) plus what vid2world adds: the clip length, the per-latent-frame action space and the causal switch.

Presets carry the released numbers (diffusers' scripts/convert_wan_to_diffusers.py and
convert_skyreelsv2_to_diffusers.py; Wan-Video/Wan2.1 wan/configs/*.py): dim = heads x 128, T5 text of width
4096, CLIP ViT-H image tokens of width 1280 for image-to-video.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from ..config import ActionSpace, reject_unknown_fields

QK_NORMS = ("rms_norm_across_heads",)  # the only q/k norm diffusers' Wan attention builds
# diffusers config keys that are not architecture (or that SkyReels-V2's transformer adds at their Wan values)
_DIFFUSERS_BOOKKEEPING = ("_class_name", "_diffusers_version", "_name_or_path", "_use_default_values")
_SKYREELS_NEUTRAL = {"inject_sample_info": False, "num_frame_per_block": 1}
_VID2WORLD_FIELDS = ("temporal_length", "action_space", "causal", "gradient_checkpointing")


@dataclass(frozen=True)
class WanCausalConfig:
    """Frame-causal self-attention: a token sees every token of its own latent frame and of earlier frames (a
    block mask; RoPE unchanged). Nothing else in a Wan DiT mixes frames, so such a model is strictly causal
    and streams exactly through a KV cache. No options yet: the dataclass keeps the config's shape beside
    `CausalConfig`."""

    @property
    def strictly_causal(self) -> bool:
        return True


@dataclass(frozen=True)
class WanConfig:
    """Architecture of `WanTransformer`. The first fields are diffusers' `WanTransformer3DModel` arguments."""

    patch_size: tuple[int, int, int] = (1, 2, 2)
    num_attention_heads: int = 12
    attention_head_dim: int = 128
    in_channels: int = 16
    out_channels: int = 16
    text_dim: int = 4096
    freq_dim: int = 256
    ffn_dim: int = 8960
    num_layers: int = 30
    cross_attn_norm: bool = True
    qk_norm: str = "rms_norm_across_heads"
    eps: float = 1e-6
    image_dim: int | None = None  # CLIP image-token width (image-to-video); None: text only
    added_kv_proj_dim: int | None = None  # the image keys' projection input (= the inner dim) with image_dim
    rope_max_seq_len: int = 1024  # diffusers' RoPE table length (positions here are computed, not looked up)
    pos_embed_seq_len: int | None = None  # first-last-frame: a position embedding over 2 x 257 image tokens
    temporal_length: int = 21  # latent frames of a training clip: 81 video frames at temporal compression 4
    action_space: ActionSpace | None = None  # the action of one latent frame (a group of video-frame actions)
    causal: WanCausalConfig | None = None  # None: the passive full-sequence model
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "patch_size", tuple(int(p) for p in self.patch_size))
        if len(self.patch_size) != 3 or self.patch_size[0] != 1 or min(self.patch_size) < 1:
            raise ValueError(f"WanConfig.patch_size must be (1, ph, pw): one latent frame per token frame, "
                             f"got {self.patch_size}")
        for name in ("num_attention_heads", "attention_head_dim", "in_channels", "out_channels", "text_dim",
                     "freq_dim", "ffn_dim", "num_layers", "temporal_length"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"WanConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.attention_head_dim % 2 or self.attention_head_dim < 6:
            raise ValueError(f"WanConfig.attention_head_dim must be even and >= 6 (RoPE splits it over t, h, "
                             f"w), got {self.attention_head_dim}")
        if self.qk_norm not in QK_NORMS:
            raise ValueError(f"WanConfig.qk_norm must be one of {QK_NORMS}, got {self.qk_norm!r}")
        if (self.image_dim is None) != (self.added_kv_proj_dim is None):
            raise ValueError(f"WanConfig.image_dim and added_kv_proj_dim are set together (image-to-video) "
                             f"or not at all, got image_dim={self.image_dim}, "
                             f"added_kv_proj_dim={self.added_kv_proj_dim}")
        if self.added_kv_proj_dim is not None and self.added_kv_proj_dim != self.inner_dim:
            raise ValueError(f"WanConfig.added_kv_proj_dim must equal the inner dim heads x head_dim = "
                             f"{self.inner_dim} (the image embedder's output), got {self.added_kv_proj_dim}")
        if self.pos_embed_seq_len is not None and self.image_dim is None:
            raise ValueError("WanConfig.pos_embed_seq_len needs image_dim (it embeds image-token positions)")

    # ---- what the seam and the modules read ----------------------------------------------------------------
    @property
    def inner_dim(self) -> int:
        return self.num_attention_heads * self.attention_head_dim

    @property
    def downsample_factor(self) -> int:
        """How much smaller than the latents the token grid is (the patch's height; patches are square here)."""
        return self.patch_size[1]

    @property
    def context_dim(self) -> int:
        return self.text_dim

    @property
    def strictly_causal(self) -> bool:
        return self.causal is not None

    @property
    def image_to_video(self) -> bool:
        return self.image_dim is not None

    def replace(self, **changes: Any) -> "WanConfig":
        return dataclasses.replace(self, **changes)

    # ---- serialisation -------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["patch_size"] = list(self.patch_size)
        d["action_space"] = self.action_space.to_dict() if self.action_space else None
        d["causal"] = dataclasses.asdict(self.causal) if self.causal else None
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "WanConfig":
        reject_unknown_fields(cls, d)
        d = dict(d)
        if d.get("action_space") is not None:
            d["action_space"] = ActionSpace.from_dict(d["action_space"])
        if d.get("causal") is not None:
            reject_unknown_fields(WanCausalConfig, d["causal"])
            d["causal"] = WanCausalConfig(**d["causal"])
        return cls(**d)

    @classmethod
    def from_diffusers(cls, config: Mapping[str, Any], **vid2world: Any) -> "WanConfig":
        """The config of a diffusers `WanTransformer3DModel` (its config.json as a dict); bookkeeping keys are
        ignored, SkyReels-V2's extra keys only at their plain-Wan values; `vid2world` sets our own fields."""
        d = {k: v for k, v in config.items() if k not in _DIFFUSERS_BOOKKEEPING}
        for key, neutral in _SKYREELS_NEUTRAL.items():
            if key in d:
                value = d.pop(key)
                if value != neutral:
                    raise ValueError(f"diffusers config key {key!r}={value!r} is not supported (only "
                                     f"{neutral!r}: the plain Wan transformer)")
        architecture = {f.name for f in dataclasses.fields(cls)} - set(_VID2WORLD_FIELDS)
        unknown = sorted(set(d) - architecture)
        if unknown:
            raise ValueError(f"unknown diffusers WanTransformer3DModel config keys {unknown}; "
                             f"known: {sorted(architecture)}")
        if d.get("qk_norm") is None and "qk_norm" in d:
            raise ValueError("diffusers config qk_norm=None is not supported: Wan attention always "
                             "RMS-normalises queries and keys ('rms_norm_across_heads')")
        return cls.from_dict({**d, **vid2world})

    def to_diffusers(self) -> dict[str, Any]:
        """The diffusers `WanTransformer3DModel` arguments of this architecture (our own fields left out)."""
        d = self.to_dict()
        for key in _VID2WORLD_FIELDS:
            d.pop(key)
        return d

    # ---- presets -------------------------------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "WanConfig":
        """A released architecture by name (`WanConfig.preset_names()`), fields overridden by keyword."""
        if name not in WAN_PRESETS:
            raise ValueError(f"unknown Wan preset {name!r}; available: {sorted(WAN_PRESETS)}")
        return WAN_PRESETS[name].replace(**overrides)

    @staticmethod
    def preset_names() -> list[str]:
        return sorted(WAN_PRESETS)


_T2V_1_3B = WanConfig()  # the defaults: Wan2.1-T2V-1.3B (dim 1536 = 12 x 128, ffn 8960, 30 layers)
_T2V_14B = _T2V_1_3B.replace(num_attention_heads=40, ffn_dim=13824, num_layers=40)  # dim 5120

WAN_PRESETS: dict[str, WanConfig] = {
    "wan2.1-t2v-1.3b": _T2V_1_3B,
    "wan2.1-t2v-14b": _T2V_14B,
    # image-to-video: 16 noisy + 4 mask + 16 first-frame latent channels in, CLIP ViT-H tokens (1280 wide)
    "wan2.1-i2v-14b": _T2V_14B.replace(in_channels=36, image_dim=1280, added_kv_proj_dim=5120),
    "skyreels-v2-i2v-1.3b": _T2V_1_3B.replace(in_channels=36, image_dim=1280, added_kv_proj_dim=1536),
}
