"""Writing frames to mp4 (through PyAV) or GIF (through Pillow), atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .atomic import atomic_file


def upscale(frames: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling of uint8 frames [T, H, W, 3] (small worlds are unreadable at native size)."""
    return frames.repeat(factor, axis=1).repeat(factor, axis=2) if factor > 1 else frames


def write_video(frames: np.ndarray, path: str | Path, fps: int = 4) -> Path:
    """Write uint8 frames [T, H, W, 3] (one rollout, e.g. `frames[0]` of `WorldModel.rollout`) as a video.

    `path` ends in .mp4 (H.264 through PyAV; odd heights and widths lose their last row or column, as yuv420p
    needs even sizes) or .gif (Pillow, looping). `fps` is the playback rate. The file is written to a temporary
    name beside `path`, then renamed, so a reader never sees half a video; missing parent directories are made.
    Returns `path`. Raises ValueError for frames of another dtype or shape, or another suffix.
    """
    path = Path(path)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames: expected uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
    if path.suffix not in (".gif", ".mp4"):
        raise ValueError(f"{path}: unsupported video suffix {path.suffix!r} (use .mp4 or .gif)")
    with atomic_file(path) as tmp:
        if path.suffix == ".gif":
            images = [Image.fromarray(f) for f in frames]
            images[0].save(tmp, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
        else:
            _write_mp4(frames, str(tmp), fps)
    return path


def _write_mp4(frames: np.ndarray, path: str, fps: int) -> None:
    import av

    h, w = frames.shape[1:3]
    even = frames[:, : h - h % 2, : w - w % 2]  # yuv420p needs even sizes
    with av.open(path, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = even.shape[2], even.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18"}
        for frame in even:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
