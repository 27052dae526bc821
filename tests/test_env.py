"""`WorldModelEnv` and `WorldModelVectorEnv`: gymnasium's checker passes, the same seed gives the same episode,
actions map to the model's vectors (and bad ones are named), and resetting one row of the vector env leaves the
other rows' episodes exactly as they would have been."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import vid2world as v2w
from vid2world.data.spec import ActionGroup, ActionSpec
from vid2world.world.env import EnvConfig
from vid2world.world.spaces import action_space, to_vector

from .test_eval_run import make_inputs

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.filterwarnings("ignore:.*render modes")]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    model_dir, data = make_inputs(tmp_path_factory.mktemp("env"))
    return v2w.WorldModel.from_pretrained(model_dir), data


def test_checker_passes_and_seeds_repeat(tiny):
    model, data = tiny
    env = v2w.WorldModelEnv(model, data=data)
    assert env.observation_space == gym.spaces.Box(0, 255, (16, 16, 3), np.uint8)
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (2,), np.float32)  # the dataset's continuous bounds
    check_env(env)

    def episode(seed):
        first, info = env.reset(seed=seed)
        frames = [first] + [env.step(np.array([0.5, -0.5], np.float32))[0] for _ in range(3)]
        return np.stack(frames), info

    (a, info), (b, _), (c, _) = episode(3), episode(3), episode(4)
    assert info == {"context_frames": 1} and np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(env.render(), c[-1])  # the last frame stepped
    frame, reward, terminated, truncated, _ = env.step(np.zeros(2, np.float32))
    assert (reward, terminated, truncated) == (0.0, False, False)


def test_starts_from_frames_an_episode_and_truncation(tiny):
    model, data = tiny
    env = v2w.WorldModelEnv(model, EnvConfig(context=2, max_steps=2), data=data)
    ds = env.starts.data
    first, info = env.reset(seed=0, options={"episode": 1, "start": 3})
    assert info["context_frames"] == 2 and np.array_equal(first, ds.episode(1).frames[4])
    given = np.full((1, 16, 16, 3), 77, np.uint8)
    assert np.array_equal(env.reset(options={"frames": given})[0], given[0])
    assert env.step(np.zeros(2, np.float32))[3] is False and env.step(np.zeros(2, np.float32))[3] is True
    with pytest.raises(ValueError, match="episode must be in 0..7"):
        env.reset(options={"episode": 8})
    with pytest.raises(ValueError, match="action 'action'.*outside"):
        env.step(np.array([3.0, 0.0], np.float32))
    with pytest.raises(ValueError, match="NaN or inf"):
        env.step(np.array([np.nan, 0.0], np.float32))
    env.reset(seed=0)
    env.set_sampling(guidance=2.0)  # the session goes on with its history
    env.set_sampling(steps=3)  # this model's history level moves with the steps: it goes on from the last frame
    assert (env.config.steps, env.config.guidance) == (3, 2.0) and env.step(np.zeros(2, np.float32))[0].shape == (16, 16, 3)
    no_data = v2w.WorldModelEnv(model, data=None) if "frame_size" in model.metadata else None
    if no_data is None:
        with pytest.raises(ValueError, match="no 'frame_size'"):
            v2w.WorldModelEnv(model)


def test_vizdoom_spaces_map_to_the_recorders_vectors():
    spec = ActionSpec((ActionGroup("buttons", "multi_hot", ("forward", "backward", "attack")),
                       ActionGroup("turn", "one_hot", ("-12", "+0", "+12"), values=(-12.0, 0.0, 12.0))))
    space = action_space(spec)
    assert space == gym.spaces.Dict({"buttons": gym.spaces.MultiBinary(3), "turn": gym.spaces.Discrete(3)})
    vector = to_vector(spec, space, {"buttons": np.array([1, 0, 1], np.int8), "turn": 2})
    assert np.array_equal(vector, spec.make(buttons=["forward", "attack"], turn="+12"))
    for bad, message in [({"buttons": np.array([1, 0, 1])}, "expected a member"),
                         ({"buttons": np.array([1, 0, 2]), "turn": 0}, "0s and 1s"),
                         ({"buttons": np.array([1, 0, 1]), "turn": 3}, "integer in 0..2"),
                         ({"buttons": np.array([1, 0]), "turn": 0}, "expected 3 numbers")]:
        with pytest.raises(ValueError, match=message):
            to_vector(spec, space, bad)
    assert action_space(None) == gym.spaces.Discrete(1) and to_vector(None, gym.spaces.Discrete(1), 0) is None


def test_vector_env_resets_one_row_without_touching_the_others(tiny):
    model, data = tiny
    envs = v2w.WorldModelVectorEnv(model, 3, data=data)
    actions = np.random.default_rng(0).uniform(-1, 1, (4, 3, 2)).astype(np.float32)

    def run(reset_row_1_after: int | None):
        obs, _ = envs.reset(seed=10)
        frames = [obs]
        for t, a in enumerate(actions):
            if t == reset_row_1_after:
                obs, _ = envs.reset(seed=99, options={"reset_mask": np.array([False, True, False])})
                assert np.array_equal(obs[[0, 2]], frames[-1][[0, 2]])
            frames.append(envs.step(a)[0])
        return np.stack(frames)

    plain, reset = run(None), run(2)
    assert plain.shape == (5, 3, 16, 16, 3)
    assert np.array_equal(plain[:, [0, 2]], reset[:, [0, 2]])  # rows 0 and 2 never noticed
    assert np.array_equal(plain[:3, 1], reset[:3, 1]) and not np.array_equal(plain[3:, 1], reset[3:, 1])
    with pytest.raises(ValueError, match="reset_mask"):
        envs.reset(options={"reset_mask": np.array([True, False])})


needs_bundled = pytest.mark.skipif("vizdoom-deathmatch" not in v2w.zoo.names(), reason="no bundled ViZDoom model")


@needs_bundled
def test_checker_passes_on_the_bundled_vizdoom_model_from_the_real_game():
    pytest.importorskip("vizdoom")
    env = v2w.WorldModelEnv(v2w.zoo.load("vizdoom-deathmatch"))
    assert set(env.action_space.spaces) == {"buttons", "turn"}
    check_env(env)
    frame, _ = env.reset(seed=0, options={"simulator_seed": 7})
    assert frame.shape == (64, 64, 3) and frame.std() > 0  # a real game frame, not a blank
    turn_right = {"buttons": np.zeros(5, np.int8), "turn": 5}
    assert env.step(turn_right)[0].shape == (64, 64, 3)
    env.close()


def test_vector_env_seed_list_is_per_row_and_a_masked_reset_uses_its_rows_seeds(tiny):
    model, data = tiny
    envs = v2w.WorldModelVectorEnv(model, 3, data=data)
    start = [envs.starts(None, np.random.default_rng(s))[0][-1] for s in (5, 6, 7)]  # each seed's start frame
    assert not np.array_equal(start[0], start[2])  # seeds 5 and 7 start elsewhere: the test can tell them apart
    obs, _ = envs.reset(seed=[5, 6, 7])
    assert all(np.array_equal(obs[i], start[i]) for i in range(3))
    envs.step(np.zeros((3, 2), np.float32))
    obs, _ = envs.reset(seed=[5, 6, 7], options={"reset_mask": [0, 0, 1]})
    assert np.array_equal(obs[2], start[2])  # row 2 takes seed 7, the list's entry for row 2 (not the first: 5)
    obs, _ = envs.reset(seed=[None, 9, None], options={"reset_mask": [0, 1, 0]})
    assert np.array_equal(obs[1], envs.starts(None, np.random.default_rng(9))[0][-1])
    for bad, message in [([5, 6], "one per row"), ([5, 6, -1], "row 2.*non-negative"),
                         ([5, True, 7], "row 1 must be"), (-3, "seed must be a non-negative")]:
        with pytest.raises(ValueError, match=message):
            envs.reset(seed=bad)
