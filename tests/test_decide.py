"""Decisions with a world model (issue 32): the agreement statistics on hand-worked cases, the policies (levels,
no-op labels, a user's import, bad words named), the Boxing chaser against random play in the real game, the real
game as a gymnasium env, the reward head's fit and files, and a `policy-eval` smoke run on a tiny model (the gate
passing, and failing for a model whose actions do nothing)."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import vid2world as v2w
from vid2world.cli import main
from vid2world.data.sim import make_simulator
from vid2world.data.spec import ActionSpec
from vid2world.decide.agreement import agreement, mmrv, ranks, spearman
from vid2world.decide.catalog import make_policy, noop_label
from vid2world.decide.heads import HeadConfig, fit_reward_head, head_scores, load_head, reward_class, save_head
from vid2world.decide.outcomes import collect_transitions
from vid2world.decide.rollouts import real_starts, run_real
from vid2world.decide.sim_env import SimulatorEnv
from vid2world.testing import randomize_weights

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.filterwarnings("ignore:.*render modes")]
BOXING = "atari:Boxing"


@pytest.fixture(scope="module")
def boxing_spec() -> ActionSpec:
    sim = make_simulator(BOXING, 16)
    sim.close()
    return sim.spec


def test_agreement_statistics_on_worked_cases():
    assert ranks(np.array([3.0, 1.0, 3.0])).tolist() == [2.5, 1.0, 2.5]
    assert spearman(np.array([1, 2, 3]), np.array([10, 20, 30])) == pytest.approx(1.0)
    assert spearman(np.array([1, 2, 3]), np.array([3, 2, 1])) == pytest.approx(-1.0)
    # SIMPLER's MMRV: only policy pairs ordered differently count, by their real gap; here 0 and 2 are swapped
    real, imagined = np.array([0.0, 1.0, 3.0]), np.array([5.0, 6.0, 4.0])
    # policy 0: violated with 2 (gap 3); 1: with 2 (gap 2); 2: with 0 and 1 (max gap 3) -> (3 + 2 + 3) / 3
    assert mmrv(real, imagined) == pytest.approx(8 / 3)
    assert mmrv(real, real + 7) == 0.0
    rng = np.random.default_rng(0)
    real_eps = [rng.normal(m, 1, 20) for m in (0, 2, 4, 6)]
    result = agreement(real_eps, [r * 0.5 + 1 for r in real_eps], resamples=300)
    assert result["spearman"]["value"] == pytest.approx(1.0) and result["mmrv"]["value"] == 0.0
    assert result["bias"]["low"] <= result["bias"]["value"] <= result["bias"]["high"] < 0
    with pytest.raises(ValueError, match="pair episode by episode"):
        agreement(real_eps, real_eps[:3])


def test_policies_by_word(boxing_spec, tmp_path, monkeypatch):
    frames = np.zeros((3, 16, 16, 3), np.uint8)
    noop = make_policy("noop", boxing_spec)
    noop.reset(3, 0)
    assert noop_label(boxing_spec) == ["NOOP"] and (noop.act(frames).argmax(1) == 0).all()
    always = make_policy("noop@1", boxing_spec)  # every action replaced by a random one
    always.reset(3, 0)
    assert always.name == "noop@1" and always.act(frames).argmax(1).tolist() != [0, 0, 0]
    first = make_policy("random", boxing_spec)
    first.reset(3, 5)
    again = make_policy("random", boxing_spec)
    again.reset(3, 5)
    assert np.array_equal(first.act(frames), again.act(frames))
    module = types.ModuleType("my_policies")
    module.act = lambda f: np.tile(np.eye(18, dtype=np.float32)[2], (len(f), 1))
    monkeypatch.setitem(sys.modules, "my_policies", module)
    user = make_policy("import:my_policies:act", boxing_spec)
    assert user.act(frames).argmax(1).tolist() == [2, 2, 2]
    for word, message in (("jump", "unknown policy 'jump'"), ("chase@x", "NAME@EPS"), ("chase@2", r"\[0, 1\]"),
                          ("import:nowhere", "module:attribute"), ("scripted", "needs the simulator"),
                          (f"sb3:{tmp_path}/none.zip", "no such file")):
        with pytest.raises((ValueError, FileNotFoundError), match=message):
            make_policy(word, boxing_spec)


def test_the_chaser_outscores_random_play_in_the_real_game(boxing_spec):
    seeds = list(range(100, 108))
    returns = {word: run_real(BOXING, seeds, 1, 20, 64, make_policy(word, boxing_spec), 100, 0).rewards.sum(1)
               for word in ("chase", "random")}
    assert returns["chase"].mean() > returns["random"].mean() + 2


def test_real_env_and_starts(boxing_spec):
    env = SimulatorEnv(BOXING, size=16, max_steps=3)
    check_env(env, skip_render_check=True)
    env.reset(seed=0)
    truncated = [env.step(env.action_space.sample())[3] for _ in range(3)]
    assert truncated == [False, False, True]
    env.close()
    starts = real_starts(BOXING, [0, 1], 3, 5, 16)
    assert starts.frames.shape == (2, 3, 16, 16, 3) and starts.actions.shape == (2, 2, 18)
    run = run_real(BOXING, [0, 1], 3, 5, 16, make_policy("random", boxing_spec), 2, 0)
    assert np.array_equal(run.frames[:, 0], starts.frames[:, -1])  # the episode goes on from the start's last frame


def test_reward_classes_and_head_files(tmp_path, boxing_spec):
    assert reward_class(np.array([-3.0, -1.0, 0.0, 0.4, 2.0])).tolist() == [0, 1, 2, 2, 4]
    data = collect_transitions(BOXING, ["chase", "random"], 2, 30, 0, 16, boxing_spec)
    assert len(data.before) == len(data.rewards) == 4 * 30 and set(np.unique(data.episode)) == {0, 1, 2, 3}
    head = fit_reward_head(HeadConfig(BOXING, frame_size=16, width=8, steps=5, batch=8), data.before, data.after,
                           data.rewards, progress=False)
    scores = head_scores(head, data.before, data.after, data.rewards, data.episode)
    assert 0 <= scores["accuracy"] <= 1 and scores["episodes"] == 4
    save_head(head, tmp_path / "head", scores)
    loaded = load_head(tmp_path / "head")
    assert np.array_equal(loaded.rewards(data.before, data.after), head.rewards(data.before, data.after))
    with torch.no_grad():  # the planner's score: the classes' values weighted by the head's probabilities
        probs = torch.softmax(head(torch.from_numpy(np.stack([data.before, data.after], 1))), -1).double()
    expected = (probs @ torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0], dtype=torch.float64)).numpy()
    assert np.allclose(head.expected_rewards(data.before, data.after, batch=7), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(FileNotFoundError, match="not an outcome head"):
        load_head(tmp_path)
    rare = np.where(np.arange(len(data.rewards)) % 10 == 0, 1.0, 0.0)  # one scoring step in ten
    fits = [fit_reward_head(HeadConfig(BOXING, frame_size=16, width=8, steps=5, batch=8, weight_power=power),
                            data.before, data.after, rare, progress=False) for power in (0.0, 1.0)]
    assert not np.allclose(*(fit.expected_rewards(data.before, data.after) for fit in fits))  # weights reach the loss


def boxing_world_model(path, spec: ActionSpec, actions_matter: bool = True, size: int = 16):
    cfg = v2w.UNetConfig.preset("pixel-tiny", in_channels=6, temporal_length=8,
                                action_space=v2w.ActionSpace.continuous(spec.dim), causal=v2w.CausalConfig("frame"))
    unet = randomize_weights(v2w.VideoUNet(cfg), 0).eval()
    if not actions_matter:
        for name, p in unet.named_parameters():
            if "action" in name:
                torch.nn.init.zeros_(p)
    model = v2w.WorldModel(unet, sampler=v2w.SamplerConfig(steps=2, window=4, guidance=v2w.GuidanceConfig(scale=1.0)),
                           metadata={"env": BOXING, "frame_size": [size, size], "actions": spec.to_dict()})
    model.save_pretrained(path)
    return path


def test_policy_eval_smoke_and_the_action_gate(tmp_path, boxing_spec, capsys):
    data = collect_transitions(BOXING, ["random"], 2, 10, 0, 16, boxing_spec)
    head = fit_reward_head(HeadConfig(BOXING, frame_size=16, width=8, steps=2, batch=4), data.before, data.after,
                           data.rewards, progress=False)
    save_head(head, tmp_path / "head", {"accuracy": 0.5})
    model = boxing_world_model(tmp_path / "model", boxing_spec)
    args = ["policy-eval", "--model", str(model), "--policies", "chase", "random", "noop", "--episodes", "3",
            "--horizon", "3", "--context", "2", "--random-start", "2", "--head", str(tmp_path / "head"),
            "--videos", "1", "--gate-steps", "2", "--no-progress",
            "--gate", "0.001"]  # a random tiny model moves its frames with the actions a little (0.02x); a deaf one 0
    assert main(args + ["--out", str(tmp_path / "eval")]) == 0
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert results["gate"]["passed"] and [r["policy"] for r in results["policies"]] == ["chase", "random", "noop"]
    assert all(len(r["imagined_returns"]) == 3 for r in results["policies"])
    assert set(results["agreement"]) == {"pearson", "spearman", "mmrv", "mae", "bias"}
    for name in ("report.md", "returns.png", "videos/chase-0.mp4", "episodes/noop.npz"):
        assert (tmp_path / "eval" / name).is_file()
    assert main(args + ["--out", str(tmp_path / "eval"), "--rescore"]) == 0  # the saved episodes, scored again
    again = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert again["policies"] == results["policies"] and again["agreement"] == results["agreement"]
    deaf = boxing_world_model(tmp_path / "deaf", boxing_spec, actions_matter=False)
    assert main(args[:2] + [str(deaf)] + args[3:] + ["--out", str(tmp_path / "deaf-eval")]) == 1
    assert "change with the actions only 0.00x" in capsys.readouterr().out
    assert "FAILED" in (tmp_path / "deaf-eval" / "report.md").read_text()
    assert main(args + ["--out", str(tmp_path / "e2"), "--policies", "chase", "chase"]) == 2
    assert "two or more different policies" in capsys.readouterr().err


def test_ppo_stages_save_resume_and_act(tmp_path, boxing_spec):
    from vid2world.decide.ppo import PPOConfig, train_ppo

    cfg = PPOConfig(BOXING, (32, 64), envs=2, max_steps=20, size=36, n_steps=16)  # NatureCNN reads >= 36 px
    records = train_ppo(cfg, tmp_path, progress=False)
    assert [r["steps"] for r in records] == [32, 64] and (tmp_path / "ppo-32.zip").is_file()
    (tmp_path / "ppo-64.zip").unlink()
    again = train_ppo(cfg, tmp_path, progress=False)  # goes on from the stage it finds
    assert [r["steps"] for r in again] == [32, 64, 64] and (tmp_path / "ppo-64.zip").is_file()
    policy = make_policy(f"sb3:{tmp_path / 'ppo-64.zip'}", boxing_spec)
    policy.reset(2, 0)
    actions = policy.act(np.zeros((2, 36, 36, 3), np.uint8))
    assert actions.shape == (2, 18) and (actions.sum(1) == 1).all()
    with pytest.raises(ValueError, match="--stages"):
        PPOConfig(BOXING, (64, 32))


class _Scripted:
    """An outcome model whose rewards and ends are known: reward = mean brightness after, ends above 200."""

    def outcomes(self, before, after):
        value = after.reshape(len(after), -1).mean(1)
        return value / 255.0, value > 200


def test_world_model_envs_take_an_outcome_model(tmp_path, boxing_spec):
    model = v2w.WorldModel.from_pretrained(boxing_world_model(tmp_path / "m", boxing_spec))
    env = v2w.WorldModelEnv(model, outcome=_Scripted())
    start = np.zeros((1, 16, 16, 3), np.uint8)
    env.reset(seed=0, options={"frames": start})
    frame, reward, terminated, _, _ = env.step(3)
    assert reward == pytest.approx(frame.mean() / 255) and terminated == (frame.mean() > 200)
    envs = v2w.WorldModelVectorEnv(model, 2, outcome=_Scripted())
    envs.reset(seed=0, options={"frames": start})
    frames, rewards, terminated, _, _ = envs.step(np.array([3, 4]))
    assert np.allclose(rewards, frames.reshape(2, -1).mean(1) / 255) and terminated.dtype == bool
    plain = v2w.WorldModelEnv(model)
    plain.reset(seed=0, options={"frames": start})
    assert plain.step(3)[1:3] == (0.0, False)


def test_cem_sequences_and_search():
    from vid2world.data.spec import ActionGroup
    from vid2world.decide.plan import PlanConfig, SequenceDistribution, cem

    spec = ActionSpec((ActionGroup("move", "one_hot", ("a", "b", "c", "d")),
                       ActionGroup("keys", "multi_hot", ("x", "y")),
                       ActionGroup("push", "continuous", ("dx",), low=(-2.0,), high=(2.0,))))
    rng = np.random.default_rng(0)
    dist = SequenceDistribution(spec, 3)
    seqs = dist.sample(50, rng)
    assert seqs.shape == (50, 3, 7) and (seqs[..., :4].sum(-1) == 1).all() and np.isin(seqs[..., 4:6], (0, 1)).all()
    assert (np.abs(seqs[..., 6]) <= 2).all()
    wanted = lambda s: s[:, 0, 3] + s[:, 0, 4] - np.abs(s[:, 0, 6] - 1.5)  # noqa: E731  move d, press x, push 1.5
    first = cem(wanted, spec, PlanConfig(lookahead=3, population=64, iterations=4, elites=8), rng)
    assert first[3] == 1 and first[4] == 1 and abs(first[6] - 1.5) < 0.5
    with pytest.raises(ValueError, match="--elites 9, --population 8"):
        PlanConfig(population=8, elites=9)


def test_simulator_scorer_restores_the_game():
    from vid2world.decide.plan_run import RewardObjective, simulator_scorer

    sim = make_simulator(BOXING, 16)
    sim.reset(0)
    action = np.eye(18, dtype=np.float32)[1]
    state = sim.snapshot()
    expected = [sim.step(action)[0] for _ in range(3)]
    sim.restore(state)
    simulator_scorer(sim, RewardObjective(None))(np.tile(np.eye(18, dtype=np.float32)[[2, 3, 4]], (4, 1, 1)))
    assert all(np.array_equal(sim.step(action)[0], e) for e in expected)
    sim.close()
    with pytest.raises(NotImplementedError, match="cannot save"):
        make_simulator("crafter", 18).snapshot()


def test_plan_smoke_through_a_tiny_model(tmp_path, boxing_spec, capsys):
    data = collect_transitions(BOXING, ["random"], 1, 5, 0, 16, boxing_spec)
    head = fit_reward_head(HeadConfig(BOXING, frame_size=16, width=8, steps=1, batch=4), data.before, data.after,
                           data.rewards, progress=False)
    model = boxing_world_model(tmp_path / "model", boxing_spec)
    save_head(head, model / "head", {"accuracy": 0.5})  # found beside the model without --head
    assert main(["plan", "--model", str(model), "--episodes", "2", "--horizon", "2", "--lookahead", "2",
                 "--population", "3", "--iterations", "1", "--elites", "1", "--out", str(tmp_path / "plan"),
                 "--no-progress"]) == 0
    results = json.loads((tmp_path / "plan" / "results.json").read_text())
    players = {row["player"]: row for row in results["players"]}
    assert set(players) == {"plan: world model", "plan: real simulator", "random"}
    assert all(len(row["returns"]) == 2 and row["low"] <= row["mean"] <= row["high"] for row in players.values())


def test_imagine_trains_inside_a_model_and_scores_in_the_real_game(tmp_path, capsys):
    spec = make_simulator(BOXING, 40).spec  # SB3's CNN reads frames of 36 pixels or more
    data = collect_transitions(BOXING, ["random"], 1, 4, 0, 40, spec)
    head = fit_reward_head(HeadConfig(BOXING, frame_size=40, width=8, steps=1, batch=4), data.before, data.after,
                           data.rewards, progress=False)
    model = boxing_world_model(tmp_path / "model", spec, size=40)
    save_head(head, model / "head", {"accuracy": 0.5})
    assert main(["imagine", "--model", str(model), "--train-steps", "8", "--envs", "2", "--n-steps", "4",
                 "--episode-steps", "3", "--episodes", "2", "--horizon", "3", "--out", str(tmp_path / "agent")]) == 0
    results = json.loads((tmp_path / "agent" / "results.json").read_text())
    assert [row["player"] for row in results["players"]] == ["imagination-trained agent", "random"]
    printed = capsys.readouterr()
    assert (tmp_path / "agent" / "agent.zip").is_file() and "real return" in printed.out
    assert "PPO in imagination: 8/8 step (100%)" in printed.err  # a log shows how far training got


def test_frames_through_a_codec(tmp_path, boxing_spec):
    from vid2world.decide.outcomes import through_codec

    model = v2w.WorldModel.from_pretrained(boxing_world_model(tmp_path / "m", boxing_spec))  # a pixel model
    frames = np.random.default_rng(0).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    assert np.array_equal(through_codec(model.codec, frames, batch=2), frames)  # the identity codec keeps them


def test_head_train_command_through_a_models_codec(tmp_path, boxing_spec, capsys):
    model = boxing_world_model(tmp_path / "model", boxing_spec)  # a pixel model: its codec returns frames as given
    assert main(["head", "train", "--env", BOXING, "--policies", "chase", "random", "--episodes", "2",
                 "--heldout-episodes", "1", "--horizon", "6", "--steps", "2", "--size", "16", "--codec", str(model),
                 "--weight-power", "1.0", "--out", str(tmp_path / "head"), "--no-progress"]) == 0
    head = load_head(tmp_path / "head")
    assert head.config.weight_power == 1.0  # the class weighting is recorded with the head
    scores = json.loads((tmp_path / "head" / "head.json").read_text())["heldout"]
    assert scores["train_transitions"] == 2 * 2 * 6 and scores["through_codec"] == str(model)
    assert 0.0 <= scores["accuracy"] <= 1.0 and head.config.env == BOXING
    assert "held-out accuracy" in capsys.readouterr().out
