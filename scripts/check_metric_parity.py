"""Parity of vid2world's metric networks with the reference packages, on the real weight files (the GPU machine).

    python scripts/check_metric_parity.py --weights DIR [--device cuda] [--json out.json]

DIR holds the files vid2world.metrics.weights names. Each check runs when its file (and, for LPIPS and FID, its
reference package: `lpips`, `pytorch_fid`, which need torchvision) is present, and says why when it is skipped:
- lpips-vgg / lpips-alex: ours vs `lpips.LPIPS(net, pnet_rand=True)` given the same torchvision backbone weights;
- fid: ours vs `pytorch_fid.inception.InceptionV3([3])` loading the same file;
- fvd: our call (uint8 [0,255], rescale=True, resize=True) vs the same videos as float [0,255] (must agree), vs our own
  224x224 bilinear resize in [-1,1] with rescale=False, resize=False (how close the module's resize is to ours), and
  vs [0,1] input with rescale=True (the call some ports make: expected far off).
Exits 1 when a parity check (lpips, fid, fvd uint8-vs-float) differs by more than its tolerance.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

import torch
import torch.nn.functional as F

from vid2world.io.args import torch_device, write_json
from vid2world.metrics import I3DFeatures, InceptionFeatures, LPIPS, Skip, WeightsDir, add_weights_flag, fvd_features
from vid2world.metrics.weights import read_state_dict

TOLERANCE = 1e-4  # relative L2 difference allowed for a parity check


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().cpu(), b.double().cpu()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def optional(module: str):
    try:
        return importlib.import_module(module)
    except ImportError as err:
        return Skip(module, f"not importable ({err})")


def check_lpips(weights: WeightsDir, net: str, device: str) -> dict:
    path, lpips = weights.find(f"lpips-{net}"), optional("lpips")
    if isinstance(path, Skip) or isinstance(lpips, Skip):
        return {"skipped": str(path if isinstance(path, Skip) else lpips)}
    ours = LPIPS(net, path).to(device)
    theirs = lpips.LPIPS(net=net, pnet_rand=True, verbose=False).eval().to(device)
    backbone = read_state_dict(path)
    for name, param in theirs.net.named_parameters():  # slice{k}.{torchvision index}.*
        param.data.copy_(backbone["features." + name.split(".", 1)[1]])
    gen = torch.Generator().manual_seed(0)
    a, b = ((torch.rand(8, 3, 128, 160, generator=gen) * 2 - 1).to(device) for _ in range(2))
    with torch.no_grad():
        diff = relative(ours(a, b), theirs(a, b).flatten())
    return {"relative_difference": diff, "ok": diff <= TOLERANCE}


def check_fid(weights: WeightsDir, device: str) -> dict:
    path, reference = weights.find("fid"), optional("pytorch_fid.inception")
    if isinstance(path, Skip) or isinstance(reference, Skip):
        return {"skipped": str(path if isinstance(path, Skip) else reference)}
    state = read_state_dict(path)
    reference.load_state_dict_from_url = lambda *args, **kwargs: state  # the user's file, never a download
    theirs = reference.InceptionV3([3]).eval().to(device)
    ours = InceptionFeatures(path, device)
    x = torch.rand(8, 3, 150, 280, generator=torch.Generator().manual_seed(1)).to(device)
    with torch.no_grad():
        diff = relative(ours(x), theirs(x)[0].flatten(1))
    return {"relative_difference": diff, "ok": diff <= TOLERANCE}


def check_fvd(weights: WeightsDir, device: str) -> dict:
    path = weights.find("fvd")
    if isinstance(path, Skip):
        return {"skipped": str(path)}
    net = I3DFeatures(path, device)
    smooth = F.interpolate(torch.rand(4, 3, 16, 8, 10, generator=torch.Generator().manual_seed(2)),
                           size=(16, 96, 120), mode="trilinear")  # natural-ish: smooth, not noise
    videos = (smooth * 255).round().to(torch.uint8).permute(0, 2, 3, 4, 1).contiguous()  # [B,T,H,W,3]
    ours = fvd_features(net, videos)
    x = videos.permute(0, 4, 1, 2, 3).float().to(device)  # [B,3,T,H,W] in [0, 255]
    frames = x.transpose(1, 2).flatten(0, 1)  # [B*T, 3, H, W]
    resized = F.interpolate(frames, size=(224, 224), mode="bilinear", align_corners=False)
    ours_resize = (resized / 127.5 - 1).view(4, 16, 3, 224, 224).transpose(1, 2).contiguous()
    with torch.no_grad():
        calls = {"float_0_255": net.detector(x.contiguous(), rescale=True, resize=True, return_features=True),
                 "own_resize_minus1_1": net.detector(ours_resize, rescale=False, resize=False, return_features=True),
                 "unit_range_rescaled": net.detector((x / 255).contiguous(), rescale=True, resize=True,
                                                     return_features=True)}
    out = {name: relative(value, ours) for name, value in calls.items()}
    return {"relative_difference_to_our_call": out, "convention": net.convention,
            "ok": out["float_0_255"] <= TOLERANCE}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_weights_flag(parser)
    parser.add_argument("--device", type=torch_device, default="cpu")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    weights = WeightsDir.resolve(args.weights)
    results = {"lpips-vgg": check_lpips(weights, "vgg", args.device),
               "lpips-alex": check_lpips(weights, "alex", args.device),
               "fid": check_fid(weights, args.device), "fvd": check_fvd(weights, args.device)}
    print(json.dumps(results, indent=1))
    write_json(args.json, results)
    return 1 if any(r.get("ok") is False for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
