"""Goal-reaching planning on Push-T (issue 33): tasks whose start does not meet the goal, pose errors with the
angle taken the short way, the frame distance, CEM's held actions, the pose reader (it learns, its files), and
`plan --goal` end to end through the real simulator and a tiny world model, by pixels and by read poses (with
named errors for a simulator without a block pose and a directory that holds no reader)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import vid2world as v2w
from vid2world.cli import main
from vid2world.data.sim import make_simulator
from vid2world.data.spec import ActionSpec
from vid2world.decide.goals import GoalConfig, block_errors, frame_distance, make_task, reached
from vid2world.decide.outcomes import collect_poses
from vid2world.decide.plan import PlanConfig, cem
from vid2world.decide.pose import (PoseReaderConfig, fit_pose_reader, load_pose_reader, pose_targets,
                                   reader_scores, save_pose_reader)
from vid2world.testing import randomize_weights

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_task_starts_off_its_goal_and_leaves_the_simulator_at_the_start():
    sim = make_simulator("pusht", 32)
    config = GoalConfig(lead=3, gap=12)
    task = make_task(sim, 5, config)
    assert task.frames.shape == (4, 32, 32, 3) and task.actions.shape == (3, 2) and task.goal_frame.shape == (32, 32, 3)
    start = sim.state()
    assert not reached(sim, start, task.goal_state, config)
    frame = sim.step(start[:2])[0]  # the disc held still: the frame goes on from the start's, not the goal's
    assert frame_distance(frame[None], task.frames[-1])[0] < frame_distance(frame[None], task.goal_frame)[0]
    sim.restore(task.start)
    np.testing.assert_allclose(sim.state(), start, rtol=1e-6, atol=1e-3)
    sim.close()


def test_pose_errors_take_the_angle_the_short_way():
    sim = make_simulator("pusht", 16)
    goal = np.array([0, 0, 100, 100, 2 * np.pi - 0.1, 0], np.float32)
    position, angle = block_errors(sim, np.array([0, 0, 103, 104, 0.1, 0], np.float32), goal)
    assert position == pytest.approx(5.0) and angle == pytest.approx(np.degrees(0.2), rel=1e-4)
    assert reached(sim, np.array([0, 0, 103, 104, 0.1, 0]), goal, GoalConfig())
    assert not reached(sim, np.array([0, 0, 130, 100, 0.1, 0]), goal, GoalConfig())
    sim.close()
    boxing = make_simulator("atari:Boxing", 16)
    with pytest.raises(ValueError, match="atari:Boxing records no block pose"):
        make_task(boxing, 0, GoalConfig())
    boxing.close()


def test_frame_distance_orders_frames_by_closeness():
    goal = np.zeros((8, 8, 3), np.uint8)
    near, far = goal.copy(), goal.copy()
    near[:2], far[:6] = 255, 255
    d = frame_distance(np.stack([goal, near, far]), goal)
    assert d[0] == 0 and 0 < d[1] < d[2] and d[2] == pytest.approx(0.75)


def test_cem_scores_each_planned_action_held():
    spec = ActionSpec.continuous(("x",), (-1.0,), (1.0,))
    lengths = []

    def score(sequences):
        lengths.append(sequences.shape[1])
        assert (sequences[:, 0::3] == sequences[:, 1::3]).all() and (sequences[:, 0::3] == sequences[:, 2::3]).all()
        return -np.abs(sequences[:, :, 0] - 0.5).sum(1)

    first = cem(score, spec, PlanConfig(lookahead=2, population=32, iterations=3, elites=4, hold=3),
                np.random.default_rng(0))
    assert set(lengths) == {6} and abs(first[0] - 0.5) < 0.3
    with pytest.raises(ValueError, match="hold >= 1"):
        PlanConfig(hold=0)


def pusht_world_model(path, size: int = 16):
    spec = make_simulator("pusht", size).spec
    cfg = v2w.UNetConfig.preset("pixel-tiny", in_channels=6, temporal_length=8,
                                action_space=v2w.ActionSpace.continuous(spec.dim), causal=v2w.CausalConfig("frame"))
    model = v2w.WorldModel(randomize_weights(v2w.VideoUNet(cfg), 0).eval(),
                           sampler=v2w.SamplerConfig(steps=1, window=4, guidance=v2w.GuidanceConfig(scale=1.0)),
                           metadata={"env": "pusht", "frame_size": [size, size], "actions": spec.to_dict()})
    model.save_pretrained(path)
    return path


def test_plan_goal_through_the_simulator_and_a_tiny_model(tmp_path, capsys):
    model = pusht_world_model(tmp_path / "model")  # no outcome head: a goal needs none
    args = ["plan", "--goal", "--gap", "6", "--episodes", "2", "--horizon", "4", "--lookahead", "2", "--hold", "2",
            "--population", "3", "--iterations", "1", "--elites", "1", "--baselines", "random", "scripted",
            "--no-progress"]
    assert main(args + ["--model", str(model), "--out", str(tmp_path / "plan")]) == 0
    results = json.loads((tmp_path / "plan" / "results.json").read_text())
    players = {row["player"]: row for row in results["players"]}
    assert list(players) == ["start (no steps)", "plan: world model", "plan: real simulator", "random", "scripted"]
    assert players["start (no steps)"]["success"] == [0.0, 0.0]  # no task starts at its goal
    for row in players.values():
        assert len(row["success"]) == 2 and set(row["success"]) <= {0.0, 1.0}
        assert row["low"] <= row["mean"] <= row["high"] and row["position_error"]["mean"] >= 0
    assert len(set(results["tasks"])) == 2 and results["goal"]["gap"] == 6
    report = (tmp_path / "plan" / "report.md").read_text()
    assert "success rate" in report and "held 2 steps" in report
    assert "| scripted |" in capsys.readouterr().out
    assert main(["plan", "--goal", "--env", "atari:Boxing", "--episodes", "1", "--out", str(tmp_path / "b"),
                 "--no-progress"]) == 2
    assert "atari:Boxing records no block pose" in capsys.readouterr().err


def test_the_pose_reader_learns_and_round_trips(tmp_path):
    frames, poses = collect_poses("pusht", ["scripted", "random"], 3, 12, 0, 32)
    assert frames.shape == (72, 32, 32, 3) and poses.shape == (72, 3) and (poses[:, 2] < 2 * np.pi).all()
    target = pose_targets(poses)
    np.testing.assert_allclose(np.hypot(target[:, 2], target[:, 3]), 1.0, rtol=1e-5)
    config = PoseReaderConfig("pusht", frame_size=32, width=8, steps=1, batch=8)
    untrained = reader_scores(fit_pose_reader(config, frames, poses, progress=False), frames, poses)
    reader = fit_pose_reader(PoseReaderConfig("pusht", frame_size=32, width=8, steps=150, batch=16, lr=3e-3),
                             frames, poses, progress=False)
    scores = reader_scores(reader, frames, poses)
    assert scores["position_px"]["mean"] < 0.7 * untrained["position_px"]["mean"], (scores, untrained)
    save_pose_reader(reader, tmp_path / "reader", scores)
    np.testing.assert_array_equal(load_pose_reader(tmp_path / "reader").read(frames[:5]), reader.read(frames[:5]))
    with pytest.raises(FileNotFoundError, match="not a pose reader"):
        load_pose_reader(tmp_path)


def test_plan_goal_by_read_poses(tmp_path, capsys):
    assert main(["head", "pose", "--episodes", "1", "--heldout-episodes", "1", "--horizon", "4", "--steps", "2",
                 "--out", str(tmp_path / "reader"), "--no-progress"]) == 0
    assert "held-out block position off by" in capsys.readouterr().out
    args = ["plan", "--env", "pusht", "--goal", "--gap", "6", "--episodes", "1", "--horizon", "2", "--lookahead",
            "1", "--population", "2", "--iterations", "1", "--elites", "1", "--baselines", "--no-progress"]
    assert main(args + ["--out", str(tmp_path / "plan"), "--pose-reader", str(tmp_path / "reader")]) == 0
    results = json.loads((tmp_path / "plan" / "results.json").read_text())
    assert results["objective"] == "pose read by the reader"
    assert [row["player"] for row in results["players"]] == ["start (no steps)", "plan: real simulator"]
    small = PoseReaderConfig("pusht", frame_size=16)
    save_pose_reader(fit_pose_reader(small, np.zeros((1, 16, 16, 3), np.uint8), np.zeros((1, 3)), progress=False),
                     tmp_path / "small", {})
    assert main(args + ["--out", str(tmp_path / "plan2"), "--pose-reader", str(tmp_path / "small")]) == 2
    assert "reads 16x16 frames" in capsys.readouterr().err  # the simulator draws 64: the reader must match
    assert main(args + ["--out", str(tmp_path / "plan3"), "--pose-reader", str(tmp_path)]) == 2
    assert "not a pose reader" in capsys.readouterr().err
    assert main(["plan", "--env", "pusht", "--pose-reader", str(tmp_path / "reader"),
                 "--out", str(tmp_path / "plan4")]) == 2
    assert "give --goal too" in capsys.readouterr().err


def test_the_simulator_scores_every_candidates_frames_in_one_call():
    from vid2world.decide.plan_goal import GoalObjective
    from vid2world.decide.plan_run import simulator_scorer

    sim = make_simulator("pusht", 32)
    goal_frame = sim.reset(9)
    sim.reset(4)
    candidates = np.random.default_rng(0).uniform(0, 512, (3, 4, 2)).astype(np.float32)
    state, expected = sim.snapshot(), []
    for sequence in candidates:  # each candidate by hand: its frames' distances to the goal, step by step
        sim.restore(state)
        expected.append(sum(-frame_distance(sim.step(a)[0][None], goal_frame)[0] for a in sequence))
    sim.restore(state)
    calls = []

    class Counted(GoalObjective):
        def imagined(self, before, after):
            calls.append(len(after))
            return super().imagined(before, after)

    # float32 distances summed in another order: a few ulps apart
    np.testing.assert_allclose(simulator_scorer(sim, Counted(goal_frame))(candidates), expected, rtol=1e-6)
    assert calls == [12]  # 3 candidates x 4 steps, one batch
    np.testing.assert_allclose(sim.state(), (sim.restore(state), sim.state())[1])  # the game is back at the start
    sim.close()
