"""`vid2world evaluate` end to end on a tiny pixel world model and a small square-world dataset: every source
scored, predictions reused by a rerun, a killed run resumed without redoing finished batches."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest
import torch

import vid2world as v2w
from vid2world.cli import main
from vid2world.data import ActionSpec, DatasetMeta, SquareWorld, open_dataset
from vid2world.data.writer import DatasetWriter
from vid2world.eval.protocols import get_protocol, protocol_windows
from vid2world.eval.results import EvaluationResults
from vid2world.eval.run import EvaluateConfig, evaluate
from vid2world.eval.sources import RANDOM
from vid2world.metrics import mse, psnr
from vid2world.testing import randomize_weights, write_i3d_standin, write_lpips_backbone

from .chromium import open_report


SOURCES = ["model", "copy last context frame", "model, another episode's actions", "model, random actions"]


def make_inputs(root: Path, action_dim: int = 2) -> tuple[Path, Path]:
    """A 16x16 square-world dataset (6 val episodes, 2 train, 9 frames) and a random pixel model with a concat
    anchor, window 5 (so a 2 + 4 rollout slides)."""
    world = SquareWorld(size=16, square=4, speed=2)
    labels = ("dx", "dy", "dz")[:action_dim]
    spec = ActionSpec.continuous(labels, (-1,) * action_dim, (1,) * action_dim)
    rng = np.random.default_rng(0)
    with DatasetWriter(root / "data", DatasetMeta("square", 4.0, (16, 16), spec)) as writer:
        for i in range(8):
            frames, actions = world.episode(9, rng)
            actions = np.concatenate([actions, actions[:, :1]], axis=1)[:, :action_dim]
            writer.add(frames, actions, f"ep{i}", "val" if i < 6 else "train")
    cfg = v2w.UNetConfig.preset("pixel-tiny", in_channels=6, temporal_length=8,
                                action_space=v2w.ActionSpace.continuous(2), causal=v2w.CausalConfig("frame"))
    model = v2w.WorldModel(randomize_weights(v2w.VideoUNet(cfg), 0).eval(),
                           sampler=v2w.SamplerConfig(steps=2, window=5, guidance=v2w.GuidanceConfig(scale=1.0)))
    model.save_pretrained(root / "model")
    return root / "model", root / "data"


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return make_inputs(tmp_path_factory.mktemp("inputs"))


def config(inputs, out, **changes) -> EvaluateConfig:
    model, data = inputs
    cfg = EvaluateConfig(str(model), str(data), "generic", str(out), windows=4, batch=2, context=2, horizon=4,
                         videos=1)
    return replace(cfg, **changes)


@pytest.fixture(scope="module")
def first(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("first") / "eval"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("VID2WORLD_WEIGHTS", raising=False)  # no weights: the network metrics are skipped
        return evaluate(config(inputs, out), progress=False), out


def frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_results_hold_every_source_metric_and_video(first):
    results, out = first
    assert EvaluationResults.load(out) == results
    assert [s.name for s in results.sources] == SOURCES and results.windows == 4
    info = {m.name: m for m in results.metrics}
    for name in ("psnr", "ssim", "mse"):
        assert info[name].skipped is None and "per frame" in info[name].convention
        for s in results.sources:
            assert np.isfinite(s.means[name]) and len(s.per_horizon[name]) == 4
    for name, file in (("lpips", "vgg16-397923af.pth"), ("fid", "pt_inception-2015-12-05-6726825d.pth"),
                       ("fvd", "i3d_torchscript.pt")):
        assert file in info[name].skipped and any(file in note for note in results.notes)
    model, rand = results.source("model").means, results.source("model, random actions").means
    for baseline in SOURCES[1:]:  # window by window: the same windows, so the mean gap is the gap of the means
        for name in ("psnr", "ssim", "mse"):
            p = results.paired[baseline][name]
            gap = model[name] - results.source(baseline).means[name]
            assert p["difference"] == pytest.approx(gap, rel=1e-9, abs=1e-12) and p["low"] <= p["difference"] <= p["high"]
            assert p["windows"] == 4 and 0 <= p["wins"] <= 4
    for s in results.sources:  # one score per window, in window_ids' order: their mean is the source's mean
        for name in ("psnr", "ssim", "mse"):
            assert len(s.per_window[name]) == 4
            assert np.mean(s.per_window[name]) == pytest.approx(s.means[name], rel=1e-9)
    gaps = np.subtract(results.source("model").per_window["psnr"], results.source(SOURCES[1]).per_window["psnr"])
    assert results.paired[SOURCES[1]]["psnr"]["wins"] == int((gaps > 0).sum())
    assert results.delta_n == pytest.approx({k: (model[k] - rand[k]) / rand[k] * 100 for k in model}, rel=1e-12)
    for s in results.sources:
        assert len(s.videos) == 1 and frame_count(out / s.videos[0]) == 6  # 2 given + 4 generated
    assert results.counterfactual == "counterfactual.mp4" and frame_count(out / "counterfactual.mp4") == 6
    assert results.model["action_space"]["dim"] == 2 and results.model["parameters"] > 0
    assert (out / "report.md").is_file() and (out / "report.html").is_file()  # the report, from results.json


def test_the_evaluated_report_opens_in_chromium(first, tmp_path):
    """The report `evaluate` wrote for a tiny model on a small dataset, in a real browser: no console error, the
    table with every source, a drawn plot, the videos playing, the missing weights file named."""
    results, out = first
    seen = open_report(out / "report.html", tmp_path / "profile")
    assert seen.errors == [] and seen.active_elements == 0
    assert seen.plot_width > 100 and seen.plot.std() > 10 and seen.table.std() > 10
    assert all(name in seen.text for name in SOURCES) and "i3d_torchscript.pt" in seen.text
    assert len(seen.video_widths) >= len(SOURCES) and all(w > 0 for w in seen.video_widths)


def test_copy_last_frame_scores_match_an_independent_computation(first, inputs):
    results, _ = first
    dataset = open_dataset(inputs[1])
    windows, note = protocol_windows(dataset, get_protocol("generic", context=2, horizon=4, windows=4))
    assert note is None and [w.name for w in windows] == [i.split("-")[1] for i in results.protocol["window_ids"]]
    truth = np.stack([np.asarray(dataset.episode(w.episode).frames[w.start: w.start + 6]) for w in windows])
    copy = np.repeat(truth[:, 1:2], 4, axis=1)
    scores = results.source("copy last context frame")
    assert scores.means["psnr"] == pytest.approx(psnr(copy, truth[:, 2:]).mean(), rel=1e-12)
    assert scores.means["mse"] == pytest.approx(mse(copy, truth[:, 2:]).mean(), rel=1e-12)
    assert scores.per_horizon["mse"] == pytest.approx(mse(copy, truth[:, 2:]).mean(axis=0).tolist(), rel=1e-12)


def _batch_files(out: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in sorted((out / "predictions").rglob("*.npz"))}


def test_rerun_reuses_predictions_and_scores_the_network_metrics(first, inputs, monkeypatch, tmp_path, capsys):
    results, out = first
    before = _batch_files(out)
    assert len(before) == 4 * 2 + 1  # four sources x two batches, and the counterfactual

    def no_model(*args, **kwargs):
        raise AssertionError("the rerun called the model")

    monkeypatch.setattr(v2w.WorldModel, "rollout", no_model)
    weights = tmp_path / "weights"
    write_lpips_backbone(weights, "vgg")
    write_i3d_standin(weights)
    model, data = inputs
    code = main(["evaluate", "--model", str(model), "--data", str(data), "--protocol", "generic", "--context", "2",
                 "--horizon", "4", "--windows", "4", "--batch", "2", "--videos", "1", "--out", str(out),
                 "--weights", str(weights), "--no-progress"])
    assert code == 0 and "copy last context frame" in capsys.readouterr().out
    again = EvaluationResults.load(out)
    assert _batch_files(out) == before
    info = {m.name: m for m in again.metrics}
    assert info["lpips"].skipped is None and info["fvd"].skipped is None and "i3d" in info["fvd"].convention
    assert "pt_inception-2015-12-05-6726825d.pth not found in" in info["fid"].skipped
    for old, new in zip(results.sources, again.sources):
        for name in ("psnr", "ssim", "mse"):
            assert new.means[name] == old.means[name] and new.per_horizon[name] == old.per_horizon[name]
        assert new.means["lpips"] >= 0 and np.isfinite(new.means["fvd"])
    assert again.command[:2] == ["vid2world", "evaluate"] and "--weights" in again.command


def test_killed_run_resumes_without_redoing_finished_batches(first, inputs, monkeypatch, tmp_path):
    monkeypatch.delenv("VID2WORLD_WEIGHTS", raising=False)
    results, _ = first
    out = tmp_path / "eval"
    calls = []
    real = v2w.WorldModel.rollout

    def dies_on_third(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("killed")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(v2w.WorldModel, "rollout", dies_on_third)
    with pytest.raises(RuntimeError, match="killed"):
        evaluate(config(inputs, out), progress=False)
    done = _batch_files(out)
    # batch 0 of the model, the copy baseline and another episode's actions; random actions died
    assert [p.parent.parent.name for p in done] == ["copy-last-frame", "model", "other-episode-actions"]
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]
    stale = done.popitem()[0].parent / f".batch-00001.npz.tmp-{dead_pid()}-abc123.npz"
    stale.write_bytes(b"half a file")
    calls.clear()
    monkeypatch.setattr(v2w.WorldModel, "rollout", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    resumed = evaluate(config(inputs, out), progress=False)
    assert len(calls) == 3 * 2 - 2 + 4  # the model's batches not on disk, then the 4 counterfactual sequences
    assert not stale.exists()
    for old, new in zip(results.sources, resumed.sources):
        assert new.means == old.means  # the same numbers as the uninterrupted run


def test_predictions_of_other_settings_are_refused(first, inputs):
    _, out = first
    with pytest.raises(FileExistsError, match=r"other settings \(steps: 2 before, 1 now\)"):
        evaluate(config(inputs, out, steps=1), progress=False)


def dead_pid() -> int:
    """A process id no process has now (so its temporaries are stale)."""
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid += 1


def test_idm_reads_every_source_on_the_generated_transitions(first, inputs, monkeypatch, tmp_path):
    from vid2world.eval.idm.model import IDMConfig
    from vid2world.eval.idm.fit import FitConfig, fit_idm
    from vid2world.eval.idm.store import save_idm

    monkeypatch.delenv("VID2WORLD_WEIGHTS", raising=False)
    results, out = first
    idm_dir = save_idm(fit_idm(str(inputs[1]), FitConfig(steps=2, batch=4, model=IDMConfig(
        width=8, stages=1, hidden=8, stem_stride=1, before=2)), progress=False), tmp_path / "idm")
    copy = tmp_path / "eval"
    shutil.copytree(out, copy)  # the IDM is a scoring setting: the predictions are reused
    monkeypatch.setattr(v2w.WorldModel, "rollout", lambda *a, **k: pytest.fail("the model was called"))
    scored = evaluate(config(inputs, copy, idm=str(idm_dir)), progress=False)
    accuracy = scored.action_accuracy
    assert accuracy["idm"] == str(idm_dir) and "no discrete action group" in accuracy["note"]
    assert "real" not in accuracy and "model" not in accuracy  # continuous actions: R^2 and signs only
    details = json.loads((copy / accuracy["details"]).read_text())
    assert set(details) == {"real frames", *SOURCES}
    # 4 windows x actions t = 2, 3, 4 (the IDM needs 2 frames before t; t >= 1 leads to a generated frame)
    assert all(d["pairs"] == 12 for d in details.values())
    assert details["model"]["groups"]["action"]["kind"] == "continuous"
    assert (copy / "report.html").is_file()
    assert [s.means for s in scored.sources] == [s.means for s in results.sources]


def test_the_recorded_command_parses_back_to_the_same_settings():
    """results.json's command reruns the evaluation: every setting, a negated flag and a preset included, parses
    back to the same EvaluateConfig."""
    from vid2world.cli import build_parser
    from vid2world.eval.cli import command_line
    from vid2world.eval.run import EvaluateConfig

    for more in ({"counterfactual": False, "precision": "bf16", "steps": 3, "random_actions": False},
                 {"preset": "fast", "guidance": 2.0}, {}):
        cfg = EvaluateConfig(model="m", data="d", protocol="generic", out="o", windows=4, **more)
        fields = {k: getattr(cfg, k) for k in EvaluateConfig.__dataclass_fields__}
        args = build_parser().parse_args(command_line("evaluate", fields)[1:])
        assert EvaluateConfig(**{k: getattr(args, k) for k in fields}) == cfg


def test_compare_pairs_two_evaluations_of_the_same_windows(first, inputs, tmp_path, capsys):
    """`vid2world compare A B`: every shared source, A - B window by window; copying the last frame does not depend
    on the model, so its gap is exactly 0; evaluations of other windows, or without per-window scores, are refused."""
    results, out = first
    fewer = tmp_path / "one-step"
    other = evaluate(config(inputs, fewer, steps=1, videos=0, counterfactual=False), progress=False)
    assert main(["compare", str(out), str(fewer), "--json", str(tmp_path / "c.json")]) == 0
    table = capsys.readouterr().out
    assert "| model | psnr |" in table and "| copy last context frame | psnr |" in table
    gaps = {(g["source"], g["metric"]): g for g in json.loads((tmp_path / "c.json").read_text())["gaps"]}
    assert set(gaps) == {(s, m) for s in SOURCES for m in ("psnr", "ssim", "mse")}
    copy = gaps[("copy last context frame", "psnr")]["gap"]
    assert copy["difference"] == copy["low"] == copy["high"] == 0 and copy["wins"] == 0
    mine, theirs = (np.asarray(r.source("model").per_window["psnr"]) for r in (EvaluationResults.load(out), other))
    model = gaps[("model", "psnr")]
    assert model["gap"]["difference"] == pytest.approx(np.mean(mine - theirs), rel=1e-9, abs=1e-12)
    assert model["gap"]["wins"] == int((mine > theirs).sum()) and model["a"] == pytest.approx(mine.mean())
    moved = tmp_path / "moved"
    shutil.copytree(fewer, moved, ignore=shutil.ignore_patterns("predictions"))
    raw = json.loads((moved / "results.json").read_text())
    raw["protocol"]["window_ids"] = raw["protocol"]["window_ids"][::-1]
    (moved / "results.json").write_text(json.dumps(raw))
    assert main(["compare", str(out), str(moved)]) == 2
    assert "were not scored on the same windows" in capsys.readouterr().err
    raw["protocol"]["window_ids"] = other.protocol["window_ids"]
    for source in raw["sources"]:
        source.pop("per_window")  # results.json from before per-window scores were kept
    (moved / "results.json").write_text(json.dumps(raw))
    assert main(["compare", str(out), str(moved)]) == 2
    assert "share no source with per-window scores" in capsys.readouterr().err


def test_without_random_actions_the_baseline_and_delta_n_are_left_out(first, inputs, tmp_path):
    """`--no-random-actions` (what `zoo ablate` uses: it compares models, not baselines): the other sources' scores
    are those of the full evaluation, with a third fewer rollouts."""
    full, _ = first
    results = evaluate(config(inputs, tmp_path / "eval", random_actions=False, videos=0, counterfactual=False),
                       progress=False)
    names = [s.name for s in results.sources]
    assert RANDOM.name not in names and RANDOM.name in [s.name for s in full.sources]
    assert results.delta_n == {} and not (tmp_path / "eval" / "predictions" / RANDOM.slug).exists()
    by_name = {s.name: s for s in full.sources}
    for source in results.sources:
        assert source.means == pytest.approx(by_name[source.name].means, rel=1e-6), source.name
