"""`policy-eval`: rank policies inside a world model and in reality from the same starts, and say how well the
two rankings agree (Real2Sim policy evaluation, the paper's downstream use; `agreement.py` for the statistics).

Real outcomes come from the game (its rewards, or its state: `episode_scores.py`); imagined ones are a reader's
reading of the imagined frames (an outcome head, a pose reader). The same reader also reads the real frames, so its
own error (the agreement of "head on real" with the game) is reported apart from the world model's. A gate runs
first: a model whose frames do not change with the actions would rank every policy alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..data.sim import make_simulator
from ..io.progress import progress_bar
from .agreement import agreement
from .catalog import make_policy
from .policies import RandomPolicy
from .rollouts import Episodes, Starts, real_starts, run_imagined, run_real


@dataclass(frozen=True)
class PolicyEvalConfig:
    env: str
    policies: tuple[str, ...]
    episodes: int = 16
    horizon: int = 40
    context: int = 2
    random_start: int = 20
    seed: int = 0
    gate: float = 0.2  # the least action response (below) a model must show
    gate_steps: int = 8

    def __post_init__(self) -> None:
        for name in ("episodes", "horizon", "context", "gate_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')}: expected >= 1, got {getattr(self, name)}")
        if len(self.policies) < 2 or len(set(self.policies)) != len(self.policies):
            raise ValueError(f"--policies: two or more different policies to rank, got {list(self.policies)}")


def action_response(model, sampling, starts: Starts, spec, steps: int, seed: int) -> dict[str, float]:
    """Mean pixel change between imagined rollouts under two different random action sequences (the same noise),
    as a share of the change between two noise seeds under the same actions: 0 for a model that ignores actions."""
    runs = {}
    for key, action_seed, noise_seed in (("a", 1, seed), ("b", 2, seed), ("noise", 1, seed + 1)):
        runs[key] = run_imagined(model, sampling, starts, RandomPolicy(spec), steps, action_seed, noise_seed).frames
    response = float(np.abs(runs["a"].astype(np.int16) - runs["b"]).mean())
    noise = float(np.abs(runs["a"].astype(np.int16) - runs["noise"]).mean())
    return {"response": response, "noise": noise, "ratio": response / noise if noise > 0 else float("inf")}


def evaluate_policies(model, sampling, scorer, config: PolicyEvalConfig, spec, progress: bool = True
                      ) -> tuple[dict[str, Any], dict[str, tuple[Episodes, Episodes]]]:
    """Every policy in reality and in `model` from the same starts; returns results.json's content and the
    episodes (real, imagined) of each policy. Without the gate passed there are no policies in the results."""
    size = model.metadata.get("frame_size", [64])[0]
    seeds = [config.seed * 100_003 + e for e in range(config.episodes)]
    starts = real_starts(config.env, seeds, config.context, config.random_start, size)
    gate = action_response(model, sampling, starts, spec, config.gate_steps, config.seed)
    gate["threshold"], gate["passed"] = config.gate, bool(gate["ratio"] >= config.gate)
    results: dict[str, Any] = {"config": asdict(config), "gate": gate, "frame_size": size,
                               "outcome": scorer.describe()}
    if not gate["passed"]:
        return results, {}
    sim = make_simulator(config.env, size)
    runs = {}
    for word in progress_bar(config.policies, desc="policies", unit="policy", enabled=progress):
        policy = make_policy(word, spec, sim.scripted_action)
        real = run_real(config.env, seeds, config.context, config.random_start, size, policy, config.horizon,
                        config.seed, progress)
        imagined = run_imagined(model, sampling, starts, policy, config.horizon, config.seed, config.seed, progress)
        runs[policy.name] = (real, imagined)
    sim.close()
    return score_runs(results, runs, scorer), runs


def score_runs(results: dict[str, Any], runs: dict[str, tuple[Episodes, Episodes]], scorer) -> dict[str, Any]:
    """`results` with each policy's real, read-on-real and imagined outcomes (a `scorer` of `episode_scores`) and
    their agreement (saved episodes can be scored again: `policy-eval --rescore`)."""
    rows = []
    for name, (real, imagined) in runs.items():
        row = {"policy": name, "real_returns": scorer.real(real).tolist(),
               "head_on_real_returns": scorer.read(real, real).tolist(),
               "imagined_returns": scorer.read(imagined, real).tolist()}
        for key in ("real", "head_on_real", "imagined"):
            row[f"{key}_mean"] = float(np.mean(row[f"{key}_returns"]))
        rows.append(row)
    real = [np.array(r["real_returns"]) for r in rows]
    seed = results["config"]["seed"]
    return {**results, "outcome": scorer.describe(), "policies": rows,
            "agreement": agreement(real, [np.array(r["imagined_returns"]) for r in rows], seed=seed),
            "agreement_head_on_real": agreement(real, [np.array(r["head_on_real_returns"]) for r in rows],
                                                seed=seed)}
