"""Policy evaluation scored by the block's progress (issue 33): the real episodes keep the simulator's state beside
each frame, progress is read exactly from it and off frames by a pose reader, and `policy-eval --pose-reader` runs
end to end on Push-T with a tiny model (named errors for a reader that cannot read the model's frames)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vid2world.cli import main
from vid2world.data.sim import make_simulator
from vid2world.decide.catalog import make_policy
from vid2world.decide.episode_scores import BlockProgress
from vid2world.decide.rollouts import Episodes, run_real
from vid2world.decide.sim_env import start_frames

from .test_plan_goal import pusht_world_model

pytestmark = pytest.mark.usefixtures("one_thread")


class _KnownReader:
    """Reads every frame's block at the position written in its first pixel (x, y = red, green times 2)."""

    def read(self, frames):
        px = frames[:, 0, 0].astype(np.float64)
        return np.stack([2 * px[:, 0], 2 * px[:, 1], np.zeros(len(px))], 1)


def test_block_progress_from_states_and_from_read_frames():
    sim = make_simulator("pusht", 16)
    scorer = BlockProgress(_KnownReader(), "known", sim)
    sim.close()
    tx, ty = scorer.target
    states = np.zeros((2, 3, 6), np.float32)
    states[:, :, 2:4] = [tx + 100, ty]  # both start 100 px right of the target
    states[0, -1, 2:4] = [tx + 40, ty]  # the first ends 40 px off (60 closer); the second pushes it further, 130 off
    states[1, -1, 2:4] = [tx, ty + 130]
    frames = np.zeros((2, 3, 4, 4, 3), np.uint8)
    frames[0, -1, 0, 0, :2] = [(tx + 10) / 2, ty / 2]  # read: 10 px off, 90 closer
    frames[1, -1, 0, 0, :2] = [tx / 2, ty / 2]  # read: at the target, 100 closer
    real = Episodes(frames, np.zeros((2, 2, 2)), np.zeros((2, 2)), np.ones((2, 2), bool), states)
    np.testing.assert_allclose(scorer.real(real), [60.0, -30.0], atol=1e-3)
    np.testing.assert_allclose(scorer.read(real, real), [90.0, 100.0], atol=1.0)  # pixels hold whole halves
    with pytest.raises(ValueError, match="simulator states"):
        scorer.real(Episodes(frames, real.actions, real.rewards, real.alive))


def test_real_episodes_keep_the_simulators_state_beside_each_frame():
    seeds, sim = [3, 4], make_simulator("pusht", 32)
    episodes = run_real("pusht", seeds, 2, 3, 32, make_policy("push", sim.spec), 5, 0)
    assert episodes.states.shape == (2, 6, 6) and episodes.frames.shape[:2] == (2, 6)
    start_frames(sim, seeds[1], 3, least=1)
    np.testing.assert_allclose(episodes.states[1, 0], sim.state(), rtol=1e-6)  # the start, before any step
    for action in episodes.actions[1]:
        sim.step(action)
    np.testing.assert_allclose(episodes.states[1, -1], sim.state(), rtol=1e-5, atol=1e-3)  # the same actions
    sim.close()
    assert not np.allclose(episodes.states[:, 0, :2], episodes.states[:, -1, :2])  # the disc moved


def test_policy_eval_by_the_blocks_progress(tmp_path, capsys):
    model = pusht_world_model(tmp_path / "model")
    assert main(["head", "pose", "--size", "16", "--episodes", "1", "--heldout-episodes", "1", "--horizon", "4",
                 "--steps", "2", "--out", str(tmp_path / "reader"), "--no-progress"]) == 0
    args = ["policy-eval", "--model", str(model), "--policies", "push", "random", "noop", "--episodes", "2",
            "--horizon", "3", "--random-start", "2", "--videos", "0", "--gate-steps", "2", "--gate", "0.001",
            "--no-progress"]
    assert main(args + ["--pose-reader", str(tmp_path / "reader"), "--out", str(tmp_path / "eval")]) == 0
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert results["outcome"]["kind"] == "block progress" and len(results["policies"]) == 3
    for row in results["policies"]:
        assert len(row["real_returns"]) == len(row["imagined_returns"]) == 2
        assert np.isfinite(row["real_returns"] + row["imagined_returns"]).all()
    assert "real block progress (px)" in (tmp_path / "eval" / "report.md").read_text()
    capsys.readouterr()
    assert main(args + ["--pose-reader", str(tmp_path / "reader"), "--gate", "1000",
                        "--out", str(tmp_path / "deaf")]) == 1  # refused: the report still says what it scores by
    assert "scored by block progress (px)" in (tmp_path / "deaf" / "report.md").read_text()
    assert main(args + ["--pose-reader", str(tmp_path / "reader"), "--head", str(tmp_path),
                        "--out", str(tmp_path / "e2")]) == 2
    assert "give one" in capsys.readouterr().err
    assert main(["head", "pose", "--episodes", "1", "--heldout-episodes", "1", "--horizon", "2", "--steps", "1",
                 "--out", str(tmp_path / "big"), "--no-progress"]) == 0
    assert main(args + ["--pose-reader", str(tmp_path / "big"), "--out", str(tmp_path / "e3")]) == 2
    assert "reads 64x64 frames, the model draws 16x16" in capsys.readouterr().err


def test_the_pusher_reads_the_disc_and_the_block_off_the_frame():
    from vid2world.decide.scripted import pusht_positions

    sim = make_simulator("pusht", 64)
    frames, states = [], []
    for seed in range(6):
        frames.append(sim.reset(seed))
        states.append(sim.state())
    disc, block = pusht_positions(np.stack(frames))
    states = np.stack(states)
    assert np.abs(disc - states[:, :2]).max() < 8  # the disc is drawn where it is (a 64-pixel frame: 8 px a pixel)
    # the block's drawn centroid is not its body's origin, but it moves with it
    assert np.corrcoef(block[:, 0], states[:, 2])[0, 1] > 0.9 and np.corrcoef(block[:, 1], states[:, 3])[0, 1] > 0.9
    pusher = make_policy("push", sim.spec)
    pusher.reset(2, 0)
    blank = np.full((2, 64, 64, 3), 255, np.uint8)  # nothing drawn: it acts at random, within the workspace
    actions = pusher.act(np.concatenate([np.stack(frames[:1]), blank[:1]]))
    assert actions.shape == (2, 2) and (actions >= 0).all() and (actions <= 512).all()
    sim.close()
    with pytest.raises(ValueError, match="needs Push-T's actions"):
        make_policy("push", make_simulator("atari:Boxing", 16).spec)
