"""Frame geometry and augmentation for clips, as pure functions on float tensors [T, 3, H, W] in [0, 1].

Layouts (method.md §9.1; padding is black):
- `resize`: straight to the output size;
- `shorter_side_pad` (RT-1): the shorter side to the output height, then centre-pad (or crop) to the output size;
- `resize_pad` (CS:GO): resize to `inner` (275 x 512), then centre-pad to the output size;
- `square_crop_pad` (RECON): centre-crop the largest square, resize it to the output height, centre-pad.
Augmentation (§9.5) draws its parameters once per clip, so every frame of a clip gets the same jitter and shift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

LAYOUTS = ("resize", "shorter_side_pad", "resize_pad", "square_crop_pad")


@dataclass(frozen=True)
class FrameLayout:
    size: tuple[int, int]  # output (H, W)
    mode: str = "resize"
    inner: tuple[int, int] | None = None  # resize_pad: the size before padding

    def __post_init__(self) -> None:
        if self.mode not in LAYOUTS:
            raise ValueError(f"frame layout: mode must be one of {LAYOUTS}, got {self.mode!r}")
        if self.mode == "resize_pad" and self.inner is None:
            raise ValueError("frame layout 'resize_pad' needs `inner` (the size before padding, e.g. 275x512)")

    def apply(self, video: torch.Tensor) -> torch.Tensor:
        h, w = self.size
        if self.mode == "resize":
            return resize(video, (h, w))
        if self.mode == "shorter_side_pad":
            src_h, src_w = video.shape[-2:]
            scale = h / min(src_h, src_w)
            return center_pad_or_crop(resize(video, (round(src_h * scale), round(src_w * scale))), (h, w))
        if self.mode == "resize_pad":
            return center_pad_or_crop(resize(video, self.inner), (h, w))
        side = min(video.shape[-2:])
        return center_pad_or_crop(resize(center_pad_or_crop(video, (side, side)), (h, h)), (h, w))


def resize_uint8(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 frames [T, H, W, 3] -> [T, h, w, 3] (Pillow bilinear, antialiased), for storing at a fixed size."""
    if frames.shape[1:3] == tuple(size):
        return np.ascontiguousarray(frames, dtype=np.uint8)
    h, w = size
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(f, dtype=np.uint8)).resize((w, h), Image.BILINEAR))
                     for f in frames])


def resize(video: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(video.shape[-2:]) == tuple(size):
        return video
    return F.interpolate(video, size=size, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


def center_pad_or_crop(video: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Centre the frame in `size`: zero (black) padding where it is smaller, a centre crop where it is larger."""
    out = video
    for axis, target in ((-2, size[0]), (-1, size[1])):
        have = out.shape[axis]
        if have > target:
            start = (have - target) // 2
            out = out.narrow(axis, start, target)
        elif have < target:
            before = (target - have) // 2
            pad = [0, 0, 0, 0]
            pad[0 if axis == -1 else 2], pad[1 if axis == -1 else 3] = before, target - have - before
            out = F.pad(out, pad)
    return out


@dataclass(frozen=True)
class AugmentConfig:
    brightness: float = 0.1  # factor in [1 - b, 1 + b]
    contrast: float = 0.1
    saturation: float = 0.1
    hue: float = 0.05  # shift in [-h, h] turns of the colour wheel
    shift: int = 2  # pixels: reflect-pad by this much, then crop back at a random offset


@dataclass(frozen=True)
class AugmentDraw:
    """One clip's augmentation parameters."""

    brightness: float
    contrast: float
    saturation: float
    hue: float
    dy: int
    dx: int
    pad: int


def draw_augment(cfg: AugmentConfig, rng: np.random.Generator) -> AugmentDraw:
    b, c, s = (rng.uniform(1 - v, 1 + v) for v in (cfg.brightness, cfg.contrast, cfg.saturation))
    hue = rng.uniform(-cfg.hue, cfg.hue)
    dy, dx = rng.integers(0, 2 * cfg.shift + 1, size=2)
    return AugmentDraw(float(b), float(c), float(s), float(hue), int(dy), int(dx), cfg.shift)


def colour_jitter(video: torch.Tensor, d: AugmentDraw) -> torch.Tensor:
    """Brightness, contrast, saturation, hue, in that order (a fixed order, so a draw means one thing)."""
    out = adjust_saturation(adjust_contrast(adjust_brightness(video, d.brightness), d.contrast), d.saturation)
    return adjust_hue(out, d.hue)


def augment(video: torch.Tensor, cfg: AugmentConfig, rng: np.random.Generator,
            layout: "FrameLayout | None" = None) -> torch.Tensor:
    """Colour jitter and a translation, one draw per clip. With a `layout`, the jitter runs on the stored frames
    before it (per-pixel colour maps nearly commute with resizing, and the stored frames are usually far smaller
    than the model's 320 x 512; padding then stays black), and the shift after it, at the model's resolution."""
    d = draw_augment(cfg, rng)
    out = colour_jitter(video, d)
    if layout is not None:
        out = layout.apply(out)
    return translate(out, d.pad, d.dy, d.dx)


def adjust_brightness(video: torch.Tensor, factor: float) -> torch.Tensor:
    return (video * factor).clamp(0, 1)


def _gray(video: torch.Tensor) -> torch.Tensor:
    r, g, b = video.unbind(-3)
    return (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(-3)  # ITU-R 601 luma, as torchvision


def adjust_contrast(video: torch.Tensor, factor: float) -> torch.Tensor:
    mean = _gray(video).mean(dim=(-3, -2, -1), keepdim=True)  # per frame, as torchvision does per image
    return (factor * video + (1 - factor) * mean).clamp(0, 1)


def adjust_saturation(video: torch.Tensor, factor: float) -> torch.Tensor:
    return (factor * video + (1 - factor) * _gray(video)).clamp(0, 1)


def adjust_hue(video: torch.Tensor, shift: float) -> torch.Tensor:
    """Rotate hue by `shift` turns (RGB -> HSV -> RGB)."""
    if shift == 0:
        return video
    h, s, v = rgb_to_hsv(video).unbind(-3)
    return hsv_to_rgb(torch.stack([(h + shift) % 1.0, s, v], dim=-3))


def rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    r, g, b = rgb.unbind(-3)
    maxc, _ = rgb.max(dim=-3)
    minc, _ = rgb.min(dim=-3)
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    h = torch.where(maxc == r, ((g - b) / safe) % 6, torch.where(maxc == g, (b - r) / safe + 2, (r - g) / safe + 4))
    h = torch.where(delta > 0, h / 6.0, torch.zeros_like(h))
    s = torch.where(maxc > 0, delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc)), torch.zeros_like(maxc))
    return torch.stack([h, s, maxc], dim=-3)


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    h, s, v = hsv.unbind(-3)
    k = torch.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6], dim=-3)
    return v.unsqueeze(-3) - (v * s).unsqueeze(-3) * (torch.minimum(k, 4 - k).clamp(0, 1))


def translate(video: torch.Tensor, pad: int, dy: int, dx: int) -> torch.Tensor:
    """Reflect-pad by `pad`, then crop the original size at offset (dy, dx); (pad, pad) is the identity."""
    if pad == 0:
        return video
    h, w = video.shape[-2:]
    padded = F.pad(video, (pad, pad, pad, pad), mode="reflect")
    return padded[..., dy: dy + h, dx: dx + w]
