"""The pure parts of evaluation with known answers: protocols and their windows, baselines, random actions,
Delta-N, the metric registry's skips, scoring preparation and the aggregation over windows and seeds."""

from __future__ import annotations

import numpy as np
import pytest

from vid2world.data import ActionGroup, ActionSpec, DatasetMeta, open_dataset
from vid2world.data.transforms import FrameLayout
from vid2world.data.writer import DatasetWriter
from vid2world.eval.baselines import (action_bounds, copy_last_frame, delta_n, derangement, held_actions,
                                      random_actions)
from vid2world.eval.predict import first_difference
from vid2world.eval.protocols import PROTOCOLS, get_protocol, protocol_windows, with_split
from vid2world.eval.scorers import load_metrics
from vid2world.eval.score import Scoring
from vid2world.eval.scorers import LoadedMetric, PerFrame, ScoreContext, scoring_frames
from vid2world.eval.sources import Source
from vid2world.metrics import WeightsDir

MIXED = ActionSpec((ActionGroup("move", "one_hot", ("left", "right", "stay")),
                    ActionGroup("buttons", "multi_hot", ("fire", "jump")),
                    ActionGroup("turn", "continuous", ("yaw",), (-2.0,), (3.0,))))


def test_protocols_follow_method_10_2():
    rt1, csgo, recon, ar = (PROTOCOLS[n] for n in ("rt1", "csgo", "recon", "recon-ar"))
    assert (rt1.context, rt1.length, rt1.frames) == (1, 16, tuple(range(16)))  # the given first frame is scored
    assert (csgo.context, csgo.length, csgo.frames, csgo.score_size) == (4, 16, tuple(range(4, 16)), (150, 280))
    assert (recon.context, recon.length, recon.frames, recon.video_frames) == (4, 20, (19,), tuple(range(4, 20)))
    assert (ar.frames, ar.seeds, ar.lpips_net) == ((7, 11, 19), 5, "alex")  # frames 8, 12, 20 counted from 1
    assert (rt1.windows, csgo.windows, recon.windows, ar.windows) == (1024, 500, 500, 150)
    generic = get_protocol("generic", context=3, horizon=5, stride=2, windows=None)
    assert generic.frames == (3, 4, 5, 6, 7) and generic.stride == 2 and generic.windows is None
    with pytest.raises(ValueError, match="--protocol generic needs --horizon"):
        get_protocol("generic", context=3)
    with pytest.raises(ValueError, match="unknown protocol 'nwm'"):
        get_protocol("nwm")
    with pytest.raises(ValueError, match=r"frames must be frame indices in 0..3"):
        get_protocol("generic", context=2, horizon=2, frames=(4,))


def write_dataset(root, splits, lengths):
    spec = ActionSpec.continuous(("dx",))
    with DatasetWriter(root, DatasetMeta("d", 4.0, (4, 4), spec)) as w:
        for i, (split, n) in enumerate(zip(splits, lengths)):
            w.add(np.full((n, 4, 4, 3), i, np.uint8), np.zeros((n, 1), np.float32), f"e{i}", split)
    return open_dataset(root)


def test_windows_are_deterministic_from_the_held_out_split(tmp_path):
    dataset = write_dataset(tmp_path / "d", ["val", "train", "val", "val", "val", "val"], [12, 30, 5, 20, 12, 9])
    protocol = get_protocol("generic", context=2, horizon=6, windows=3)
    windows, note = protocol_windows(dataset, protocol)
    assert note is None and windows == protocol_windows(dataset, protocol)[0]
    assert len(windows) == 3 and {w.name for w in windows} <= {"e0", "e3", "e4", "e5"}  # val, >= 8 frames
    for w in windows:
        assert 0 <= w.start <= dataset.lengths[w.episode] - 8
    only_train = write_dataset(tmp_path / "t", ["train", "train"], [9, 9])
    windows, note = protocol_windows(only_train, protocol)
    assert len(windows) == 2 and "no episode in split 'val'" in note and "training episodes included" in note


def test_split_flag_picks_the_windows_split(tmp_path):
    dataset = write_dataset(tmp_path / "d", ["train", "train", "test"], [9, 9, 9])
    protocol = get_protocol("generic", context=2, horizon=6, windows=3)
    assert with_split(protocol, None, dataset) is protocol
    windows, note = protocol_windows(dataset, with_split(protocol, "all", dataset))  # every episode, no note
    assert note is None and len(windows) == 3 and with_split(protocol, "all", dataset).split is None
    windows, note = protocol_windows(dataset, with_split(protocol, "test", dataset))
    assert note is None and [w.name for w in windows] == ["e2"]
    with pytest.raises(ValueError, match=r"--split val: .* no episode in split 'val' \(its splits: test, train; or "
                                         r"--split all\)"):
        with_split(protocol, "val", dataset)


def test_copy_last_frame():
    context = np.arange(2 * 3 * 1 * 1 * 3, dtype=np.uint8).reshape(2, 3, 1, 1, 3)
    out = copy_last_frame(context, 4)
    assert out.shape == (2, 4, 1, 1, 3) and (out == context[:, 2:3]).all()


@pytest.mark.parametrize("n", [2, 3, 7, 50])
def test_derangement_has_no_fixed_point_and_is_seeded(n):
    perm = derangement(n, seed=4)
    assert sorted(perm.tolist()) == list(range(n)) and (perm != np.arange(n)).all()
    assert np.array_equal(perm, derangement(n, seed=4))
    if n > 3:
        assert not np.array_equal(perm, derangement(n, seed=5))
    with pytest.raises(ValueError, match="at least 2 windows"):
        derangement(1, 0)


def test_random_actions_are_valid_and_seeded():
    observed = np.zeros((4, MIXED.dim), np.float32)
    bounds = action_bounds(MIXED, observed)
    a = random_actions(MIXED, 500, np.random.default_rng(1), bounds)
    MIXED.validate(a, "random")  # one label per one-hot row, 0/1 buttons
    yaw = a[:, 5]
    assert -2 <= yaw.min() < -1.5 and 2.5 < yaw.max() <= 3  # uniform over the spec's range
    assert len(np.unique(a[:, :3].argmax(1))) == 3 and 0.4 < a[:, 3].mean() < 0.6
    assert np.array_equal(a, random_actions(MIXED, 500, np.random.default_rng(1), bounds))
    no_range = ActionSpec.continuous(("x",))
    low, high = action_bounds(no_range, np.array([[-0.5], [0.25]], np.float32))
    assert (low[0], high[0]) == (-0.5, 0.25)  # no range in the spec: the range the data spans


def test_held_actions_are_valid_single_choices():
    held = held_actions(MIXED, action_bounds(MIXED, np.zeros((1, MIXED.dim))), limit=10)
    names = [n for n, _ in held]
    assert names == ["move.left", "move.right", "move.stay", "buttons.fire", "buttons.jump", "turn.yaw=-2",
                     "turn.yaw=+3"]
    MIXED.validate(np.stack([a for _, a in held]), "held")


def test_delta_n_known_answers():
    out, notes = delta_n({"psnr": 22.0, "lpips": 0.3, "fvd": 5.0}, {"psnr": 20.0, "lpips": 0.4, "fvd": 0.0})
    assert out == pytest.approx({"psnr": 10.0, "lpips": -25.0}) and "delta_n[fvd]: undefined" in notes[0]


def test_first_difference_names_the_setting():
    found = first_difference({"a": 1, "b": {"c": [1, 2]}}, {"a": 1, "b": {"c": [1, 3]}})
    assert found == "b.c: [1, 2] before, [1, 3] now"
    assert first_difference({"a": 1}, {"a": 1}) is None


def test_missing_weights_skip_the_network_metrics_with_the_file_named():
    ctx = ScoreContext(WeightsDir(None), "cpu", PROTOCOLS["recon"], (8, 8))
    loaded, infos, notes = load_metrics(ctx, windows=1)
    skipped = {m.name: m.skipped for m in infos if m.skipped}
    assert [m.entry.name for m in loaded] == ["psnr", "mse"]
    assert "alexnet-owt-7be5be79.pth not found" in skipped["lpips"]  # RECON scores LPIPS with AlexNet
    assert "smaller than its 11x11 window" in skipped["ssim"]
    assert "at least 2 windows" in skipped["fid"] and "at least 2 windows" in skipped["fvd"]
    ctx = ScoreContext(WeightsDir(None), "cpu", PROTOCOLS["csgo"], (16, 16))
    skipped = {m.name: m.skipped for m in load_metrics(ctx, windows=2)[1] if m.skipped}
    assert set(skipped) == {"lpips", "fid", "fvd"} and "i3d_torchscript.pt not found" in skipped["fvd"]
    assert "vgg16-397923af.pth" in skipped["lpips"] and "pt_inception-2015-12-05-6726825d.pth" in skipped["fid"]


def test_csgo_frames_are_cropped_to_the_picture_then_scored_at_150x280():
    layout = FrameLayout((320, 512), "resize_pad", (275, 512))
    clips = np.zeros((1, 2, 320, 512, 3), np.uint8)
    clips[:, :, 22:297] = 200  # the picture; black padding above and below
    out = scoring_frames(PROTOCOLS["csgo"], layout)(clips)
    assert out.shape == (1, 2, 150, 280, 3) and (out == 200).all()
    same = np.ones((1, 2, 4, 4, 3), np.uint8)
    assert scoring_frames(PROTOCOLS["rt1"], None)(same) is same


def test_scores_average_frames_then_windows_then_seeds():
    # a per-frame "metric" that is the prediction's mean pixel value: known answers for every aggregation step
    brightness = PerFrame("b", True, "", lambda ctx: None)
    metric = LoadedMetric(brightness, lambda pred, truth: pred.mean(axis=(2, 3, 4)))
    protocol = get_protocol("generic", context=1, horizon=2)
    scoring = Scoring(protocol, [metric], lambda clips: clips)
    source = Source("model", "model", "model", None, True)
    for seed, level in enumerate((10, 30, 20)):
        for batch in range(2):  # two batches of two windows
            clip = np.zeros((2, 3, 2, 2, 3), np.uint8)
            clip[:, 1], clip[:, 2] = level, level + 4 * batch  # horizon 1: level; horizon 2: level + 0 or 4
            truth = scoring.add_truth(clip, None)
            scoring.add("model", seed, truth, clip, None)
    scores = scoring.source_scores(source, seeds=3)
    assert scores.per_horizon["b"] == pytest.approx([20.0, 22.0])  # mean over seeds of each horizon step
    assert scores.means["b"] == pytest.approx(21.0)
    assert scores.std["b"] == pytest.approx(np.std([11.0, 31.0, 21.0], ddof=1))


def test_action_accuracy_known_answers(tmp_path):
    import torch

    from vid2world.eval.idm_hook import action_accuracy

    spec = ActionSpec.one_hot(("a", "b", "c"))
    eye = np.eye(3, dtype=np.float32)
    true = eye[[0, 0, 1, 2]]
    reads = {None: true, "model": eye[[0, 1, 1, 0]], "copy": eye[[1, 1, 1, 1]]}

    class FakeScoring:
        def action_reads(self, name, seed=0):
            return reads[name], true

    class FakeIDM:
        chance = torch.tensor([1.0, 0.0, 0.0])  # the majority label: a

    FakeIDM.spec = spec
    sources = [Source("model", "model", "model", None, True), Source("copy", "baseline", "copy", None, False)]
    out = action_accuracy(FakeIDM(), "idm-dir", FakeScoring(), sources, tmp_path)
    assert (out["real"], out["model"], out["chance"]) == (1.0, 0.5, 0.5)
    assert out["sources"] == {"real frames": 1.0, "model": 0.5, "copy": 0.25}
    assert (tmp_path / out["details"]).is_file()
