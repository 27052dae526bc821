"""The README's Python example runs as written, in a fresh directory, so it cannot rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"

# Beyond running, what the example promises: the shapes its comments give, and the video it writes.
CHECKS = """
b, t0, h, w, _ = context_frames.shape
assert frames.shape == (b, actions.shape[1] - (t0 - 1), h, w, 3) and frames.dtype == np.uint8, frames.shape
assert next_frame.shape == (b, h, w, 3) and next_frame.dtype == np.uint8, next_frame.shape
assert os.path.getsize("rollout.mp4") > 0
"""


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", markdown, flags=re.M | re.S)


def test_readme_python_example_runs_as_written(tmp_path):
    blocks = python_blocks(README.read_text())
    assert blocks, f"{README}: no ```python block"
    script = tmp_path / "readme_example.py"
    script.write_text("\n".join(blocks) + "\nimport os\n" + CHECKS)
    env = dict(os.environ, OMP_NUM_THREADS="1")  # a tiny model: more threads only contend on a shared machine
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "causalize: transfer=extrapolative" in proc.stdout  # report.summary() printed
