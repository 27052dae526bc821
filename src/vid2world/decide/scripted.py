"""Scripted players that read the frame, so they act the same way in the real game and in a world model.

`BoxingChaser`: Atari Boxing's white boxer (the player) walks to the black one's side, a fist level with its
head, and punches when in reach. Positions are the centroids of near-white and near-black pixels inside the ring
(the scores and the screen's black left edge excluded); when a frame shows no boxer (a blurred imagined frame),
it acts at random.

`PushTPusher`: Push-T's scripted pusher (`push_towards`, the recorder's player) driven by the disc and the block
as the frame shows them (the centroids of the disc's blue and the block's slate-grey pixels) instead of by the
simulator's state; at random where a frame shows neither.
"""

from __future__ import annotations

import numpy as np

from ..data.sim.policies import random_action
from ..data.spec import ActionSpec

# the ring's box in a frame, as fractions of its height and width (Boxing's 210x160 screen resized)
RING_ROWS, RING_COLS = (0.13, 0.92), (0.06, 1.0)
# Seen from above, a boxer's fists are above and below its head: the chaser stands AIM below the other's centre
# (fractions of the frame) and REACH beside it. Chosen on 16 real episodes of 100 steps from `policy-eval`'s starts
# (seeds 100-115): +6.4 points on average, 15 of 16 positive (random play -0.6, no-op -0.9); aiming above instead
# (AIM -0.06) scores -0.3, standing 0.13 away +1.0.
REACH, AIM = 0.11, 0.06


def boxer_positions(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centroids (row, col) in pixels of the white and the black boxer in each frame [B, H, W, 3]; NaN where a
    boxer shows fewer than 4 pixels."""
    b, h, w, _ = frames.shape
    r0, r1 = int(RING_ROWS[0] * h), int(RING_ROWS[1] * h)
    c0, c1 = int(RING_COLS[0] * w), int(RING_COLS[1] * w)
    ring = frames[:, r0:r1, c0:c1].astype(np.int16)
    rows, cols = np.mgrid[r0:r1, c0:c1]
    return centroids((ring > 170).all(-1), rows, cols), centroids((ring < 60).all(-1), rows, cols)


def centroids(mask: np.ndarray, rows: np.ndarray, cols: np.ndarray, least: int = 4) -> np.ndarray:
    """[B, 2] (row, col) centroids of each frame's `mask` [B, h, w] at pixel coordinates `rows`, `cols` [h, w]; NaN
    where fewer than `least` pixels are set."""
    count = mask.sum((1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = np.stack([(mask * rows).sum((1, 2)) / count, (mask * cols).sum((1, 2)) / count], -1)
    centre[count < least] = np.nan
    return centre


def pusht_positions(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The disc's and the block's centroids (x, y) in workspace pixels in each Push-T frame [B, H, W, 3] (the
    frame draws the 512-pixel workspace, x across, y down); NaN where one shows fewer than 2 pixels."""
    from ..data.sim.pusht import WORKSPACE  # the pusht extra (gym-pusht): imported where Push-T is played

    b, h, w, _ = frames.shape
    f = frames.astype(np.int16)
    r, g, bl = f[..., 0], f[..., 1], f[..., 2]
    rows, cols = np.mgrid[0:h, 0:w] + 0.5
    disc = (bl >= 200) & (r < 130) & (g < 170)  # royal blue
    block = (bl > r + 20) & (bl < 200) & (r > 90) & (g < 200)  # slate grey; not the green target, not the disc
    return tuple(centroids(m, rows, cols, least=2)[:, ::-1] * (WORKSPACE / np.array([w, h])) for m in (disc, block))


class BoxingChaser:
    """Walk level with the opponent at punching distance, punch when there (see the module doc)."""

    def __init__(self, spec: ActionSpec, name: str = "chase") -> None:
        self.spec, self.name = spec, name
        self.labels = [label for group in spec.groups for label in group.labels]
        for needed in ("UP", "DOWN", "LEFT", "RIGHT", "FIRE", "UPRIGHTFIRE"):
            if needed not in self.labels:
                raise ValueError(f"policy {name}: needs Atari Boxing's actions (no {needed!r} in {self.labels})")

    def reset(self, rows: int, seed: int) -> None:
        self.rngs = [np.random.default_rng([seed, r]) for r in range(rows)]

    def act(self, frames: np.ndarray) -> np.ndarray:
        me, other = boxer_positions(frames)
        h, w = frames.shape[1:3]
        actions = []
        for r, rng in enumerate(self.rngs[:len(frames)]):
            if np.isnan(me[r]).any() or np.isnan(other[r]).any():
                actions.append(random_action(self.spec, rng))
                continue
            dy, dx = other[r] - me[r]
            dy -= AIM * h  # aim a fist, not the head, at the other's head
            target = dx - np.sign(dx or 1.0) * REACH * w  # where to stand: beside it, on my side
            move = ("DOWN" if dy > h / 64 else "UP" if dy < -h / 64 else "") + \
                   ("RIGHT" if target > 2 * w / 64 else "LEFT" if target < -2 * w / 64 else "")
            in_reach = abs(dy) < 3 * h / 64 and abs(dx) < 1.5 * REACH * w
            name = move + "FIRE" if in_reach and move + "FIRE" in self.labels else move or "FIRE"
            vector = np.zeros(self.spec.dim, np.float32)
            vector[self.labels.index(name)] = 1.0
            actions.append(vector)
        return np.stack(actions)


class PushTPusher:
    """Push-T's scripted pusher acting on what the frame shows (see the module doc)."""

    def __init__(self, spec: ActionSpec, name: str = "push") -> None:
        if spec.dim != 2 or spec.groups[0].kind != "continuous":
            raise ValueError(f"policy {name}: needs Push-T's actions (the disc's target x, y), got {spec.dim} "
                             f"{spec.groups[0].kind} values")
        self.spec, self.name = spec, name

    def reset(self, rows: int, seed: int) -> None:
        self.rngs = [np.random.default_rng([seed, r]) for r in range(rows)]

    def act(self, frames: np.ndarray) -> np.ndarray:
        from ..data.sim.pusht import GOAL, push_towards

        disc, block = pusht_positions(frames)
        return np.stack([random_action(self.spec, rng) if np.isnan(disc[r]).any() or np.isnan(block[r]).any()
                         else push_towards(disc[r], block[r], GOAL[:2], rng)
                         for r, rng in enumerate(self.rngs[:len(frames)])]).astype(np.float32)
