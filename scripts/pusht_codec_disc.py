"""Can the codec keep Push-T's disc? Disc pixels (blue) in reconstructions of 256 held-out frames: the adapted
decoder (encoder kept), then the whole autoencoder fine-tuned on Push-T frames for N steps (docs/results.md).

    python scripts/pusht_codec_disc.py build/zoo/pusht/decoder 600    # a Push-T build's decoder stage
"""

import sys
from pathlib import Path

import numpy as np
import torch

from vid2world.data.store import open_dataset
from vid2world.train.autoencoder import AutoencoderFitConfig, fit_autoencoder
from vid2world.zoo.stages import episode_frames, load_codec


def disc(g):
    return ((g[..., 2] > 150) & (g[..., 0] < 120) & (g[..., 1] < 150)).reshape(len(g), -1).sum(1)


@torch.no_grad()
def recon(codec, f):
    x = torch.from_numpy(np.array(f)).permute(0, 3, 1, 2).float() / 127.5 - 1
    r = codec.vae.decode(codec.vae.encode(x).mode())
    return ((r.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()


held = np.concatenate(episode_frames(open_dataset(Path(sys.argv[1]).parent / "data" / "pusht-s1")))[::14][:256]
train = episode_frames(open_dataset(Path(sys.argv[1]).parent / "data" / "pusht-s0"), "train")
codec = load_codec(Path(sys.argv[1]))


def report(tag):
    r = recon(codec, held)
    psnr = 10 * np.log10(255 ** 2 / ((r.astype(float) - held) ** 2).mean())
    print(f"{tag}: disc pixels real {disc(held).mean():.1f}, reconstructed {disc(r).mean():.1f}; "
          f"PSNR {psnr:.2f} dB", flush=True)

report("as shipped")
fit_autoencoder(codec, train, AutoencoderFitConfig(steps=int(sys.argv[2]), batch=32, lr=1e-3, warmup=20,
                                                  precision="fp32"), progress=False)
codec.vae.eval()
report(f"whole autoencoder fine-tuned {sys.argv[2]} steps")
