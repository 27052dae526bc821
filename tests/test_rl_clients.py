"""A real RL client on the world-model envs without glue: stable-baselines3's PPO trains on
`WorldModelEnv` (its `Dict` actions flattened by `FlatActions`) and on the batched `WorldModelVectorEnv`
(through `SB3VecEnv`), and `gymnasium.make("vid2world/NAME-v0")` builds the bundled models' envs. The tiny
model has ViZDoom's kind of actions (a multi-hot and a one-hot group): every step checks that SB3's flat
action reached the model as its vector."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import vid2world as v2w
from vid2world.data.spec import ActionGroup, ActionSpec, DatasetMeta
from vid2world.data.writer import DatasetWriter
from vid2world.testing import randomize_weights
from vid2world.world.env import EnvConfig
from vid2world.world.registration import env_id
from vid2world.world.spaces import action_space, flat_action_space, from_flat, to_vector

sb3 = pytest.importorskip("stable_baselines3")
from stable_baselines3.common.env_checker import check_env as sb3_check_env  # noqa: E402
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper  # noqa: E402

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.filterwarnings("ignore:.*render modes")]

SPEC = ActionSpec((ActionGroup("buttons", "multi_hot", ("forward", "backward", "attack")),
                   ActionGroup("turn", "one_hot", ("-12", "+0", "+12"), values=(-12.0, 0.0, 12.0))))
EPISODE = 8  # steps before truncation: short enough that the session never slides its window (cheap steps)


def expected_vector(flat: np.ndarray) -> np.ndarray:
    """SPEC's vector for a flat action [b0, b1, b2, turn], written out independently of `from_flat`."""
    return np.concatenate([np.asarray(flat[:3], np.float32), np.eye(3, dtype=np.float32)[int(flat[3])]])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A random model far smaller than pixel-tiny (8 channels, one level, no attention: ~25 ms a step) with
    SPEC's actions, and a 16x16 dataset of 4 episodes to start from."""
    root = tmp_path_factory.mktemp("rl")
    rng = np.random.default_rng(0)
    with DatasetWriter(root / "data", DatasetMeta("squares", 4.0, (16, 16), SPEC)) as writer:
        for i in range(4):
            frames = rng.integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)
            turn = SPEC.groups[1].labels[i % 3]
            actions = np.stack([SPEC.make(buttons=["forward"], turn=turn) for _ in range(6)])
            writer.add(frames, actions, f"ep{i}", "val")
    cfg = v2w.UNetConfig.preset("pixel-tiny", in_channels=6, temporal_length=8, model_channels=8,
                                channel_mult=(1,), attention_resolutions=(), norm_groups=4, init_attn=False,
                                temporal_attention=False, action_space=v2w.ActionSpace.continuous(SPEC.dim),
                                causal=v2w.CausalConfig("frame"))
    sampler = v2w.SamplerConfig(steps=1, window=EPISODE + 1, guidance=v2w.GuidanceConfig(1.0))
    model = v2w.WorldModel(randomize_weights(v2w.VideoUNet(cfg), 0).eval(), sampler=sampler,
                           metadata={"actions": SPEC.to_dict(), "frame_size": [16, 16], "fps": 4.0})
    return model, root / "data"


@pytest.fixture
def model_actions(world, monkeypatch):
    """Every action batch the model's sessions are stepped with, as the model receives it."""
    model, _ = world
    seen, session = [], model.session

    class Spy:
        def __init__(self, inner):
            self.inner = inner

        def step(self, action):
            seen.append(np.array(action))
            return self.inner.step(action)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    monkeypatch.setattr(model, "session", lambda *a, **k: Spy(session(*a, **k)))
    return seen


def config() -> EnvConfig:
    return EnvConfig(preset="quality", max_steps=EPISODE)


def test_flat_actions_stand_for_the_models_vectors():
    space = action_space(SPEC)
    flat = flat_action_space(SPEC, space)
    assert flat == gym.spaces.MultiDiscrete([2, 2, 2, 3])
    member = from_flat(SPEC, space, np.array([1, 1, 0, 2]))
    assert space.contains(member)
    expected = SPEC.make(buttons=["forward", "backward"], turn="+12")
    assert np.array_equal(to_vector(SPEC, space, member), expected)
    for bad, message in [(np.array([1, 0, 1]), "expected 4 integers"), (np.array([1, 0, 2, 0]), "in 0..nvec"),
                         (np.array([1, 0, 1, 3]), "in 0..nvec"), (np.array([1.0, 0, 1, 2]), "4 integers")]:
        with pytest.raises(ValueError, match=message):
            from_flat(SPEC, space, bad)
    moves = ActionSpec((ActionGroup("move", "continuous", ("dx", "dy"), (-1, -1), (1, 1)),
                        ActionGroup("zoom", "continuous", ("z",), (0,), (2,))))
    box = flat_action_space(moves, action_space(moves))
    assert box == gym.spaces.Box(np.array([-1, -1, 0], np.float32), np.array([1, 1, 2], np.float32))
    back = from_flat(moves, action_space(moves), np.array([0.5, -0.5, 1.5], np.float32))
    assert np.array_equal(to_vector(moves, action_space(moves), back), [0.5, -0.5, 1.5])
    mixed = ActionSpec((SPEC.groups[0], moves.groups[1]))
    with pytest.raises(ValueError, match="mix continuous and discrete"):
        flat_action_space(mixed, action_space(mixed))
    assert flat_action_space(None, gym.spaces.Discrete(1)) == gym.spaces.Discrete(1)  # not a Dict: unchanged


class Recorder(gym.Wrapper):
    """What SB3 sends the env (actions, resets) and what it gets back (observations)."""

    def __init__(self, env):
        super().__init__(env)
        self.actions, self.observations, self.resets = [], [], 0

    def reset(self, **kwargs):
        self.resets += 1
        obs, info = self.env.reset(**kwargs)
        self.observations.append(obs)
        return obs, info

    def step(self, action):
        self.actions.append(np.array(action))
        out = self.env.step(action)
        self.observations.append(out[0])
        return out


@pytest.mark.filterwarnings("ignore:.*different from the unwrapped")  # checking the wrapper is the point
@pytest.mark.filterwarnings("ignore:The minimal resolution")  # SB3's note on CnnPolicy; this test runs an MLP
def test_ppo_trains_on_the_env_with_flat_actions(world, model_actions):
    model, data = world
    env = v2w.FlatActions(v2w.WorldModelEnv(model, config(), data=data))
    assert env.action_space == gym.spaces.MultiDiscrete([2, 2, 2, 3])
    check_env(env)
    sb3_check_env(env)
    model_actions.clear()
    recorder = Recorder(env)
    ppo = sb3.PPO("MlpPolicy", recorder, n_steps=64, batch_size=32, n_epochs=2, seed=0, device="cpu")
    ppo.learn(256)
    assert ppo.num_timesteps == 256 and len(recorder.actions) == 256
    assert recorder.resets == 1 + 256 // EPISODE  # the first, then one after each truncation
    assert all(obs.shape == (16, 16, 3) and obs.dtype == np.uint8 for obs in recorder.observations)
    assert len(model_actions) == 256 and all(a.shape == (1, SPEC.dim) for a in model_actions)
    for flat, vector in zip(recorder.actions, model_actions):
        assert np.array_equal(vector[0], expected_vector(flat))
    assert {int(a[3]) for a in recorder.actions} == {0, 1, 2}  # the policy's draws reached every turn


class VecRecorder(VecEnvWrapper):
    def __init__(self, venv):
        super().__init__(venv)
        self.actions, self.steps = [], []

    def step_async(self, actions):
        self.actions.append(np.array(actions))
        self.venv.step_async(actions)

    def step_wait(self):
        self.steps.append(self.venv.step_wait())
        return self.steps[-1]

    def reset(self):
        return self.venv.reset()


def test_ppo_trains_on_the_batched_vector_env(world, model_actions):
    model, data = world
    venv = v2w.SB3VecEnv(v2w.WorldModelVectorEnv(model, 4, config(), data=data))
    assert isinstance(venv, VecEnv) and venv.num_envs == 4
    assert venv.action_space == gym.spaces.MultiDiscrete([2, 2, 2, 3])
    model_actions.clear()
    recorder = VecRecorder(venv)
    ppo = sb3.PPO("MlpPolicy", recorder, n_steps=16, batch_size=32, n_epochs=2, seed=0, device="cpu")
    ppo.learn(256)
    assert ppo.num_timesteps == 256 and len(recorder.actions) == 64  # 64 batched steps of 4 rows
    assert len(model_actions) == 64  # one session step (one batched UNet pass) per batched env step
    for flats, vectors in zip(recorder.actions, model_actions):
        assert vectors.shape == (4, SPEC.dim)
        assert all(np.array_equal(v, expected_vector(f)) for f, v in zip(flats, vectors))
    for t, (obs, rewards, dones, infos) in enumerate(recorder.steps, 1):
        assert obs.shape == (4, 16, 16, 3) and obs.dtype == np.uint8 and rewards.dtype == np.float32
        assert dones.tolist() == [t % EPISODE == 0] * 4  # every row truncates at EnvConfig.max_steps
        assert all(("terminal_observation" in info) == bool(done) for info, done in zip(infos, dones))
        assert all(info["TimeLimit.truncated"] == bool(done) for info, done in zip(infos, dones))


def test_the_vector_adapter_restarts_only_the_rows_that_ended_and_follows_seeds(world):
    model, data = world
    envs = v2w.WorldModelVectorEnv(model, 4, config(), data=data)
    venv = v2w.SB3VecEnv(envs)
    venv.seed(3)
    first = venv.reset()
    starts = [envs.starts(None, np.random.default_rng(3 + i))[0][-1] for i in range(4)]
    assert all(np.array_equal(first[i], starts[i]) for i in range(4))  # row i takes seed 3 + i
    venv.seed(3)
    assert np.array_equal(venv.reset(), first)
    zero = np.zeros((4, 4), np.int64)
    for _ in range(2):
        venv.step(zero)
    envs.reset(options={"reset_mask": [False, True, False, False]})  # row 1 starts over: ends 2 steps later
    for _ in range(EPISODE - 3):
        assert not venv.step(zero)[2].any()
    obs, _, dones, infos = venv.step(zero)
    assert dones.tolist() == [True, False, True, True] and envs.steps_taken.tolist() == [0, EPISODE - 2, 0, 0]
    assert [("terminal_observation" in info) for info in infos] == dones.tolist()
    assert not np.array_equal(infos[0]["terminal_observation"], obs[0])  # row 0 restarted, last frame kept
    assert venv.get_attr("num_envs") == [4] * 4 and len(venv.get_images()) == 4
    with pytest.raises(ValueError, match="one action per row"):
        venv.step(np.zeros((3, 4), np.int64))
    with pytest.raises(ValueError, match="in 0..nvec"):
        venv.step(np.full((4, 4), 5))
    with pytest.raises(ValueError, match="applies to all 4 rows"):
        venv.env_method("set_sampling", indices=[0])
    venv.set_options([{}, {"episode": 1}, {}, {}])
    with pytest.raises(ValueError, match="same options"):
        venv.reset()
    with pytest.raises(ValueError, match="wraps a WorldModelVectorEnv"):
        v2w.SB3VecEnv(v2w.WorldModelEnv(model, config(), data=data))


def test_make_builds_an_env_of_any_world_model_with_its_config(world):
    model, data = world
    env = gym.make(env_id("vizdoom-deathmatch"), model=model, data=data, preset="quality", max_steps=EPISODE)
    assert env.unwrapped.config == config() and env.unwrapped.model is model
    assert env.action_space == action_space(SPEC)
    assert env.observation_space == gym.spaces.Box(0, 255, (16, 16, 3), np.uint8)
    flat = gym.make(env_id("vizdoom-deathmatch"), model=model, data=data, flat_actions=True)
    assert flat.action_space == gym.spaces.MultiDiscrete([2, 2, 2, 3])
    vec = gym.make_vec(env_id("vizdoom-deathmatch"), num_envs=3, model=model, data=data, max_episode_steps=5)
    assert isinstance(vec, v2w.WorldModelVectorEnv) and vec.num_envs == 3 and vec.config.max_steps == 5
    with pytest.raises(ValueError, match=r"unknown keyword argument\(s\) \['stepz'\]"):
        gym.make(env_id("vizdoom-deathmatch"), model=model, data=data, stepz=2)


needs_bundled = pytest.mark.skipif(not {"vizdoom-deathmatch", "atari-boxing"} <= set(v2w.zoo.names()),
                                   reason="the bundled models are not installed")


@needs_bundled
def test_import_registers_the_bundled_models_and_not_stable_baselines3():
    code = ("import sys, gymnasium, vid2world; "
            "print(sorted(k for k in gymnasium.registry if k.startswith('vid2world/')), "
            "'stable_baselines3' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[0] == "['vid2world/atari-boxing-v0', 'vid2world/vizdoom-deathmatch-v0'] False"


@needs_bundled
def test_gymnasium_ids_make_the_bundled_models_and_cnn_ppo_steps_vizdoom():
    boxing = gym.make("vid2world/atari-boxing-v0")
    assert boxing.action_space == gym.spaces.Discrete(18)
    assert boxing.observation_space == gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
    assert boxing.unwrapped.model.metadata["name"] == "atari-boxing"
    env = gym.make("vid2world/vizdoom-deathmatch-v0", steps=1)
    assert env.action_space == gym.spaces.Dict({"buttons": gym.spaces.MultiBinary(5),
                                                "turn": gym.spaces.Discrete(7)})
    assert env.observation_space == boxing.observation_space
    flat = gym.make("vid2world/vizdoom-deathmatch-v0", flat_actions=True, steps=1)
    assert flat.action_space == gym.spaces.MultiDiscrete([2] * 5 + [7])
    ppo = sb3.PPO("CnnPolicy", flat, n_steps=4, batch_size=4, n_epochs=1, seed=0, device="cpu")
    ppo.env.set_options({"frames": np.zeros((1, 64, 64, 3), np.uint8)})  # a start without ViZDoom
    ppo.learn(4)
    assert ppo.num_timesteps == 4
    assert flat.unwrapped.steps_taken == 4 and flat.unwrapped.frame.shape == (64, 64, 3)
