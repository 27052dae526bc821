"""A Wan world model's fixed prompt: its UMT5 text features, computed once and stored with the model.

`PromptFeatures.from_encoder` runs a transformers `UMT5EncoderModel` (google/umt5-xxl, or the
`text_encoder/` of a diffusers Wan pipeline) on one prompt as diffusers' `WanPipeline._get_t5_prompt_embeds`
does: the prompt cleaned (ftfy when installed, HTML entities, whitespace), tokenized to `max_length` with
padding and truncation, the encoder's `last_hidden_state` taken with the attention mask, and every row past
the prompt's own tokens set to zero. The Wan release (wan/modules/t5.py) keeps only the prompt's rows and its
model pads them with zeros to `text_len` 512: the same tensor. `from_file` / `save` read and write it as a
safetensors file (`prompt_embeds`), so the encoder (about 11 GB in bf16) is needed once, never per frame.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from ...io.atomic import atomic_file

EMBEDS_KEY = "prompt_embeds"
MAX_LENGTH = 512  # Wan 2.1's text_len
INSTALL_HINT = "pip install 'vid2world[wan]'"


def clean_prompt(text: str) -> str:
    """diffusers' (and the Wan release's) `prompt_clean`: ftfy's fixes where ftfy is installed (as diffusers;
    the release requires it), HTML entities unescaped twice, runs of whitespace collapsed, ends stripped."""
    try:
        import ftfy
        text = ftfy.fix_text(text)
    except ImportError:
        pass
    text = html.unescape(html.unescape(text)).strip()
    # diffusers' `\s` is the `regex` package's, Unicode White_Space: Python's less the separators \x1c-\x1f
    return re.sub(r"[^\S\x1c-\x1f]+", " ", text).strip()


def encoder_directories(encoder_dir: str | Path) -> tuple[Path, Path]:
    """(model, tokenizer) directories: a diffusers Wan pipeline's `text_encoder/` and `tokenizer/`, or
    `encoder_dir` itself for both (google/umt5-xxl's layout). ValueError naming the path when it holds no UMT5
    encoder."""
    root = Path(encoder_dir)
    if (root / "text_encoder" / "config.json").is_file():
        model_dir, tokenizer_dir = root / "text_encoder", root / "tokenizer"
    else:
        model_dir, tokenizer_dir = root, root
    config_path = model_dir / "config.json"
    try:
        model_type = json.loads(config_path.read_text()).get("model_type")
    except (OSError, ValueError, AttributeError) as err:
        raise ValueError(f"{root}: not a UMT5 text encoder directory (no readable config.json: {err})"
                         ) from err
    if model_type != "umt5":
        raise ValueError(f"{config_path}: model_type is {model_type!r}, expected 'umt5' (a UMT5 encoder)")
    return model_dir, tokenizer_dir


def _load_encoder(model_dir: Path, tokenizer_dir: Path, device, dtype):
    try:
        from transformers import AutoTokenizer, UMT5EncoderModel
    except ImportError as err:
        raise ValueError(f"{model_dir}: reading a UMT5 text encoder needs transformers: {INSTALL_HINT}"
                         ) from err
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
    except (OSError, ValueError, TypeError) as err:
        raise ValueError(f"{tokenizer_dir}: no UMT5 tokenizer could be read there ({err})") from err
    try:
        encoder = UMT5EncoderModel.from_pretrained(str(model_dir), local_files_only=True,
                                                   dtype=dtype if dtype is not None else "auto")
    except (OSError, ValueError) as err:
        raise ValueError(f"{model_dir}: the UMT5 encoder's weights could not be read ({err})") from err
    return tokenizer, encoder.to(device).eval()


@torch.inference_mode()
def encode_prompt(tokenizer, encoder, prompt: str, max_length: int = MAX_LENGTH) -> Tensor:
    """[max_length, D] features of one prompt, the rows past its tokens zero (diffusers'
    `_get_t5_prompt_embeds`)."""
    tokens = tokenizer([clean_prompt(prompt)], padding="max_length", max_length=max_length, truncation=True,
                       add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
    device = next(encoder.parameters()).device
    mask = tokens.attention_mask.to(device)
    hidden = encoder(tokens.input_ids.to(device), mask).last_hidden_state[0]
    length = int(mask[0].gt(0).sum())
    return torch.cat([hidden[:length], hidden.new_zeros(max_length - length, hidden.shape[1])])


@dataclass(frozen=True, eq=False)  # eq=False: tensors have no single truth value
class PromptFeatures:
    """The fixed prompt's UMT5 features `embeds` [L, D] (rows past the prompt's tokens zero) and, where known,
    the prompt they came from."""

    embeds: Tensor
    prompt: str | None = None

    def __post_init__(self) -> None:
        e = self.embeds
        if e.ndim != 2 or not e.is_floating_point() or min(e.shape) < 1:
            raise ValueError(f"prompt features must be a float [L, D] tensor, got {e.dtype} {list(e.shape)}")
        if not bool(torch.isfinite(e).all()):
            raise ValueError("prompt features hold NaN or inf values")

    @property
    def length(self) -> int:
        """The prompt's token count: rows up to the last non-zero one."""
        nonzero = self.embeds.ne(0).any(dim=1).nonzero()
        return int(nonzero[-1]) + 1 if len(nonzero) else 0

    @property
    def dim(self) -> int:
        return self.embeds.shape[1]

    def batch(self, batch: int, device=None, dtype: torch.dtype | None = None) -> Tensor:
        """[batch, L, D] on `device` in `dtype`: what a Wan transformer takes as `encoder_hidden_states`."""
        e = self.embeds.to(device=device, dtype=dtype or self.embeds.dtype)
        return e.unsqueeze(0).expand(batch, -1, -1)

    @classmethod
    def from_encoder(cls, encoder_dir: str | Path, prompt: str, max_length: int = MAX_LENGTH, *,
                     device=None, dtype: torch.dtype | None = None) -> "PromptFeatures":
        """Encode `prompt` with the UMT5 encoder under `encoder_dir` (local files only; see
        `encoder_directories`), on `device`, the weights in `dtype` (default: as stored)."""
        if max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        tokenizer, encoder = _load_encoder(*encoder_directories(encoder_dir), device, dtype)
        embeds = encode_prompt(tokenizer, encoder, prompt, max_length)
        return cls(embeds.float().cpu(), prompt)

    @classmethod
    def from_file(cls, path: str | Path) -> "PromptFeatures":
        """Read a safetensors file holding `prompt_embeds` [L, D] or [1, L, D]."""
        try:
            tensors = load_file(str(path))
        except (OSError, SafetensorError) as err:
            raise ValueError(f"{path}: not a readable safetensors file ({err})") from err
        if EMBEDS_KEY not in tensors:
            raise ValueError(f"{path}: no {EMBEDS_KEY!r} tensor (found {sorted(tensors)})")
        e = tensors[EMBEDS_KEY]
        if e.ndim == 3 and e.shape[0] == 1:
            e = e[0]
        if e.ndim != 2 or not e.is_floating_point() or e.numel() == 0:
            raise ValueError(f"{path}: {EMBEDS_KEY!r} must be a float [L, D] or [1, L, D] tensor, "
                             f"got {e.dtype} {list(tensors[EMBEDS_KEY].shape)}")
        if not bool(torch.isfinite(e).all()):
            raise ValueError(f"{path}: {EMBEDS_KEY!r} holds NaN or inf values")
        with safe_open(str(path), "pt") as f:  # the prompt, where the file records it
            prompt = (f.metadata() or {}).get("prompt")
        return cls(e.float(), prompt)

    def save(self, path: str | Path) -> Path:
        """Write `prompt_embeds` [L, D] (and the prompt, as metadata) atomically; returns the path."""
        metadata = {"prompt": self.prompt} if self.prompt is not None else None
        with atomic_file(path) as tmp:
            save_file({EMBEDS_KEY: self.embeds.contiguous()}, str(tmp), metadata=metadata)
        return Path(path)


__all__ = ["PromptFeatures", "clean_prompt", "encode_prompt", "encoder_directories", "EMBEDS_KEY",
           "MAX_LENGTH"]
