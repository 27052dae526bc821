"""Clips: the paper's frame layouts, augmentation identical across a clip, reproducible windows, sharding, and
evaluation windows that are the same in every process."""

from __future__ import annotations

import colorsys
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from vid2world.data.clips import ClipConfig, ClipDataset, ClipSampler, clip_loader, eval_windows, to_model_input
from vid2world.data.spec import ActionSpec, DatasetMeta
from vid2world.data.store import open_dataset
from vid2world.data.transforms import AugmentConfig, FrameLayout, adjust_hue, augment, rgb_to_hsv, translate
from vid2world.data.writer import DatasetWriter


@pytest.fixture()
def dataset(tmp_path):
    rng = np.random.default_rng(0)
    meta = DatasetMeta("t", 8.0, (12, 16), ActionSpec.continuous(["x", "y"]))
    with DatasetWriter(tmp_path / "ds", meta, shard_frames=40) as w:
        for i, length in enumerate([30, 5, 24, 18, 40, 9, 21, 33]):
            frames = rng.integers(0, 256, (length, 12, 16, 3), dtype=np.uint8)
            frames[:, 0, 0, 0] = np.arange(length)  # the stored row, readable from any frame
            w.add(frames, rng.normal(size=(length, 2)), name=f"ep{i}", split="test" if i == 7 else "train")
    return open_dataset(tmp_path / "ds")


def solid(h: int, w: int, t: int = 2) -> torch.Tensor:
    return torch.ones(t, 3, h, w) * 0.5


def test_layout_rt1_shorter_side_then_pad():
    out = FrameLayout((320, 512), "shorter_side_pad").apply(solid(256, 320))  # -> 320 x 400, pad 56 each side
    assert out.shape == (2, 3, 320, 512)
    assert out[..., :56].abs().max() == 0 and out[..., 456:].abs().max() == 0
    assert torch.allclose(out[..., 56:456], torch.tensor(0.5), atol=1e-6)


def test_layout_csgo_resize_then_pad():
    out = FrameLayout((320, 512), "resize_pad", inner=(275, 512)).apply(solid(150, 280))
    top = (320 - 275) // 2
    assert out.shape == (2, 3, 320, 512)
    assert out[..., :top, :].abs().max() == 0 and out[..., top + 275:, :].abs().max() == 0
    assert torch.allclose(out[..., top: top + 275, :], torch.tensor(0.5), atol=1e-6)


def test_layout_recon_square_crop_then_pad():
    video = solid(240, 320)
    video[..., :40] = 1.0  # outside the centre square: must be cropped away
    out = FrameLayout((320, 512), "square_crop_pad").apply(video)
    assert out.shape == (2, 3, 320, 512)
    assert out[..., :96].abs().max() == 0 and out[..., 416:].abs().max() == 0
    assert torch.allclose(out[..., 96:416], torch.tensor(0.5), atol=1e-6)


def test_hue_matches_colorsys():
    x = torch.rand(1, 3, 4, 5, generator=torch.Generator().manual_seed(0))
    hsv, shifted = rgb_to_hsv(x), adjust_hue(x, 0.13)
    for i in range(4):
        rgb = x[0, :, i, 1].tolist()
        h, s, v = colorsys.rgb_to_hsv(*rgb)
        assert hsv[0, :, i, 1].tolist() == pytest.approx([h, s, v], abs=1e-5)
        assert shifted[0, :, i, 1].tolist() == pytest.approx(colorsys.hsv_to_rgb((h + 0.13) % 1, s, v), abs=1e-5)


def test_augmentation_is_identical_for_every_frame_of_a_clip():
    frame = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    clip = frame.repeat(6, 1, 1, 1)
    out = augment(clip, AugmentConfig(), np.random.default_rng(3))
    assert not torch.allclose(out[0], frame[0], atol=1e-3), "the augmentation must do something"
    assert torch.equal(out, out[:1].expand_as(out)), "every frame must get the same jitter and shift"
    zero = AugmentConfig(brightness=0, contrast=0, saturation=0, hue=0, shift=0)
    assert torch.allclose(augment(clip, zero, np.random.default_rng(0)), clip, atol=1e-6)


def test_translate_moves_content_by_the_offset():
    x = torch.rand(1, 3, 10, 10)
    assert torch.equal(translate(x, 2, 2, 2), x)
    moved = translate(x, 2, 2, 4)  # crop 2 px further right: content moves 2 px left
    assert torch.equal(moved[..., :, :8], x[..., :, 2:])


def test_training_clips_are_reproducible_and_follow_the_config(dataset):
    cfg = ClipConfig(length=5, frame_skip=3)
    clips = ClipDataset(dataset, cfg, seed=7)
    assert clips.skipped_short == 2 and len(clips) == 5  # lengths 5 and 9 < span 13; ep7 is 'test'
    assert "2 episodes skipped" in clips.summary
    first, again = clips[3], ClipDataset(dataset, cfg, seed=7)[3]
    assert torch.equal(first["frames"], again["frames"]) and first["start"] == again["start"]
    ep = dataset.episode(first["episode"])
    rows = first["frames"][:, 0, 0, 0].tolist()
    assert rows == list(range(first["start"], first["start"] + 13, 3))
    np.testing.assert_array_equal(first["frames"].numpy(), ep.frames[first["start"]: first["start"] + 13: 3])
    np.testing.assert_array_equal(first["actions"].numpy(), ep.actions[first["start"]: first["start"] + 13: 3])
    starts = {clips[3 + 5 * epoch]["start"] for epoch in range(6)}  # the same episode in six epochs
    assert len(starts) > 1, "a new epoch must draw new windows"


def test_sampler_shards_ranks_disjointly():
    keys = [list(ClipSampler(10, rank, 3, seed=1, epoch=2)) for rank in range(3)]
    assert all(len(k) == 4 for k in keys)
    flat = [k - 20 for ks in keys for k in ks]
    assert set(flat) == set(range(10)) and len(flat) == 12  # padded to a multiple of the world size
    assert keys[0] != list(ClipSampler(10, 0, 3, seed=1, epoch=3)), "epochs reshuffle"
    with pytest.raises(ValueError, match="rank 3 outside world size 3"):
        ClipSampler(10, 3, 3)


def test_workers_give_the_same_batches(dataset):
    clips = ClipDataset(dataset, ClipConfig(length=6, augment=AugmentConfig()), seed=3)
    serial = [b["frames"] for b in clip_loader(clips, 2, workers=0, seed=3)]
    parallel = [b["frames"] for b in clip_loader(clips, 2, workers=2, seed=3)]
    assert len(serial) == 3 and all(torch.equal(a, b) for a, b in zip(serial, parallel))
    batch = to_model_input(serial[0])
    assert batch.shape == (2, 3, 6, 12, 16) and batch.min() >= -1 and batch.max() <= 1


def test_eval_windows_are_stable(dataset):
    cfg = ClipConfig(length=8, split="train")
    windows = eval_windows(dataset, cfg, count=4, seed=11)
    assert len(windows) == 4 and windows == eval_windows(dataset, cfg, count=4, seed=11)
    assert windows != eval_windows(dataset, cfg, count=4, seed=12)
    for w in windows:
        assert 0 <= w.start <= dataset.lengths[w.episode] - 8
    clips = ClipDataset(dataset, ClipConfig(length=8, augment=AugmentConfig()), windows=windows)
    assert clips[0]["start"] == windows[0].start
    np.testing.assert_array_equal(clips[0]["frames"].numpy(),  # evaluation clips are never augmented
                                  dataset.episode(windows[0].episode).frames[windows[0].start: windows[0].start + 8])


SCRIPT = """
import json, sys
from vid2world.data.clips import ClipConfig, eval_windows
from vid2world.data.store import open_dataset
ws = eval_windows(open_dataset(sys.argv[1]), ClipConfig(length=4, split=None), count=5, seed=3)
print(json.dumps([[w.name, w.start] for w in ws]))
"""


def test_eval_windows_identical_across_processes(dataset):
    outputs = []
    for hash_seed in ("1", "2"):  # different salts for Python's hash(): must not matter
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        run = subprocess.run([sys.executable, "-c", SCRIPT, str(dataset.root)], capture_output=True, text=True,
                             env=env, check=True)
        outputs.append(json.loads(run.stdout))
    assert len(outputs[0]) == 5 and outputs[0] == outputs[1]


def test_augmentation_with_a_layout_keeps_padding_black_and_frames_identical():
    frame = torch.rand(1, 3, 20, 28, generator=torch.Generator().manual_seed(5))
    layout = FrameLayout((32, 48), "resize_pad", inner=(24, 48))
    out = augment(frame.repeat(4, 1, 1, 1), AugmentConfig(shift=0), np.random.default_rng(1), layout)
    assert out.shape == (4, 3, 32, 48) and torch.equal(out, out[:1].expand_as(out))
    assert out[..., :4, :].abs().max() == 0 and out[..., 28:, :].abs().max() == 0, "padding stays black"
    assert not torch.allclose(out, layout.apply(frame.repeat(4, 1, 1, 1)), atol=1e-3), "jitter took effect"
