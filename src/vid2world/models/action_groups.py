"""Actions per latent frame of a temporally compressed video latent (Wan's VAE: k = 4 video frames per latent
frame).

A video of N = 1 + k (T - 1) frames encodes to T latent frames: latent frame 0 is video frame 0 alone, latent
frame j >= 1 covers video frames k(j-1)+1 .. kj. Action a_t is taken after video frame t, so video frame t
follows a_{t-1}, and latent frame j >= 1 follows the group a_{k(j-1)} .. a_{kj-1} (k actions, concatenated in
time order: k*A values); latent frame 0 follows none (zeros). With k = 1 this is the one-frame shift of
`models.embeddings.followed_actions`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .config import ActionSpace


def latent_frame_count(video_frames: int, k: int) -> int:
    """T for N = 1 + k (T - 1) video frames; any other N is refused."""
    _check_compression(k)
    if video_frames < 1 or (video_frames - 1) % k:
        raise ValueError(f"video frames: expected 1 + {k} x (latent frames - 1) "
                         f"(1, {1 + k}, {1 + 2 * k}, ...), got {video_frames}")
    return 1 + (video_frames - 1) // k


def video_frame_count(latent_frames: int, k: int) -> int:
    """N = 1 + k (T - 1) video frames for T latent frames."""
    _check_compression(k)
    if latent_frames < 1:
        raise ValueError(f"latent frames: expected >= 1, got {latent_frames}")
    return 1 + k * (latent_frames - 1)


def group_actions(video_actions: Tensor, k: int) -> Tensor:
    """Video actions [B, N-1, A] (a_t after video frame t) -> the group each latent frame follows [B, T, k*A]:
    zeros for latent frame 0, a_{k(j-1)} .. a_{kj-1} for latent frame j."""
    if video_actions.ndim != 3:
        raise ValueError(f"video_actions: expected [B, N-1, A], got shape {tuple(video_actions.shape)}")
    b, n_actions, a = video_actions.shape
    try:
        t = latent_frame_count(n_actions + 1, k)
    except ValueError as error:
        raise ValueError(f"video_actions: {n_actions} actions (one per video frame but the last) for "
                         f"{n_actions + 1} video frames; {error}") from None
    groups = video_actions.reshape(b, t - 1, k * a)
    return torch.cat([groups.new_zeros(b, 1, k * a), groups], dim=1)


def ungroup_actions(groups: Tensor, k: int) -> Tensor:
    """The inverse of `group_actions`: per-latent-frame groups [B, T, k*A] -> video actions [B, 1 + k(T-1) -
    1, A] (latent frame 0's group, which follows no action, is dropped)."""
    _check_compression(k)
    if groups.ndim != 3 or groups.shape[2] % k or groups.shape[1] < 1:
        raise ValueError(f"groups: expected [B, T, k*A] with k={k} (a width divisible by {k}), "
                         f"got shape {tuple(groups.shape)}")
    b, t, width = groups.shape
    return groups[:, 1:].reshape(b, (t - 1) * k, width // k)


def grouped_action_space(space: ActionSpace, k: int) -> ActionSpace:
    """The action space of one latent frame's group: k video-frame actions side by side, names suffixed
    @0..@k-1."""
    _check_compression(k)
    names = tuple(f"{name}@{i}" for i in range(k) for name in space.names)
    return ActionSpace(space.kind, space.dim * k, names, space.low * k, space.high * k)


def _check_compression(k: int) -> None:
    if int(k) != k or k < 1:
        raise ValueError(f"temporal compression k: expected an integer >= 1, got {k}")
