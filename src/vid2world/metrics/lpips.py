"""LPIPS v0.1 as the `lpips` package computes it, from a torchvision ImageNet backbone file the user gives.

Frames in [-1, 1] -> lpips' ScalingLayer -> the backbone's `features` stack (torchvision's parameter names, so
`vgg16-397923af.pth` / `alexnet-owt-7be5be79.pth` load as they are) tapped after each of five ReLUs -> every tap
unit-normalised over channels (x / (||x|| + 1e-10)) -> squared difference -> the v0.1 1x1 linear head of that layer
-> spatial mean -> sum over layers. The heads are lpips' v0.1 files as the torchmetrics wheel ships them
(`torchmetrics/functional/image/lpips_models/{vgg,alex}.pth`). VGG scores RT-1 and CS:GO, AlexNet RECON (NWM's
choice, method.md 10.1).
"""

from __future__ import annotations

import importlib.resources
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from .inputs import same_shape, uint8_rgb
from .weights import load_checked, read_state_dict

SHIFT = (-0.030, -0.088, -0.188)  # lpips ScalingLayer: (x - shift) / scale
SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10  # lpips.normalize_tensor
NET_BY_DATASET = {"rt1": "vgg", "csgo": "vgg", "recon": "alex"}  # method.md 10.1; the paper's default is VGG


def _vgg16_features() -> nn.Sequential:
    """torchvision's VGG16 `features` up to relu5_3 (indices 0-29): 3x3 convs with ReLUs, 2x2 max-pools."""
    layers: list[nn.Module] = []
    channels = 3
    for width in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512):
        if width == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, int(width), 3, padding=1), nn.ReLU()]
            channels = int(width)
    return nn.Sequential(*layers)


def _alexnet_features() -> nn.Sequential:
    """torchvision's AlexNet `features` up to relu5 (indices 0-11)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU())


@dataclass(frozen=True)
class Backbone:
    """One LPIPS backbone: its `features` builder, the indices whose outputs are tapped, their widths."""

    build: Callable[[], nn.Sequential]
    taps: tuple[int, ...]
    channels: tuple[int, ...]
    weights: str  # the WEIGHT_FILES key of its ImageNet file


NETS: dict[str, Backbone] = {
    "vgg": Backbone(_vgg16_features, (3, 8, 15, 22, 29), (64, 128, 256, 512, 512), "lpips-vgg"),  # relu1_2..relu5_3
    "alex": Backbone(_alexnet_features, (1, 4, 7, 9, 11), (64, 192, 384, 256, 256), "lpips-alex"),  # relu1..relu5
}


def heads_file(net: str) -> Path:
    """lpips' v0.1 linear heads for `net`, as the torchmetrics wheel ships them."""
    root = importlib.resources.files("torchmetrics.functional.image") / "lpips_models" / f"{net}.pth"
    return Path(str(root))


class _Head(nn.Module):
    """lpips' NetLinLayer: `model.0` is a dropout (identity when evaluating), `model.1` the 1x1 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Identity(), nn.Conv2d(channels, 1, 1, bias=False))


class LPIPS(nn.Module):
    """LPIPS v0.1 distance per image pair: `forward(a, b)` on [N,3,H,W] frames in [-1, 1] -> [N]."""

    def __init__(self, net: str, backbone_path: str | os.PathLike, heads_path: str | os.PathLike | None = None):
        super().__init__()
        if net not in NETS:
            raise ValueError(f"LPIPS net {net!r}: expected one of {sorted(NETS)}")
        spec = NETS[net]
        self.taps = spec.taps
        self.features = spec.build()
        self.heads = nn.ModuleDict({f"lin{i}": _Head(c) for i, c in enumerate(spec.channels)})
        backbone = read_state_dict(backbone_path)  # torchvision's whole network: only `features.*` is LPIPS'
        load_checked(nn.ModuleDict({"features": self.features}),
                     {k: v for k, v in backbone.items() if k.startswith("features.")}, backbone_path)
        heads_path = heads_file(net) if heads_path is None else Path(heads_path)
        load_checked(self.heads, read_state_dict(heads_path), heads_path)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False).eval()
        self.convention = (f"lpips v0.1 {net}: frames x/127.5-1 in [-1,1], backbone {Path(backbone_path).name}, "
                           f"heads torchmetrics lpips_models/{net}.pth, no resize, mean per frame")

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        if a.shape != b.shape or a.ndim != 4 or a.shape[1] != 3:
            raise ValueError(f"LPIPS inputs {tuple(a.shape)} and {tuple(b.shape)}: expected two [N,3,H,W] batches")
        if not (bool(torch.isfinite(a).all()) and bool(torch.isfinite(b).all())):
            raise ValueError("LPIPS inputs hold NaN or inf; expected frames in [-1, 1]")
        x = (torch.cat([a, b]) - self.shift) / self.scale  # both images through the backbone in one batch
        total = torch.zeros(len(a), device=a.device, dtype=x.dtype)
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.taps:
                unit = x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + EPS)
                fa, fb = unit.chunk(2)
                head = self.heads[f"lin{self.taps.index(index)}"].model
                total = total + head((fa - fb) ** 2).mean(dim=(1, 2, 3))
        return total


def lpips_frames(net: LPIPS, pred: Any, target: Any, batch_size: int = 32) -> Tensor:
    """LPIPS of every frame pair of two uint8 videos [B,T,H,W,3] -> float32 [B,T] on the CPU; frames are mapped
    to [-1, 1] as x / 127.5 - 1 and scored `batch_size` pairs at a time on the network's device."""
    a, b = uint8_rgb(pred, "pred", "B,T,H,W,3"), uint8_rgb(target, "target", "B,T,H,W,3")
    same_shape(a, b, ("pred", "target"))
    if batch_size < 1:
        raise ValueError(f"batch_size {batch_size}: expected >= 1")
    device = net.shift.device
    flat_a, flat_b = a.flatten(0, 1), b.flatten(0, 1)
    out = []
    with torch.no_grad():
        for start in range(0, len(flat_a), batch_size):
            pair = [x[start:start + batch_size].to(device).permute(0, 3, 1, 2).float() / 127.5 - 1
                    for x in (flat_a, flat_b)]
            out.append(net(*pair).float().cpu())
    return torch.cat(out).view(a.shape[:2])


def lpips_net_for(dataset: str) -> str:
    """The LPIPS backbone method.md 10.1 uses for `dataset` (its DatasetMeta name); VGG for any other."""
    return NET_BY_DATASET.get(dataset, "vgg")


__all__ = ["LPIPS", "NETS", "heads_file", "lpips_frames", "lpips_net_for"]
