"""An inverse-dynamics model (IDM): frames t and t+1 -> action t, for action-accuracy scores of generated video
("how often the action can be read back from the imagined frames", as GameWorld Score does). docs/idm.md.

Use from an evaluation:

    from vid2world.eval.idm_io import load_idm
    idm = load_idm("runs/idm", device="cpu")
    scores = idm.score(frames, actions)  # frames uint8 [B, T, H, W, 3], actions [B, T, A] in the dataset's format
    scores["action_accuracy"], scores["chance_accuracy"], scores["groups"]["turn"]["accuracy"]

`score` reads action t (taken after frame t) from frames (t, t+1) for t in 0..T-2 and returns the structure of
`idm_scores.scores_with_chance`, the same as the IDM's own held-out scores on real frames (`idm.report["held_out"]`);
chance is the majority action of the IDM's training labels. `predict(frames)` gives the actions [B, T-1, A].
(An IDM fitted with `before`/`after` context frames reads actions `config.read(T)` instead.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ...data.spec import ActionSpec
from .scores import scores_with_chance


@dataclass(frozen=True)
class IDMConfig:
    """The network: a stem conv of `width` channels at `stem_stride`, `stages` stride-2 conv stages (`width`, 2x,
    4x, 4x ... channels), a 4x4 pooled grid, an MLP of `hidden` units, one linear head per action group. The input
    is frames t - before .. t + 1 + after and (with `difference`) the differences of consecutive ones, stacked on
    channels, in [-1, 1]. Frames around the pair let the net tell an action's push from motion already under way
    and see effects that show later (momentum); the first `before` and last `after` actions of a sequence are then
    not read."""

    frame_size: tuple[int, int] = (64, 64)
    width: int = 32
    stages: int = 3
    hidden: int = 256
    difference: bool = True
    stem_stride: int = 2  # 2: 4x fewer FLOPs than a full-resolution stem (2.7 vs 11 GFLOP per step of 64 pairs)
    before: int = 0
    after: int = 0

    @property
    def window(self) -> int:
        """Frames per read action: t - before .. t + 1 + after."""
        return self.before + 2 + self.after

    def read(self, frames: int) -> slice:
        """Which actions of a sequence of `frames` frames this IDM reads (the last one never: no frame after it)."""
        return slice(self.before, frames - 1 - self.after)

    def __post_init__(self) -> None:
        if self.width < 8 or self.width % 8 or min(self.stages, self.hidden, *self.frame_size) < 1 \
                or min(self.before, self.after) < 0:
            raise ValueError(f"IDM config: width must be a multiple of 8 (GroupNorm's 8 groups), stages, hidden and "
                             f"the frame size positive, before and after >= 0; got {self}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "IDMConfig":
        return cls(**{**d, "frame_size": tuple(int(v) for v in d["frame_size"])})


def _block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1), nn.GroupNorm(8, c_out), nn.SiLU())


class IDM(nn.Module):
    """The network, its action spec and the chance action; `forward` gives one raw output per group (logits for
    one-hot and multi-hot groups, normalised values for continuous ones)."""

    def __init__(self, config: IDMConfig, spec: ActionSpec, chance: np.ndarray | None = None,
                 report: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.config, self.spec, self.report = config, spec, report or {}
        w = config.width
        channels = 3 * config.window + (3 * (config.window - 1) if config.difference else 0)
        layers, c = [_block(channels, w, config.stem_stride)], w
        for i in range(config.stages):
            layers.append(_block(c, w * 2 ** min(i, 2), 2))
            c = w * 2 ** min(i, 2)
        self.trunk = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                                   nn.Linear(16 * c, config.hidden), nn.SiLU())
        self.heads = nn.ModuleList(nn.Linear(config.hidden, g.dim) for g in spec.groups)
        # continuous values are regressed as (value - centre) / scale; set by the fit
        self.register_buffer("centre", torch.zeros(spec.dim))
        self.register_buffer("scale", torch.ones(spec.dim))
        self.register_buffer("chance", torch.as_tensor(np.zeros(spec.dim) if chance is None else chance,
                                                       dtype=torch.float32))

    def forward(self, windows: Tensor) -> list[Tensor]:
        """Raw outputs per group for frame windows uint8 [N, window, H, W, 3] (frames t - before .. t + 1 + after)."""
        x = windows.permute(0, 1, 4, 2, 3).float() / 127.5 - 1.0  # [N, K, 3, H, W]
        parts = [x.flatten(1, 2)] + ([(x[:, 1:] - x[:, :-1]).flatten(1, 2)] if self.config.difference else [])
        features = self.trunk(torch.cat(parts, dim=1))
        return [head(features) for head in self.heads]

    def to_actions(self, outputs: list[Tensor]) -> Tensor:
        """Raw outputs -> actions [N, A] in the dataset's format (one-hot, 0/1, raw values)."""
        parts = []
        for (g, cols), out in zip(self.spec.slices(), outputs):
            if g.kind == "one_hot":
                parts.append(nn.functional.one_hot(out.argmax(1), g.dim).float())
            elif g.kind == "multi_hot":
                parts.append((out > 0).float())
            else:
                parts.append(out * self.scale[cols] + self.centre[cols])
        return torch.cat(parts, dim=1)

    def _check_frames(self, frames: np.ndarray | Tensor) -> Tensor:
        if not isinstance(frames, Tensor):
            frames = torch.from_numpy(np.array(frames))  # a copy: memory-mapped frames are read-only
        h, w = self.config.frame_size
        k = self.config.window
        if frames.dtype != torch.uint8 or frames.ndim != 5 or frames.shape[-1] != 3 or frames.shape[1] < k:
            raise ValueError(f"frames are {frames.dtype} {list(frames.shape)}, expected uint8 [B, T >= {k}, H, W, 3]")
        if tuple(frames.shape[2:4]) != (h, w):
            raise ValueError(f"frames are {frames.shape[2]}x{frames.shape[3]}, but this IDM reads {h}x{w} frames "
                             "(train one on data of that size)")
        return frames

    @torch.no_grad()
    def predict(self, frames: np.ndarray | Tensor, batch: int = 256) -> np.ndarray:
        """Actions [B, T - window + 1, A] read from frames uint8 [B, T, H, W, 3]: row i is action t = before + i
        (`config.read(T)`), read from frames t - before .. t + 1 + after."""
        frames = self._check_frames(frames)
        b, k = len(frames), self.config.window
        windows = frames.unfold(1, k, 1).permute(0, 1, 5, 2, 3, 4).flatten(0, 1)  # [B * (T - k + 1), k, H, W, 3]
        device = self.centre.device
        out = [self.to_actions(self(windows[i:i + batch].to(device))).cpu() for i in range(0, len(windows), batch)]
        return torch.cat(out).reshape(b, -1, self.spec.dim).numpy()

    def score(self, frames: np.ndarray | Tensor, actions: np.ndarray | Tensor) -> dict[str, Any]:
        """Scores of the actions read from `frames` [B, T, H, W, 3] against `actions` [B, T, A] (the last frame's
        action, the first `before` and the last `after` more are not scored), with the chance predictor's beside them
        (`idm_scores.scores_with_chance`)."""
        actions = actions.float().cpu().numpy() if isinstance(actions, Tensor) else np.asarray(actions, np.float32)
        frames = self._check_frames(frames)
        if actions.shape != (*frames.shape[:2], self.spec.dim):
            raise ValueError(f"actions have shape {list(actions.shape)}, expected [B, T, A] = "
                             f"{[*frames.shape[:2], self.spec.dim]} for these frames and this IDM's action spec")
        pred = self.predict(frames).reshape(-1, self.spec.dim)
        true = actions[:, self.config.read(actions.shape[1])].reshape(-1, self.spec.dim)
        return scores_with_chance(self.spec, pred, true, self.chance.cpu().numpy())
