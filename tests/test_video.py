"""`vid2world.write_video`: the public way to save rollouts."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import vid2world as v2w


def test_write_video_is_public_and_writes_what_it_was_given(tmp_path):
    assert "write_video" in v2w.__all__ and v2w.write_video.__doc__
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    frames = np.broadcast_to(colours[:, None, None, :], (3, 6, 8, 3)).copy()  # [T, H, W, 3]
    path = v2w.write_video(frames, tmp_path / "sub" / "rollout.gif", fps=5)
    assert path == tmp_path / "sub" / "rollout.gif"
    with Image.open(path) as gif:
        assert gif.n_frames == 3 and gif.size == (8, 6)
        for t in range(3):
            gif.seek(t)
            np.testing.assert_array_equal(np.asarray(gif.convert("RGB")), frames[t])
    assert sorted(p.name for p in path.parent.iterdir()) == ["rollout.gif"]  # no temporary left beside it
    with pytest.raises(ValueError, match=r"frames: expected uint8 \[T, H, W, 3\], got float32 \(3, 6, 8, 3\)"):
        v2w.write_video(frames.astype(np.float32), tmp_path / "bad.gif")
