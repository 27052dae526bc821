"""Recording from real simulators (ViZDoom, ALE, Crafter): round trip through the clip loader, determinism across
worker counts, action spaces in the metadata, scripted motion, the CLI (record -> info -> preview)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from vid2world.cli import main
from vid2world.data.clips import ClipConfig, ClipDataset, Window
from vid2world.data.inspect import write_preview
from vid2world.data.record import RecordConfig, record_dataset, record_episode
from vid2world.data.sim import make_policy, make_simulator

from .test_data_format import episode, write

SCENARIOS = ["vizdoom:deathmatch", "vizdoom:my_way_home", "vizdoom:health_gathering", "vizdoom:defend_the_center"]


def test_round_trip_record_then_load_clips(tmp_path):
    cfg = RecordConfig("vizdoom:my_way_home", episodes=3, steps=12, size=32, seed=4, val_episodes=1)
    ds = record_dataset(cfg, tmp_path / "ds", progress=False)
    assert ds.splits == ["train", "train", "val"]
    sim = make_simulator(cfg.env, cfg.size)
    try:
        for i in range(3):  # what the recorder stored, recomputed independently
            frames, actions, _ = record_episode(sim, make_policy("scripted", sim), 12, seed=4, episode=i)
            clips = ClipDataset(ds, ClipConfig(length=len(frames), split=None),
                                windows=[Window(i, ds.names[i], 0)])
            clip = clips[0]
            np.testing.assert_array_equal(clip["frames"].numpy(), frames)
            np.testing.assert_array_equal(clip["actions"].numpy(), actions)
    finally:
        sim.close()


def test_same_seed_same_episodes_whatever_the_workers(tmp_path):
    one = record_dataset(RecordConfig("vizdoom:deathmatch", episodes=4, steps=10, size=32, seed=9),
                         tmp_path / "one", progress=False)
    two = record_dataset(RecordConfig("vizdoom:deathmatch", episodes=4, steps=10, size=32, seed=9, workers=2),
                         tmp_path / "two", progress=False)
    other = record_dataset(RecordConfig("vizdoom:deathmatch", episodes=1, steps=10, size=32, seed=10),
                           tmp_path / "other", progress=False)
    assert one.names == two.names
    for i in range(4):
        np.testing.assert_array_equal(one.episode(i).frames, two.episode(i).frames)
        np.testing.assert_array_equal(one.episode(i).actions, two.episode(i).actions)
    assert not np.array_equal(one.episode(0).actions, other.episode(0).actions)


def run_lengths(actions: np.ndarray) -> float:
    changes = np.any(actions[1:] != actions[:-1], axis=1).sum()
    return len(actions) / (changes + 1)


@pytest.mark.parametrize("env", SCENARIOS + ["atari:Breakout", "crafter"])
def test_every_simulator_records_with_its_action_space(tmp_path, env):
    ds = record_dataset(RecordConfig(env, episodes=1, steps=24, size=32, seed=1), tmp_path / "ds", progress=False)
    ep = ds.episode(0)
    spec = ds.meta.actions
    assert ep.frames.shape[1:] == (32, 32, 3) and len(ep.frames) >= 8
    assert ds.meta.source == env and ds.meta.fps > 0 and ds.meta.extra["recorder"]["env"] == env
    spec.validate(np.asarray(ep.actions), env)
    kinds = [g.kind for g in spec.groups]
    if env.startswith("vizdoom"):
        assert kinds == ["multi_hot", "one_hot"] and "forward" in spec.groups[0].labels
        assert 0.0 in spec.groups[1].values and len(spec.groups[1].values) == 7  # binned turning
    elif env.startswith("atari"):
        assert kinds == ["one_hot"] and spec.groups[0].labels == ("NOOP", "FIRE", "RIGHT", "LEFT")
    else:
        assert kinds == ["one_hot"] and spec.dim == 17 and "move_left" in spec.groups[0].labels
    assert np.abs(np.diff(ep.frames.astype(np.int16), axis=0)).max() > 0, "frames must change"


def test_scripted_policy_holds_purposeful_actions(tmp_path):
    sim = make_simulator("vizdoom:deathmatch", 32)
    try:
        scripted = record_episode(sim, make_policy("scripted", sim), 60, seed=0, episode=0)
        random = record_episode(sim, make_policy("random", sim), 60, seed=0, episode=0)
    finally:
        sim.close()
    assert run_lengths(scripted[1]) >= 3 and run_lengths(random[1]) < 1.5
    turn = scripted[1][:, 5:]
    assert len(set(np.argmax(turn, 1).tolist())) > 1, "the script must turn, not only walk"
    motion = np.abs(np.diff(scripted[0].astype(np.int16), axis=0)).mean()
    assert motion > 2.0, f"the camera should move under held keys (mean |frame diff| {motion:.2f})"


def test_explore_policy_moves_the_disc_where_the_pusher_rests():
    """The pusher's actions are nearly a function of its frames (the disc mostly rests at its held target); the
    explore policy's short segments, half of them random, keep the disc moving where the frames do not say."""
    sim = make_simulator("pusht", 32)
    try:
        runs = {name: [record_episode(sim, make_policy(name, sim), 60, seed=0, episode=i) for i in range(3)]
                for name in ("scripted", "explore")}
    finally:
        sim.close()
    moved = {name: np.median(np.concatenate([np.linalg.norm(np.diff(s[:, :2], axis=0), axis=1)
                                             for _, _, s in eps])) for name, eps in runs.items()}
    assert moved["explore"] > 3 * moved["scripted"], moved
    assert np.mean([run_lengths(a) for _, a, _ in runs["explore"]]) < 4, "segments of 1-5 steps"
    with pytest.raises(ValueError, match="expected one of \\['explore', 'random', 'scripted'\\]"):
        make_policy("greedy", sim)


def test_action_free_recording(tmp_path):
    ds = record_dataset(RecordConfig("crafter", episodes=1, steps=6, size=32, actions=False), tmp_path / "v",
                        progress=False)
    assert ds.meta.actions is None and ds.episode(0).actions is None and len(ds.episode(0).frames) == 6


def test_bad_environment_ids():
    with pytest.raises(ValueError, match="did you mean \\['breakout'\\]"):
        make_simulator("atari:Breakot")
    pong = make_simulator("atari:ALE/Pong-v5", 16)  # gymnasium's id works too
    assert pong.rom == "pong" and "NOOP" in pong.spec.groups[0].labels
    with pytest.raises(ValueError, match="unknown scenario"):
        make_simulator("vizdoom:no_such_map")
    with pytest.raises(ValueError, match="unknown environment 'minecraft'"):
        make_simulator("minecraft")


def test_cli_record_info_preview(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["data", "record", "--env", "vizdoom:defend_the_center", "--episodes", "2", "--steps", "16",
                 "--size", "32", "--out", str(out)]) == 0
    assert main(["data", "info", str(out), "--json", str(tmp_path / "info.json")]) == 0
    text = capsys.readouterr().out
    assert "2 episodes, 32 frames" in text and "buttons (multi_hot)" in text
    info = json.loads((tmp_path / "info.json").read_text())
    assert info["episodes"] == 2 and info["action_dim"] == 12
    freq = info["actions"][1]["frequency"]
    assert sum(freq.values()) == pytest.approx(1.0)  # one-hot turn: frequencies add up to one
    assert main(["data", "preview", str(out), "--out", str(tmp_path / "p.gif"), "--frames", "8"]) == 0
    with Image.open(tmp_path / "p.gif") as gif:
        assert gif.n_frames == 8 and gif.size == (2 * 64, 64 + 14)  # two tiles side by side, a text line under each
    assert main(["data", "record", "--env", "vizdoom:defend_the_center", "--episodes", "1", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["data", "preview", str(out), "--out", str(tmp_path / "p.mp4"), "--frames", "8"]) == 0
    import av
    with av.open(str(tmp_path / "p.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 8


def test_bad_record_and_preview_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"^record: episodes must be >= 1, got 0$"):  # printed the whole dataclass
        RecordConfig("crafter", episodes=0)
    with pytest.raises(ValueError, match=r"^record: size must be >= 8, got 4$"):
        RecordConfig("crafter", episodes=1, size=4)
    with pytest.raises(ValueError, match=r"^crafter: frame size must be >= 18 .*, got 16$"):  # "height and width
        make_simulator("crafter", 16)  # must be > 0" came from inside Crafter
    rng = np.random.default_rng(0)
    ds = write(tmp_path, [episode(rng, 4), episode(rng, 5)])
    for name in ("episodes", "frames", "scale"):  # episodes=0 divided by zero
        with pytest.raises(ValueError, match=f"^preview: {name} must be >= 1, got 0$"):
            write_preview(ds, tmp_path / "p.gif", **{name: 0})
    assert not (tmp_path / "p.gif").exists()


def test_pusht_records_its_state_and_restores_a_snapshot(tmp_path):
    ds = record_dataset(RecordConfig("pusht", episodes=2, steps=8, size=32, policy="scripted"), tmp_path / "p",
                        progress=False)
    assert ds.meta.state == ("agent_x", "agent_y", "block_x", "block_y", "block_angle", "coverage")
    ep = ds.episode(0)
    assert ep.state.shape == (8, 6) and ep.actions.shape == (8, 2) and (ep.actions >= 0).all()
    assert (ep.state[:, :4] >= 0).all() and (ep.state[:, :4] <= 512).all() and (ep.state[:, 5] <= 1).all()
    assert np.abs(np.diff(ep.state[:, :2], axis=0)).max() > 1, "the disc moves to the targets"
    sim = make_simulator("pusht", 32)
    sim.reset(3)
    saved, push = sim.snapshot(), np.array([300.0, 300.0], np.float32)
    first = [sim.step(push)[0] for _ in range(3)]
    sim.restore(saved)
    assert all(np.array_equal(sim.step(push)[0], f) for f in first)
    rng = np.random.default_rng(0)  # restored after the pusher has turned the block (pymunk: the angle goes first)
    saved, at_save = sim.snapshot(), sim.state()
    for _ in range(30):
        sim.step(sim.scripted_action(rng))
    assert abs(sim.state()[4] - at_save[4]) > 0.05, "the block turned"
    sim.restore(saved)
    np.testing.assert_allclose(sim.state(), at_save, rtol=1e-6, atol=1e-3)
    sim.close()
    with pytest.raises(ValueError, match="no variants"):
        make_simulator("pusht:hard", 32)
