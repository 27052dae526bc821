"""`vid2world bench drift`: does a long session stay a game? A bundled model (or any world model with a simulator
in its metadata) is driven `--frames` steps by the simulator's scripted policy from a real start frame; the real
game plays the same actions (started again from a fresh seed when an episode ends), and both sequences are
compared per block of frames (`metrics/drift.py`): a collapse to blur, grey, noise or a frozen picture fails."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.sim.base import make_simulator
from ..data.sim.policies import HoldPolicy
from ..io.args import add_json_flag, add_progress_flag, positive_int, torch_device, write_json
from ..io.progress import progress_bar
from ..metrics.drift import drift_report, format_drift
from ..world.bundled import load_model, resolve
from ..world.frames import frames_to_tensor, tensor_to_frames
from ..world.session import eval_mode
from ..world.sampling import Sampling
from ..world.world_model import WorldModel


def real_game(env: str, size: int, frames: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`frames` real frames [N, h, w, 3] and the N-1 actions [N-1, A] between them, under the scripted policy;
    an episode that ends is followed by a fresh one (a new seed), as a player respawns."""
    sim = make_simulator(env, size)
    rng = np.random.default_rng(seed)
    policy = HoldPolicy(sim)
    try:
        out, actions, episode = [sim.reset(seed)], [], 0
        while len(out) < frames:
            action = policy.act(rng)
            frame, done = sim.step(action)
            if done:
                episode += 1
                frame = sim.reset(seed + episode)
            out.append(frame)
            actions.append(action)
    finally:
        sim.close()
    return np.stack(out), np.stack(actions).astype(np.float32)


def model_game(model: WorldModel, start: np.ndarray, actions: np.ndarray, seed: int,
               progress: bool = False, sampling: Sampling | None = None) -> np.ndarray:
    """The model's frames [N, h, w, 3]: the real start frame, then one frame per action (`sampling`, default
    the fast preset)."""
    session = model.session(start[None, None], seed=seed, sampling=sampling or model.sampling("fast"))
    frames = [start]
    for action in progress_bar(list(actions), desc="drift", unit="frame", enabled=progress):
        frames.append(np.asarray(session.step(action[None]))[0])
    return np.stack(frames)


@torch.no_grad()
def codec_round_trip(model: WorldModel, frames: np.ndarray, batch: int = 100) -> np.ndarray:
    """The real frames through the model's codec and back: how sharp the model could draw them at best."""
    out = []
    with eval_mode(model):
        for i in range(0, len(frames), batch):
            pixels, _ = frames_to_tensor(frames[None, i:i + batch], "frames", model.device)
            latents = model.codec.encode(pixels, generator=torch.Generator().manual_seed(i))
            out.append(tensor_to_frames(model.codec.decode(latents), True)[0])
    return np.concatenate(out)


def idm_accuracy(idm: Any, frames: np.ndarray, actions: np.ndarray, block: int) -> list[float]:
    """Per block, the accuracy of the actions the bundled IDM reads from `frames` [N, h, w, 3] against the
    actions taken between them [N-1, A] (the last frame's action repeated: it is not scored)."""
    padded = np.concatenate([actions, actions[-1:]])
    return [idm.score(frames[None, s:s + block], padded[None, s:s + block])["action_accuracy"]
            for s in range(0, len(frames) - block + 1, block)]


def add_idm_accuracy(report: dict[str, Any], model_dir: Path, model_frames: np.ndarray, real_frames: np.ndarray,
                     actions: np.ndarray) -> None:
    """Each block's IDM action accuracy on the model's frames and the real game's, in `report` (when the model
    directory has an IDM that reads discrete actions); the last block's ratio joins the check."""
    if not (model_dir / "idm").is_dir():
        return
    from ..eval.idm import load_idm

    idm, block = load_idm(model_dir / "idm"), report["block"]
    ours, theirs = (idm_accuracy(idm, f, actions, block) for f in (model_frames, real_frames))
    if ours[0] is None:
        return
    for row, a, b in zip(report["blocks"], ours, theirs):
        row["idm_accuracy"] = {"model": a, "real": b, "ratio": a / b if b > 0 else float("inf")}
    report["last_block"]["idm_accuracy"] = abs(report["blocks"][-1]["idm_accuracy"]["ratio"] - 1) <= \
        report["tolerance"]
    report["last_block_ok"] = all(report["last_block"].values())


def measure_drift(model: WorldModel, model_dir: Path, frames: int = 1000, block: int = 100, seed: int = 0,
                  progress: bool = False, sampling: Sampling | None = None) -> dict[str, Any]:
    """The drift report of `model` (its directory `model_dir` for the IDM) against the simulator its metadata
    names, for `frames` frames under the scripted policy."""
    env = model.metadata.get("env")
    if not isinstance(env, str):
        raise ValueError(f"--model {model_dir}: its metadata names no simulator ('env'); bench drift plays the "
                         "real game beside the model")
    size = int(model.metadata.get("frame_size", (64, 64))[0])
    real, actions = real_game(env, size, frames, seed)
    generated = model_game(model, real[0], actions, seed, progress, sampling)
    ceiling = drift_report(codec_round_trip(model, real), real, block)
    report = drift_report(generated, real, block)
    add_idm_accuracy(report, model_dir, generated, real, actions)
    return {"env": env, "frames": frames, "seed": seed, "policy": "scripted (held actions)", **report,
            "codec_sharpness_ratio": float(np.mean([row["sharpness"]["ratio"] for row in ceiling["blocks"]]))}


def bench_drift(model_ref: str, frames: int = 1000, block: int = 100, seed: int = 0, device: str = "cpu",
                progress: bool = False) -> dict[str, Any]:
    model = load_model(model_ref, device)
    return {"model": model_ref, **measure_drift(model, resolve(model_ref, "--model"), frames, block, seed, progress)}


def _bench_drift(args: argparse.Namespace) -> int:
    if args.block > args.frames:
        raise ValueError(f"--block {args.block}: larger than --frames {args.frames}")
    result = bench_drift(args.model, args.frames, args.block, args.seed, args.device, not args.no_progress)
    print(f"{result['model']} for {result['frames']} frames under the scripted policy, beside the real game "
          f"({result['env']}):\n")
    print(format_drift(result))
    if "idm_accuracy" in result["blocks"][0]:
        pairs = ", ".join(f"{row['idm_accuracy']['model']:.2f} / {row['idm_accuracy']['real']:.2f}"
                          for row in result["blocks"])
        print(f"IDM action accuracy per block (model / real): {pairs}")
    print(f"The codec's own round trip of the real frames keeps {result['codec_sharpness_ratio']:.2f} of their "
          "sharpness: the most a model drawing through it can keep.")
    write_json(args.json, result)
    return 0


def register(bench_sub) -> None:
    """The `bench drift` command."""
    drift = bench_sub.add_parser("drift", help="a long session against the real game, per block of frames: "
                                 "sharpness, contrast, change, colour")
    drift.add_argument("--model", default="vizdoom-deathmatch",
                       help="a world-model directory or a bundled model's name (default: vizdoom-deathmatch)")
    drift.add_argument("--frames", type=positive_int, default=1000, help="frames to play (default: 1000)")
    drift.add_argument("--block", type=positive_int, default=100, help="frames per block (default: 100)")
    drift.add_argument("--seed", type=int, default=0, help="the game's and the policy's seed (default: 0)")
    drift.add_argument("--device", type=torch_device, default="cpu", help="torch device (default: cpu)")
    add_progress_flag(drift)
    add_json_flag(drift)
    drift.set_defaults(func=_bench_drift)
