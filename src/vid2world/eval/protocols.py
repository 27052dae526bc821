"""Evaluation protocols (method.md 10.2): which windows are cut from the held-out split, how many frames are given
and generated, and which frames each kind of metric scores.

Frame indices count from the start of a window (the clip of `context + horizon` frames): `frames` are what frame
metrics (PSNR, SSIM, LPIPS, FID's images) score, `video_frames` the clip FVD scores, `curve_frames` the per-horizon
curves. Index 0 is the first context frame; a scored context frame is the ground truth itself in every source (RT-1
scores all 16 frames, its given first frame included, as the paper's baselines do).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from ..data.clips import ClipConfig, Window, eval_windows
from ..data.store import Dataset


@dataclass(frozen=True)
class Protocol:
    """One evaluation protocol. `windows`: how many (None: every eligible episode of the split, one window each);
    `score_size`: (H, W) the frames are resized to before scoring (None: as the model sees them)."""

    name: str
    context: int
    horizon: int
    frames: tuple[int, ...]
    video_frames: tuple[int, ...]
    curve_frames: tuple[int, ...]
    windows: int | None = None
    stride: int = 1  # dataset frames between consecutive window frames
    seeds: int = 1  # model rollouts per window, each with its own seed (mean and std over seeds)
    score_size: tuple[int, int] | None = None
    lpips_net: str = "vgg"
    split: str = "val"
    description: str = ""

    def __post_init__(self) -> None:
        if self.context < 1 or self.horizon < 1:
            raise ValueError(f"protocol {self.name!r}: context and horizon must be >= 1 frame, got "
                             f"{self.context} and {self.horizon}")
        for kind in ("frames", "video_frames", "curve_frames"):
            bad = [i for i in getattr(self, kind) if not 0 <= i < self.length]
            if bad or not getattr(self, kind):
                raise ValueError(f"protocol {self.name!r}: {kind} must be frame indices in 0..{self.length - 1}, "
                                 f"got {getattr(self, kind)}")

    @property
    def length(self) -> int:
        """Frames in a window: the context and the generated ones."""
        return self.context + self.horizon

    def clip_config(self) -> ClipConfig:
        return ClipConfig(self.length, self.stride, None, None, self.split)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def predicted(context: int, horizon: int) -> tuple[int, ...]:
    """The indices of the generated frames of a window."""
    return tuple(range(context, context + horizon))


def generic(context: int, horizon: int, stride: int = 1, windows: int | None = None, split: str = "val") -> Protocol:
    """Any dataset: `context` frames given, `horizon` generated, every generated frame scored."""
    frames = predicted(context, horizon)
    return Protocol("generic", context, horizon, frames, frames, frames, windows, stride, split=split,
                    description=f"{context} ground-truth frames, {horizon} generated autoregressively, every "
                                "generated frame scored")


_RECON_HIST = predicted(4, 16)
PROTOCOLS: dict[str, Protocol] = {
    "rt1": Protocol("rt1", 1, 15, tuple(range(16)), tuple(range(16)), tuple(range(16)), windows=1024,
                    description="first frame + actions, autoregressive to 16 frames; metrics on all 16 frames, the "
                                "given first frame included, as the baselines do"),
    "csgo": Protocol("csgo", 4, 12, predicted(4, 12), predicted(4, 12), predicted(4, 12), windows=500,
                     score_size=(150, 280),
                     description="4 ground-truth frames, autoregressive to 16; the 12 predicted frames scored at "
                                 "150 x 280"),
    "recon": Protocol("recon", 4, 16, (19,), _RECON_HIST, _RECON_HIST, windows=500, lpips_net="alex",
                      description="single-step setting (vs NWM): 4 history frames, 16 predicted (4 s at 4 fps); FVD "
                                  "on all 16 predicted frames, every other metric on the final frame only"),
    "recon-ar": Protocol("recon-ar", 4, 16, (7, 11, 19), _RECON_HIST, _RECON_HIST, windows=150, seeds=5,
                         lpips_net="alex",
                         description="4 history frames, autoregressive to 20; frames 8, 12, 20 (1 s, 2 s, 4 s "
                                     "ahead); mean and std over 5 seeds"),
}


def get_protocol(name: str, **overrides: Any) -> Protocol:
    """A registered protocol by name (`generic` takes context/horizon/stride/windows), with `overrides` of its
    fields (None values are ignored)."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if name == "generic":
        missing = [k for k in ("context", "horizon") if k not in overrides]
        if missing:
            raise ValueError(f"--protocol generic needs {', '.join('--' + m for m in missing)}")
        return replace(generic(overrides.pop("context"), overrides.pop("horizon")), **overrides)
    if name not in PROTOCOLS:
        raise ValueError(f"--protocol: unknown protocol {name!r}; expected one of {sorted(PROTOCOLS) + ['generic']}")
    return replace(PROTOCOLS[name], **overrides)


def with_split(protocol: Protocol, split: str | None, dataset: Dataset) -> Protocol:
    """`protocol` cutting its windows from `split` of `dataset` ("all": every episode, for a dataset recorded apart
    from any training data; None: the protocol's own split). A named split without episodes is an error."""
    if split is None:
        return protocol
    if split == "all":
        return replace(protocol, split=None)
    if not len(dataset.episodes_in(split)):
        names = sorted(set(dataset.splits))
        raise ValueError(f"--split {split}: {dataset.root} has no episode in split {split!r} (its splits: "
                         f"{', '.join(names)}; or --split all)")
    return replace(protocol, split=split)


def protocol_windows(dataset: Dataset, protocol: Protocol, seed: int = 0) -> tuple[list[Window], str | None]:
    """The protocol's windows, deterministic (`eval_windows`: episodes drawn by a seeded `random.Random`, starts from
    a stable hash), from the protocol's held-out split; when the dataset has no episode in that split, from every
    episode, with a note saying so (the second value, else None)."""
    note = None
    split: str | None = protocol.split
    if not len(dataset.episodes_in(split)):
        note = (f"{dataset.root} has no episode in split {split!r}: the windows come from all its episodes, "
                "training episodes included (data recorded apart from the training data: --split all)")
        split = None
    return eval_windows(dataset, replace(protocol.clip_config(), split=split), protocol.windows, seed), note
