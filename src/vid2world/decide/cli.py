"""`vid2world policy-eval`, `plan`, `imagine`, `head train`, `policy-train` (docs/decisions.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..io.args import add_progress_flag, int_list, positive_int
from ..io.atomic import absolute
from ..io.outputs import OutputDirectory
from .catalog import POLICY_HELP


def _model_and_env(ref: str, env: str | None, device: str):
    from ..world.bundled import load_model, resolve
    from ..world.spaces import model_spec

    model = load_model(ref, device)
    env = env or model.metadata.get("env")
    if not env:
        raise ValueError(f"--model {ref}: its metadata names no simulator; give --env (e.g. atari:Boxing)")
    spec = model_spec(model)
    if spec is None:
        raise ValueError(f"--model {ref}: takes no actions; policies have nothing to choose")
    return model, env, spec, Path(resolve(ref, "model"))


def _model_sampling(args: argparse.Namespace):
    """The world model of --model, its simulator, action layout, directory and sampling."""
    model, env, spec, model_dir = _model_and_env(args.model, args.env, args.device)
    return model, env, spec, model_dir, model.sampling(args.preset, steps=args.steps, guidance=args.guidance)


def _reward_head(args: argparse.Namespace, env: str, model_dir: Path):
    """The outcome head of --head (default MODEL/head), checked against the model's simulator."""
    from .heads import load_head

    head_dir = Path(args.head) if args.head else model_dir / "head"
    if not (head_dir / "head.json").is_file():
        raise FileNotFoundError(f"--head {head_dir}: no outcome head (train one: vid2world head train --env {env})")
    head = load_head(head_dir)
    if head.config.env != env:
        raise ValueError(f"--head {head_dir}: reads {head.config.env} frames, the model plays {env}")
    head.path = str(head_dir)
    return head


def _model_head_sampling(args: argparse.Namespace):
    """The world model of --model, its simulator, action layout, outcome head (--head or MODEL/head) and sampling."""
    model, env, spec, model_dir, sampling = _model_sampling(args)
    return model, env, spec, _reward_head(args, env, model_dir), sampling


def _episode_scorer(args: argparse.Namespace, env: str, model_dir: Path, frame_size: list[int]):
    """What policy-eval scores episodes by: the block's progress read by --pose-reader, else summed rewards read by
    the outcome head."""
    from .episode_scores import BlockProgress, RewardSums

    if not args.pose_reader:
        head = _reward_head(args, env, model_dir)
        return RewardSums(head, head.path)
    if args.head:
        raise ValueError("--head and --pose-reader: give one (episodes are scored by rewards or by the block's pose)")
    from ..data.sim import make_simulator
    from .pose import check_reader_size, load_pose_reader

    reader = load_pose_reader(args.pose_reader)
    if reader.config.env != env:
        raise ValueError(f"--pose-reader {args.pose_reader}: reads {reader.config.env} frames, the model plays {env}")
    size = int(frame_size[0])
    check_reader_size(reader, size, "the model draws")
    sim = make_simulator(env, size)
    try:
        return BlockProgress(reader, str(args.pose_reader), sim)
    finally:
        sim.close()


def _policy_eval(args: argparse.Namespace) -> int:
    import json

    from .policy_eval import PolicyEvalConfig, evaluate_policies, score_runs
    from .report import load_runs, save_runs, write_outputs

    config = PolicyEvalConfig(env="?", policies=tuple(args.policies), episodes=args.episodes, horizon=args.horizon,
                              context=args.context, random_start=args.random_start, seed=args.seed,
                              gate=args.gate, gate_steps=args.gate_steps)  # checked before a model loads
    out = OutputDirectory(args.out, "policy-eval", outputs=("results.json", "report.md", "returns.png"))
    model, env, spec, model_dir, sampling = _model_sampling(args)
    scorer = _episode_scorer(args, env, model_dir, model.metadata.get("frame_size", [64]))
    if args.rescore:  # the saved episodes of an earlier run, scored again
        results = json.loads((out.path / "results.json").read_text())
        runs = load_runs(out.path, [row["policy"] for row in results["policies"]])
        results = score_runs(results, runs, scorer)
    else:
        results, runs = evaluate_policies(model, sampling, scorer, PolicyEvalConfig(**{**config.__dict__, "env": env}),
                                          spec, progress=not args.no_progress)
        results.update(model=str(args.model), sampling={"preset": args.preset, "steps": sampling.steps,
                                                        "guidance": sampling.guidance})
        save_runs(out, runs)
    write_outputs(out, results, runs, args.videos)
    if not results["gate"]["passed"]:
        print(f"policy-eval: the model's frames change with the actions only {results['gate']['ratio']:.2f}x as "
              f"much as with the noise (threshold {args.gate}): it would rank every policy alike; see "
              f"{out.path / 'report.md'}")
        return 1
    agree = results["agreement"]
    print(f"policy-eval: Spearman {agree['spearman']['value']:.2f}, Pearson {agree['pearson']['value']:.2f}, "
          f"MMRV {agree['mmrv']['value']:.2f} over {len(results['policies'])} policies; {out.path / 'report.md'}")
    return 0


def _head_train(args: argparse.Namespace) -> int:
    from ..data.sim import make_simulator
    from .heads import HeadConfig, fit_reward_head, head_scores, save_head
    from .outcomes import collect_transitions

    out = absolute(args.out)
    if out.exists() and not (out / "head.json").is_file():
        raise FileExistsError(f"--out {out}: exists and holds no outcome head; give a new directory")
    sim = make_simulator(args.env, args.size)
    spec = sim.spec
    sim.close()
    config = HeadConfig(args.env, frame_size=args.size, steps=args.steps, seed=args.seed,
                        weight_power=args.weight_power)
    codec = None
    if args.codec:  # the frames as the world model's codec returns them: the blur imagined frames carry
        from ..world.bundled import load_model

        codec = load_model(args.codec, "cpu").codec
    show = not args.no_progress
    train = collect_transitions(args.env, args.policies, args.episodes, args.horizon, args.seed, args.size, spec,
                                progress=show, codec=codec)
    held = collect_transitions(args.env, args.policies, args.heldout_episodes, args.horizon, args.seed + 1,
                               args.size, spec, progress=show, codec=codec)
    head = fit_reward_head(config, train.before, train.after, train.rewards, progress=not args.no_progress)
    scores = head_scores(head, held.before, held.after, held.rewards, held.episode)
    scores["train_transitions"], scores["policies"] = int(len(train.rewards)), list(args.policies)
    scores["through_codec"] = args.codec
    save_head(head, out, scores)
    print(f"head train: held-out accuracy {scores['accuracy']:.3f}, per-episode return Pearson "
          f"{scores['return_pearson'] if scores['return_pearson'] is not None else float('nan'):.3f}, "
          f"MAE {scores['return_mae']:.2f}; {out}")
    return 0


def _head_pose(args: argparse.Namespace) -> int:
    from .outcomes import collect_poses
    from .pose import PoseReaderConfig, fit_pose_reader, reader_scores, save_pose_reader

    out = absolute(args.out)
    if out.exists() and not (out / "head.json").is_file():
        raise FileExistsError(f"--out {out}: exists and holds no head; give a new directory")
    codec = None
    if args.codec:  # the frames as the world model's codec returns them, as `head train --codec`
        from ..world.bundled import load_model

        codec = load_model(args.codec, "cpu").codec
    show = not args.no_progress
    frames, poses = collect_poses(args.env, args.policies, args.episodes, args.horizon, args.seed, args.size,
                                  progress=show, codec=codec)
    held_frames, held_poses = collect_poses(args.env, args.policies, args.heldout_episodes, args.horizon,
                                            args.seed + 1, args.size, progress=show, codec=codec)
    config = PoseReaderConfig(args.env, frame_size=args.size, steps=args.steps, seed=args.seed)
    reader = fit_pose_reader(config, frames, poses, progress=show)
    scores = {**reader_scores(reader, held_frames, held_poses), "train_frames": int(len(frames)),
              "policies": list(args.policies), "through_codec": args.codec}
    save_pose_reader(reader, out, scores)
    print(f"head pose: held-out block position off by {scores['position_px']['mean']:.1f} px, angle by "
          f"{scores['angle_deg']['mean']:.1f} degrees (means over {scores['frames']} frames); {out}")
    return 0


def _plan(args: argparse.Namespace) -> int:
    import json

    from ..io.atomic import write_text
    from .goals import GoalConfig
    from .plan import PlanConfig
    from .plan_goal import run_goal_planning
    from .plan_run import PlanRunConfig, run_planning

    plan = PlanConfig(args.lookahead, args.population, args.iterations, args.elites, hold=args.hold)
    goal = GoalConfig(gap=args.gap) if args.goal else None
    out = OutputDirectory(args.out, "plan", outputs=("results.json", "report.md"))
    model = sampling = head = None
    env = args.env
    if args.model and goal:
        model, env, _, _, sampling = _model_sampling(args)
    elif args.model:
        model, env, _, head, sampling = _model_head_sampling(args)
    if env is None:
        raise ValueError("plan: give --model (a world model to plan through) or --env (the simulator only)")
    config = PlanRunConfig(env, args.episodes, args.horizon, args.context, args.random_start, args.seed,
                           tuple(args.baselines))
    if args.pose_reader and not goal:
        raise ValueError("--pose-reader: scores goal-reaching tasks; give --goal too")
    if goal:
        from .pose import load_pose_reader

        reader = load_pose_reader(args.pose_reader) if args.pose_reader else None
        results = run_goal_planning(config, plan, goal, model, sampling, use_simulator=not args.no_simulator,
                                    progress=not args.no_progress, reader=reader)
    else:
        results = run_planning(config, plan, model, sampling, head, use_simulator=not args.no_simulator,
                               progress=not args.no_progress)
    results["model"] = args.model
    write_text(out.file("results.json"), json.dumps(results, indent=1))
    lines = _plan_report(env, config, plan, goal, results["players"])
    write_text(out.file("report.md"), "\n".join(lines) + "\n")
    print("\n".join(lines[-len(results["players"]):]))
    return 0


def _plan_report(env: str, config, plan, goal, rows: list[dict]) -> list[str]:
    task = (f"{config.episodes} goal-reaching tasks (the goal {goal.gap} scripted steps on from the start; success: "
            f"the block within {goal.position_tolerance:g} px and {goal.angle_tolerance:g} degrees of the goal's "
            f"pose) of {config.steps} real steps" if goal else
            f"{config.episodes} episodes of {config.steps} real steps from the same seeded starts")
    outcome = "success rate" if goal else "real return"
    lines = [f"# Planning on {env}", "", f"{task}; CEM: {plan.population} candidates x {plan.iterations} "
             f"iterations, {plan.lookahead} actions ahead, each held {plan.hold} steps.", "",
             f"| player | {outcome} (95% interval) | seconds per real step |", "|---|---|---|"]
    for row in rows:
        per_step = f"{row['seconds_per_step']:.2f}" if "seconds_per_step" in row else "-"
        extra = (f"; block {row['position_error']['mean']:.0f} px, {row['angle_error']['mean']:.0f} deg off"
                 if goal else "")
        lines.append(f"| {row['player']} | {row['mean']:.2f} ({row['low']:.2f} to {row['high']:.2f}){extra} "
                     f"| {per_step} |")
    return lines


def _imagine(args: argparse.Namespace) -> int:
    from ..world.env import EnvConfig
    from .imagine import ImagineConfig, train_in_imagination

    out = OutputDirectory(args.out, "imagine", outputs=("agent.zip", "results.json"))
    model, env, _, head, _ = _model_head_sampling(args)
    cfg = ImagineConfig(env, args.train_steps, envs=args.envs, episode_steps=args.episode_steps,
                        n_steps=args.n_steps, seed=args.seed, eval_episodes=args.episodes,
                        eval_horizon=args.horizon, baselines=tuple(args.baselines))
    out.files(["agent.zip", "results.json"])
    results = train_in_imagination(model, head, EnvConfig(args.preset, args.steps, args.guidance), cfg, out.path,
                                   progress=not args.no_progress)
    for row in results["players"]:
        print(f"{row['player']}: real return {row['mean']:.2f} ({row['low']:.2f} to {row['high']:.2f})")
    return 0


def _policy_train(args: argparse.Namespace) -> int:
    from .ppo import PPOConfig, train_ppo

    cfg = PPOConfig(args.env, tuple(args.stages), envs=args.envs, max_steps=args.max_steps, size=args.size,
                    seed=args.seed)
    train_ppo(cfg, absolute(args.out), progress=not args.no_progress)
    return 0


def _add_world_flags(p: argparse.ArgumentParser) -> None:
    """The flags of a command that runs a world model beside its simulator (policy-eval, plan)."""
    p.add_argument("--env", default=None, help="the real simulator (default: the model's, from its metadata)")
    p.add_argument("--head", default=None, help="outcome head directory (default: MODEL/head)")
    p.add_argument("--context", type=positive_int, default=2, help="real frames the model starts from (default 2)")
    p.add_argument("--random-start", type=int, default=20, help="0..N random steps before an episode (default 20)")
    p.add_argument("--preset", default="fast", choices=("fast", "quality"), help="the model's sampling preset")
    p.add_argument("--steps", type=positive_int, default=None, help="DDIM steps instead of the preset's")
    p.add_argument("--guidance", type=float, default=None, help="guidance scale instead of the preset's")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", required=True, help="output directory")
    add_progress_flag(p)


def _register_policy_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("policy-eval", help="policies inside a world model vs in the real game: returns, ranking",
                       description="Run every policy from the same seeded starts in the real simulator and inside "
                       "the world model; score the imagined frames with an outcome head (or a pose reader); "
                       "report how well the imagined returns rank the policies as the real ones do (Pearson, "
                       "Spearman, MMRV, MAE, bias, bootstrap intervals). A gate first checks that the model "
                       "responds to actions.")
    p.add_argument("--model", required=True, help="a world-model directory or a bundled model's name")
    p.add_argument("--policies", nargs="+", required=True, help=POLICY_HELP)
    p.add_argument("--episodes", type=positive_int, default=16, help="episodes per policy (default 16)")
    p.add_argument("--horizon", type=positive_int, default=40, help="steps per episode (default 40)")
    p.add_argument("--pose-reader", default=None, help="score episodes by how many pixels closer to the target the "
                   "block ends than it started (Push-T), read off frames by this pose reader (vid2world head pose), "
                   "instead of by rewards and an outcome head")
    p.add_argument("--gate", type=float, default=0.2, help="least action response to go on (default 0.2)")
    p.add_argument("--gate-steps", type=positive_int, default=8, help="steps of the gate's rollouts (default 8)")
    p.add_argument("--videos", type=int, default=2, help="episodes per policy written as real|imagined mp4")
    p.add_argument("--rescore", action="store_true", help="score the episodes an earlier run saved in --out "
                   "with --head again, without running anything")
    _add_world_flags(p)
    p.set_defaults(func=_policy_eval)


def _register_head(sub: argparse._SubParsersAction) -> None:
    head = sub.add_parser("head", help="outcome heads (reward, pose) read off frames, trained on the real game")
    head_sub = head.add_subparsers(dest="head_command", required=True)
    t = head_sub.add_parser("train", help="a reward head from real transitions of several policies",
                            description="Play the policies in the real simulator, train a reward head on the "
                            "frames before and after every step, and score it on held-out episodes.")
    t.add_argument("--env", required=True, help="e.g. atari:Boxing")
    t.add_argument("--policies", nargs="+", default=["chase", "chase@0.5", "random", "scripted", "noop"],
                   help=POLICY_HELP)
    t.add_argument("--episodes", type=positive_int, default=48, help="training episodes per policy")
    t.add_argument("--heldout-episodes", type=positive_int, default=16, help="held-out episodes per policy")
    t.add_argument("--horizon", type=positive_int, default=100, help="steps per episode")
    t.add_argument("--steps", type=positive_int, default=3000, help="optimiser steps")
    t.add_argument("--size", type=positive_int, default=64, help="frame size (the world model's)")
    t.add_argument("--weight-power", type=float, default=0.5, help="class weights (1/frequency)^P (default 0.5; "
                   "1 is full inverse frequency, 0 none)")
    t.add_argument("--codec", default=None, help="a world model (directory or name) whose codec every frame goes "
                   "through first (encoded and decoded), so the head learns on frames as blurred as imagined ones")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", required=True)
    add_progress_flag(t)
    t.set_defaults(func=_head_train)
    r = head_sub.add_parser("pose", help="a pose reader (Push-T's block: x, y, angle) from real frames",
                            description="Play the policies in the real simulator, train a reader of the block's pose "
                            "on every frame (the simulator's state is the label) and score it on held-out episodes.")
    r.add_argument("--env", default="pusht", help="a simulator that records the block's pose (default pusht)")
    r.add_argument("--policies", nargs="+", default=["scripted", "scripted@0.5", "random"], help=POLICY_HELP)
    r.add_argument("--episodes", type=positive_int, default=48, help="training episodes per policy")
    r.add_argument("--heldout-episodes", type=positive_int, default=8, help="held-out episodes per policy")
    r.add_argument("--horizon", type=positive_int, default=60, help="steps per episode")
    r.add_argument("--steps", type=positive_int, default=2000, help="optimiser steps")
    r.add_argument("--size", type=positive_int, default=64, help="frame size (the world model's)")
    r.add_argument("--codec", default=None, help="a world model whose codec every frame goes through first")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", required=True)
    add_progress_flag(r)
    r.set_defaults(func=_head_pose)


def _register_plan(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="model-predictive control (CEM) through a world model, played in the real game",
                       description="Play episodes of the real game choosing every action by CEM over action "
                       "sequences imagined by the world model (scored by its outcome head), and by the same CEM "
                       "through the real simulator (restored state: the upper bound), and by baseline policies, "
                       "all from the same seeded starts; report the real returns with intervals.")
    p.add_argument("--model", default=None, help="world model to plan through (directory or bundled name)")
    p.add_argument("--episodes", type=positive_int, default=8)
    p.add_argument("--horizon", type=positive_int, default=60, help="real steps per episode (default 60)")
    p.add_argument("--lookahead", type=positive_int, default=4, help="steps each candidate imagines (default 4)")
    p.add_argument("--population", type=positive_int, default=16, help="candidates per iteration (default 16)")
    p.add_argument("--iterations", type=positive_int, default=2, help="CEM iterations (default 2)")
    p.add_argument("--elites", type=positive_int, default=4, help="candidates refitted to (default 4)")
    p.add_argument("--hold", type=positive_int, default=1, help="real steps each planned action is held for "
                   "(default 1): a plan reaches lookahead x hold steps ahead")
    p.add_argument("--baselines", nargs="*", default=["random"], help=POLICY_HELP)
    p.add_argument("--no-simulator", action="store_true", help="skip planning through the real simulator")
    p.add_argument("--goal", action="store_true", help="goal-reaching tasks (pusht): candidates scored by their "
                   "frames' distance to the goal's frame, success judged on the block's pose (no head needed)")
    p.add_argument("--gap", type=positive_int, default=10, help="--goal: scripted steps from start to goal (10)")
    p.add_argument("--pose-reader", default=None, help="--goal: score candidates by the block's pose this reader "
                   "(vid2world head pose) reads off their frames and the goal's, instead of the pixel distance")
    _add_world_flags(p)
    p.set_defaults(func=_plan)


def _register_imagine(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("imagine", help="train an agent (PPO) only inside a world model, score it in the real game",
                       description="Train an actor-critic agent (stable-baselines3 PPO) on the world model's "
                       "batched environment with the outcome head's rewards, then play it and the baselines in "
                       "the real game from the same starts.")
    p.add_argument("--model", required=True, help="world model (directory or bundled name)")
    p.add_argument("--train-steps", type=positive_int, default=20000, help="imagined steps of training")
    p.add_argument("--envs", type=positive_int, default=8, help="imagined episodes stepped together")
    p.add_argument("--episode-steps", type=positive_int, default=50, help="steps of an imagined episode")
    p.add_argument("--n-steps", type=positive_int, default=64, help="PPO rollout length per episode row")
    p.add_argument("--episodes", type=positive_int, default=16, help="real evaluation episodes")
    p.add_argument("--horizon", type=positive_int, default=100, help="steps of a real evaluation episode")
    p.add_argument("--baselines", nargs="*", default=["random"], help=POLICY_HELP)
    _add_world_flags(p)
    p.set_defaults(func=_imagine)


def _register_policy_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("policy-train", help="PPO (stable-baselines3) in the real game, saved at several stages")
    p.add_argument("--env", required=True)
    p.add_argument("--stages", type=int_list, required=True, help="step counts to save at, e.g. 20000,100000")
    p.add_argument("--envs", type=positive_int, default=8)
    p.add_argument("--max-steps", type=positive_int, default=200, help="steps per training episode")
    p.add_argument("--size", type=positive_int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    add_progress_flag(p)
    p.set_defaults(func=_policy_train)


def register(sub: argparse._SubParsersAction) -> None:
    for add in (_register_policy_eval, _register_plan, _register_imagine, _register_head, _register_policy_train):
        add(sub)
