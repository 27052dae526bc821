"""How well an autoencoder stage reconstructs Atari games it did and did not see (docs/zoo.md, atari-boxing):

    git restore --source=e77f062 -- zoo/stages/vizdoom-deathmatch    # the stage the bundled models came from
    python scripts/codec_on_games.py zoo/stages/vizdoom-deathmatch/autoencoder

For each game: one episode of up to 200 scripted steps from seed 5 at 64x64, every frame encoded and decoded; the
mean PSNR (dB) of the reconstructions, and of each frame copied as the next one (how still the game is)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vid2world.data.sim import make_simulator
from vid2world.metrics import psnr
from vid2world.zoo.stages import load_codec, reconstruction_psnr

GAMES = ("Breakout", "Pong", "Seaquest",  # in the ViZDoom recipe's pretraining video
         "Boxing", "Riverraid", "Enduro", "Freeway", "Asterix", "RoadRunner", "Tennis", "IceHockey", "Bowling",
         "Skiing")


def episode(game: str, steps: int = 200) -> np.ndarray:
    sim = make_simulator(f"atari:{game}", 64)
    rng = np.random.default_rng(0)
    frames = [sim.reset(5)]
    for _ in range(steps):
        frame, done = sim.step(sim.scripted_action(rng))
        if done:
            break
        frames.append(frame)
    sim.close()
    return np.stack(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("autoencoder", type=Path,
                        help="an autoencoder stage directory (codec.safetensors, config.json)")
    args = parser.parse_args()
    codec = load_codec(args.autoencoder)
    for game in GAMES:
        frames = episode(game)
        still = float(psnr(frames[None, 1:], frames[None, :-1]).mean())
        print(f"{game:12s} reconstruction {reconstruction_psnr(codec, [frames]):6.2f} dB   "
              f"previous frame copied {still:5.1f} dB", flush=True)


if __name__ == "__main__":
    main()
