"""How far the view moves between frames: the horizontal shift of frame b against frame a by phase correlation.

A first-person turn moves the whole view sideways, so the shift between consecutive frames says whether a world
model turns when the game turns, in which direction and by how much, without any network.
"""

from __future__ import annotations

import numpy as np


def _gray(frame: np.ndarray) -> np.ndarray:
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"frame: expected [H, W, 3], got shape {frame.shape}")
    g = frame.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    g -= g.mean()
    return g * np.hanning(g.shape[0])[:, None] * np.hanning(g.shape[1])[None, :]


def horizontal_shift(a: np.ndarray, b: np.ndarray) -> float:
    """Pixels the content of frame `b` [H, W, 3] lies to the right of frame `a`'s (negative: to the left), from the
    peak of the phase correlation, refined to sub-pixel by a parabola through the peak's row. 0 for flat frames."""
    fa, fb = np.fft.fft2(_gray(a)), np.fft.fft2(_gray(b))
    cross = fb * np.conj(fa)
    magnitude = np.abs(cross)
    if magnitude.max() == 0:
        return 0.0
    surface = np.fft.ifft2(cross / np.maximum(magnitude, 1e-12 * magnitude.max())).real
    y, x = np.unravel_index(np.argmax(surface), surface.shape)
    w = surface.shape[1]
    left, centre, right = surface[y, (x - 1) % w], surface[y, x], surface[y, (x + 1) % w]
    denom = left - 2 * centre + right
    offset = 0.0 if denom == 0 else float(np.clip(0.5 * (left - right) / denom, -0.5, 0.5))
    dx = x + offset
    return float(dx - w if dx > w / 2 else dx)


def view_shifts(frames: np.ndarray) -> np.ndarray:
    """Horizontal shifts between consecutive frames of uint8 [T, H, W, 3]: [T - 1] pixels."""
    return np.array([horizontal_shift(frames[t], frames[t + 1]) for t in range(len(frames) - 1)])
