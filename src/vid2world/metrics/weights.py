"""Where the metric networks' pretrained files come from, and how they are read.

Every file comes from a directory the user names (`--weights DIR`, else the environment variable VID2WORLD_WEIGHTS)
under the exact name its upstream release uses (dependencies.md section 4). Nothing is downloaded and nothing is
approximated: a metric whose file is absent is skipped, with a reason that names the file and the directory.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch
from torch import Tensor, nn

ENV_VAR = "VID2WORLD_WEIGHTS"
HINT = f"give --weights DIR or set {ENV_VAR}"

# metric -> the file its network is read from, named as its upstream release names it
WEIGHT_FILES: dict[str, str] = {
    "lpips-vgg": "vgg16-397923af.pth",  # torchvision's VGG16 ImageNet state dict (its features.* are used)
    "lpips-alex": "alexnet-owt-7be5be79.pth",  # torchvision's AlexNet ImageNet state dict
    "fid": "pt_inception-2015-12-05-6726825d.pth",  # pytorch-fid's FID Inception state dict
    "fvd": "i3d_torchscript.pt",  # StyleGAN-V's I3D (Kinetics-400) TorchScript archive
}


@dataclass(frozen=True)
class Skip:
    """Why a metric was not computed; `str()` is the line the report shows."""

    metric: str
    reason: str

    def __str__(self) -> str:
        return f"{self.metric} skipped: {self.reason}"


@dataclass(frozen=True)
class WeightsDir:
    """The directory the metric weight files are read from; `path` is None when the user named none."""

    path: Path | None = None

    @classmethod
    def resolve(cls, explicit: str | os.PathLike | None = None,
                environ: Mapping[str, str] | None = None) -> "WeightsDir":
        """`explicit` (the `--weights` value) when given, else $VID2WORLD_WEIGHTS, else no directory. A named
        directory that does not exist is an error (the user said where to look), not a skip."""
        environ = os.environ if environ is None else environ
        if explicit is not None:
            given, source = str(explicit), "--weights"
        elif environ.get(ENV_VAR):
            given, source = environ[ENV_VAR], ENV_VAR
        else:
            return cls(None)
        path = Path(given).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"{source} {given}: no such directory (expected the directory holding "
                                    f"{', '.join(WEIGHT_FILES.values())})")
        return cls(path.resolve())

    def find(self, metric: str) -> Path | Skip:
        """The path of `metric`'s weight file, or a Skip naming the file and where it was looked for."""
        if metric not in WEIGHT_FILES:
            raise ValueError(f"unknown metric {metric!r}: weight files are known for {sorted(WEIGHT_FILES)}")
        name = WEIGHT_FILES[metric]
        if self.path is None:
            return Skip(metric, f"{name} not found: no weights directory ({HINT})")
        candidate = self.path / name
        if candidate.is_file():
            return candidate
        return Skip(metric, f"{name} not found in {self.path} ({HINT})")


def add_weights_flag(parser: argparse.ArgumentParser) -> None:
    """The `--weights DIR` flag of every command that scores with the network metrics."""
    parser.add_argument("--weights", metavar="DIR", default=None,
                        help=f"directory holding the metric networks' files ({', '.join(WEIGHT_FILES.values())}); "
                             f"default ${ENV_VAR}; a metric whose file is absent is skipped and says so")


def _first(keys: list[str], count: int = 3) -> str:
    shown = ", ".join(keys[:count])
    return f"{shown} (+{len(keys) - count} more)" if len(keys) > count else shown or "none"


def read_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """A flat state dict of tensors from a `torch.save` file, unpickled weights-only onto the CPU."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch's unpickler raises anything (UnpicklingError, RuntimeError, EOFError) on garbage
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        raise ValueError(f"{path}: corrupt, truncated or not a torch state dict ({type(err).__name__}: "
                         f"{(lines or [''])[0][:160]})") from None
    if not isinstance(state, Mapping):
        raise ValueError(f"{path}: holds a {type(state).__name__}, expected a state dict (parameter name -> tensor)")
    odd = [str(k) for k, v in state.items() if not (isinstance(k, str) and isinstance(v, Tensor))]
    if odd:
        raise ValueError(f"{path}: expected a flat state dict of tensors; entries {_first(odd)} are not tensors")
    return dict(state)


def load_checked(module: nn.Module, state: Mapping[str, Tensor], path: str | os.PathLike,
                 optional: tuple[str, ...] = ("num_batches_tracked",)) -> None:
    """Load `state` into `module` once its keys and shapes are exactly the module's (entries ending in one of
    `optional` may be absent) and its values finite; otherwise raise naming `path` and the first differing keys."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith(optional)]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise ValueError(f"{path}: not the expected weights: missing keys {_first(missing)}; "
                         f"unexpected keys {_first(unexpected)}")
    wrong = [f"{k} {tuple(v.shape)} (expected {tuple(expected[k].shape)})" for k, v in state.items()
             if v.shape != expected[k].shape]
    if wrong:
        raise ValueError(f"{path}: wrong shapes: {_first(wrong)}")
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise ValueError(f"{path}: non-finite values (NaN or inf) in {_first(bad)}")
    module.load_state_dict(dict(state), strict=False)  # every key checked above; only `optional` buffers may lack
