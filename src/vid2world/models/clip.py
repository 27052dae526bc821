"""The two OpenCLIP ViT-H/14 towers of a DynamiCrafter checkpoint, without depending on open_clip.

- `OpenCLIPTextEncoder`: the text tower (checkpoint prefix `cond_stage_model.`), returning the token features of the
  penultimate block after `ln_final` (DynamiCrafter's `FrozenOpenCLIPEmbedder`, layer "penultimate").
- `OpenCLIPImageEncoder`: the image tower (prefix `embedder.`), returning all 257 token features of the last block,
  before `ln_post` and `proj` (`FrozenOpenCLIPImageEmbedderV2`). Its input goes through `clip_preprocess`.

Parameter names are open_clip's, so a checkpoint's sub-state-dict loads with `strict=True`; that includes the
parameters DynamiCrafter keeps but never uses (the image tower's text-side leftovers, `ln_post`, `proj`, ...).

Tokenization: no BPE vocabulary is available offline, so text can only be given as token ids. Vid2World always
conditions on the empty prompt, whose ids `empty_prompt_tokens` builds; any other prompt must be pre-tokenized.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import PresetConfig

SOT_TOKEN = 49406  # <start_of_text>
EOT_TOKEN = 49407  # <end_of_text>; the empty prompt is SOT, EOT, then zero padding
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class _ConfigMixin(PresetConfig):
    """Presets `vit-h-14` (DynamiCrafter's towers) and `tiny` (for tests), and the size checks of both configs."""

    def _check(self, positive: tuple[str, ...]) -> None:
        name = type(self).__name__
        for field in positive:
            if int(getattr(self, field)) < 1:
                raise ValueError(f"{name}.{field} must be >= 1, got {getattr(self, field)}")
        if self.width % self.heads:  # every config here has both
            raise ValueError(f"{name}: width {self.width} is not divisible by heads {self.heads}")


@dataclass(frozen=True)
class CLIPTextConfig(_ConfigMixin):
    """Text tower sizes. `skip_last_layers=1` drops the last block ("penultimate", as DynamiCrafter does)."""

    vocab_size: int = 49408
    context_length: int = 77
    width: int = 1024
    heads: int = 16
    layers: int = 24
    mlp_ratio: float = 4.0
    embed_dim: int = 1024
    skip_last_layers: int = 1

    def __post_init__(self) -> None:
        self._check(("vocab_size", "context_length", "width", "heads", "layers", "embed_dim"))
        if not 0 <= self.skip_last_layers < self.layers:
            raise ValueError(f"skip_last_layers must be in [0, layers={self.layers}), got {self.skip_last_layers}")


@dataclass(frozen=True)
class CLIPVisionConfig(_ConfigMixin):
    """Image tower sizes, plus the sizes of the text-side parameters the upstream embedder keeps (unused)."""

    image_size: int = 224
    patch_size: int = 14
    width: int = 1280
    heads: int = 16
    layers: int = 32
    mlp_ratio: float = 4.0
    embed_dim: int = 1024
    text_width: int = 1024
    vocab_size: int = 49408
    context_length: int = 77
    antialias: bool = True

    def __post_init__(self) -> None:
        self._check(("image_size", "patch_size", "width", "heads", "layers", "embed_dim", "text_width",
                     "vocab_size", "context_length"))
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")

    @property
    def num_tokens(self) -> int:
        return (self.image_size // self.patch_size) ** 2 + 1  # patches + class token


CLIPTextConfig._PRESETS = {
    "vit-h-14": CLIPTextConfig(),
    "tiny": CLIPTextConfig(width=32, heads=2, layers=2, embed_dim=32),
}
CLIPVisionConfig._PRESETS = {
    "vit-h-14": CLIPVisionConfig(),
    # still 224 / 14 so the token count (257) matches the full tower
    "tiny": CLIPVisionConfig(width=64, heads=2, layers=2, embed_dim=32, text_width=32),
}


class ResidualAttentionBlock(nn.Module):
    """open_clip's pre-norm block: x + attn(ln_1(x)), then x + mlp(ln_2(x)); keys `ln_1`, `attn`, `ln_2`, `mlp`."""

    def __init__(self, width: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        hidden = int(width * mlp_ratio)
        self.ln_1 = nn.LayerNorm(width)
        # nn.MultiheadAttention itself, so its packed `in_proj_weight` is the checkpoint's tensor as is
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict(
            c_fc=nn.Linear(width, hidden), gelu=nn.GELU(), c_proj=nn.Linear(hidden, width)))

    def forward(self, x: Tensor, attn_mask: Tensor | None = None) -> Tensor:
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=attn_mask)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    """A stack of `ResidualAttentionBlock`s under the key `resblocks`."""

    def __init__(self, width: int, heads: int, layers: int, mlp_ratio: float) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(ResidualAttentionBlock(width, heads, mlp_ratio) for _ in range(layers))

    def forward(self, x: Tensor, attn_mask: Tensor | None = None, num_layers: int | None = None) -> Tensor:
        for block in self.resblocks[:num_layers]:
            x = block(x, attn_mask)
        return x


class _VisionTransformer(nn.Module):
    """open_clip's `VisionTransformer` parameters (attribute order = open_clip's state-dict order)."""

    def __init__(self, c: CLIPVisionConfig) -> None:
        super().__init__()
        scale = c.width ** -0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(c.width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(c.num_tokens, c.width))
        self.proj = nn.Parameter(scale * torch.randn(c.width, c.embed_dim))
        self.conv1 = nn.Conv2d(3, c.width, c.patch_size, stride=c.patch_size, bias=False)
        self.ln_pre = nn.LayerNorm(c.width)
        self.transformer = Transformer(c.width, c.heads, c.layers, c.mlp_ratio)
        self.ln_post = nn.LayerNorm(c.width)


class _OpenCLIPModel(nn.Module):
    """open_clip's `CLIP` with one tower deleted, as DynamiCrafter keeps it: the text-side embeddings,
    `text_projection`, `logit_scale` and `ln_final` stay in both towers; `visual` or `transformer` holds the rest."""

    def __init__(self, text_width: int, vocab_size: int, context_length: int, embed_dim: int,
                 visual: nn.Module | None = None, transformer: nn.Module | None = None) -> None:
        super().__init__()
        self.positional_embedding = nn.Parameter(0.01 * torch.randn(context_length, text_width))
        self.text_projection = nn.Parameter(text_width ** -0.5 * torch.randn(text_width, embed_dim))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        if visual is not None:
            self.visual = visual
        if transformer is not None:
            self.transformer = transformer
        self.token_embedding = nn.Embedding(vocab_size, text_width)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        self.ln_final = nn.LayerNorm(text_width)


def empty_prompt_tokens(batch: int = 1, context_length: int = 77, device: torch.device | str | None = None) -> Tensor:
    """Token ids of the empty prompt "": [batch, context_length] int64 = SOT, EOT, then zeros."""
    tokens = torch.zeros(batch, context_length, dtype=torch.long, device=device)
    tokens[:, 0], tokens[:, 1] = SOT_TOKEN, EOT_TOKEN
    return tokens


class OpenCLIPTextEncoder(nn.Module):
    """OpenCLIP text tower; state-dict keys `model.*` as under `cond_stage_model.` in a DynamiCrafter checkpoint.

    Takes token ids only (see the module docstring): use `encode_empty` for the empty prompt.
    """

    def __init__(self, config: CLIPTextConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or CLIPTextConfig()
        self.model = _OpenCLIPModel(c.width, c.vocab_size, c.context_length, c.embed_dim,
                                    transformer=Transformer(c.width, c.heads, c.layers, c.mlp_ratio))
        # causal mask as open_clip builds it; not in checkpoints, hence non-persistent
        mask = torch.full((c.context_length, c.context_length), float("-inf")).triu_(1)
        self.model.register_buffer("attn_mask", mask, persistent=False)

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens [B, context_length] int64 -> features [B, context_length, width]."""
        c = self.config
        if tokens.ndim != 2 or tokens.shape[1] != c.context_length:
            raise ValueError(f"tokens must be [B, {c.context_length}], got {list(tokens.shape)}")
        m = self.model
        x = m.token_embedding(tokens) + m.positional_embedding
        x = m.transformer(x, attn_mask=m.attn_mask.to(x.dtype), num_layers=c.layers - c.skip_last_layers)
        return m.ln_final(x)

    empty_prompt_tokens = staticmethod(empty_prompt_tokens)

    def encode_empty(self, batch: int = 1) -> Tensor:
        """Features of the empty prompt, [batch, context_length, width]."""
        device = self.model.token_embedding.weight.device
        return self(empty_prompt_tokens(batch, self.config.context_length, device))


def _gaussian_blur(x: Tensor, kernel_size: tuple[int, int], sigma: tuple[float, float]) -> Tensor:
    """Separable Gaussian blur with reflect padding (kornia `gaussian_blur2d`), width first, then height."""
    b, ch, h, w = x.shape
    x = x.reshape(b * ch, 1, h, w)
    for dim, (k, s) in ((3, (kernel_size[1], sigma[1])), (2, (kernel_size[0], sigma[0]))):
        # the kernel in the input dtype, as kornia computes it, to match it to rounding
        t = torch.arange(k, dtype=x.dtype, device=x.device) - k // 2
        g = torch.exp(-t.pow(2) / (2 * torch.tensor(s, dtype=x.dtype, device=x.device).pow(2)))
        g = g / g.sum()
        pad = (k // 2, k // 2, 0, 0) if dim == 3 else (0, 0, k // 2, k // 2)
        weight = g.view(1, 1, 1, k) if dim == 3 else g.view(1, 1, k, 1)
        x = F.conv2d(F.pad(x, pad, mode="reflect"), weight)
    return x.reshape(b, ch, h, w)


def clip_preprocess(images: Tensor, size: int = 224, antialias: bool = True) -> Tensor:
    """[B, 3, H, W] in [-1, 1] -> CLIP input [B, 3, size, size] (DynamiCrafter's `preprocess`).

    Resize as kornia `resize(..., interpolation='bicubic', align_corners=True, antialias=antialias)`: unchanged when
    the size already matches; when downscaling along any axis, a Gaussian blur (sigma from skimage's rule) first.
    Then map to [0, 1] and normalise with CLIP's mean and std.
    """
    h, w = images.shape[-2:]
    x = images
    if (h, w) != (size, size):
        factors = (h / size, w / size)
        if antialias and max(factors) > 1:
            sigmas = (max((factors[0] - 1) / 2, 0.001), max((factors[1] - 1) / 2, 0.001))
            ks = tuple(int(max(4 * s, 3)) for s in sigmas)
            x = _gaussian_blur(x, tuple(k + 1 - k % 2 for k in ks), sigmas)  # odd kernel sizes
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=True)
    x = (x + 1) / 2
    mean = torch.tensor(CLIP_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


class OpenCLIPImageEncoder(nn.Module):
    """OpenCLIP image tower; state-dict keys `model.*` as under `embedder.` in a DynamiCrafter checkpoint."""

    def __init__(self, config: CLIPVisionConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or CLIPVisionConfig()
        self.model = _OpenCLIPModel(c.text_width, c.vocab_size, c.context_length, c.embed_dim,
                                    visual=_VisionTransformer(c))

    def forward(self, images: Tensor) -> Tensor:
        """images [B, 3, H, W] in [-1, 1] -> token features [B, 1 + (image_size/patch)^2, width].

        The last block's output without `ln_post` and `proj`, as DynamiCrafter feeds its Resampler.
        """
        c, v = self.config, self.model.visual
        x = clip_preprocess(images, c.image_size, c.antialias)
        x = v.conv1(x).flatten(2).transpose(1, 2)  # [B, patches, width], patches row-major
        cls = v.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + v.positional_embedding.to(x.dtype)
        return v.transformer(v.ln_pre(x))


__all__ = ["CLIPTextConfig", "CLIPVisionConfig", "OpenCLIPTextEncoder", "OpenCLIPImageEncoder", "clip_preprocess",
           "empty_prompt_tokens", "SOT_TOKEN", "EOT_TOKEN", "CLIP_MEAN", "CLIP_STD"]
