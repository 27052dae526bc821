"""FID's feature network: pytorch-fid's InceptionV3 (the TF 2015 graph), read from `pt_inception-2015-12-05-6726825d.pth`.

The file is a state dict of torchvision's `Inception3(num_classes=1008, aux_logits=False)` names; it loads here with
every key checked (the 1008-way `fc` is loaded but unused). Features as pytorch-fid computes them for FID: frames in
[0, 1] resized to 299x299 (bilinear, align_corners=False), mapped to [-1, 1] (2x - 1), then the 2048-d output of the
final average pool (pool3). Frames are independent images (method.md 10.1).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .inception_blocks import (BasicConv2d, InceptionA, InceptionB, InceptionC, InceptionD, InceptionE,
                               max_pool_same, tf_avg_pool)
from .inputs import uint8_rgb
from .weights import load_checked, read_state_dict

SIZE = 299
FEATURES = 2048
CLASSES = 1008  # the TF graph's 1001 ImageNet classes padded to 1008


class FIDInceptionV3(nn.Module):
    """The network with pytorch-fid's parameter names; `forward` takes [N,3,H,W] in [0, 1] and returns [N, 2048]."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, c7=128)
        self.Mixed_6c = InceptionC(768, c7=160)
        self.Mixed_6d = InceptionC(768, c7=160)
        self.Mixed_6e = InceptionC(768, c7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool=tf_avg_pool)
        self.Mixed_7c = InceptionE(2048, pool=max_pool_same)
        self.fc = nn.Linear(FEATURES, CLASSES)  # in the file; FID reads the features before it

    def forward(self, x: Tensor) -> Tensor:
        x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        x = F.max_pool2d(self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x))), kernel_size=3, stride=2)
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


class InceptionFeatures(nn.Module):
    """FID's InceptionV3 loaded from pytorch-fid's weight file at `path`, on `device`, in eval mode."""

    def __init__(self, path: str | os.PathLike, device: str | torch.device = "cpu"):
        super().__init__()
        self.net = FIDInceptionV3()
        load_checked(self.net, read_state_dict(path), path)
        self.net.requires_grad_(False).eval().to(device)
        self.convention = (f"pytorch-fid InceptionV3 ({Path(path).name}): frames x/255 in [0,1], resized to 299x299 "
                           "bilinear, 2x-1, 2048-d pool3 features; frames as independent images")

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def fid_features(net: InceptionFeatures, frames: Any, batch_size: int = 50) -> Tensor:
    """pool3 features of uint8 frames [N,H,W,3] -> float32 [N, 2048] on the CPU, `batch_size` frames at a time
    on the network's device."""
    images = uint8_rgb(frames, "frames", "N,H,W,3")
    if batch_size < 1:
        raise ValueError(f"batch_size {batch_size}: expected >= 1")
    device = net.net.fc.weight.device
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size].to(device).permute(0, 3, 1, 2).float() / 255
            out.append(net(batch).float().cpu())
    features = torch.cat(out)
    if not bool(torch.isfinite(features).all()):
        raise ValueError(f"FID features hold NaN or inf: the weights behind {net.convention.split(':')[0]} are bad")
    return features
