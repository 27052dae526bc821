"""`WanCodec`: Wan 2.1's VAE as a vid2world codec, and the VAE's weight files in their two layouts.

Layouts: diffusers' (a folder with config.json and diffusion_pytorch_model.safetensors, or a pipeline folder
whose vae/ holds them) and Wan's own release (`Wan2.1_VAE.pth`: a pickled state dict under Wan's module names
and no config, so the config is Wan 2.1's unless one is given). Loading is strict: missing, unexpected and
mis-shaped tensors are refused by name, in the file's own naming.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from ..validation import check_state_dict
from .vae import WanDecodeStream, WanVAE, WanVAEConfig

POSTERIORS = ("mode", "sample")
DIFFUSERS_CONFIG, DIFFUSERS_WEIGHTS = "config.json", "diffusion_pytorch_model.safetensors"
DIFFUSERS_VERSION = "0.42.1"  # the AutoencoderKLWan whose layout and config fields these files follow
ORIGINAL_FILE = "Wan2.1_VAE.pth"


class WanCodec(nn.Module):
    """Pixels [B, 3, 1 + 4k, H, W] in [-1, 1] <-> normalised latents [B, 16, 1 + k, H/8, W/8], the space Wan's
    transformer works in: (z - latents_mean) / latents_std, as the Wan pipelines do.

    `posterior`: "mode" takes the encoder's mean (what Wan's own code and its image-to-video pipeline use),
    "sample" draws from it with `generator`. `chunked` encodes and decodes in Wan's chunks to bound memory
    (False: each layer sees the whole clip at once, faster for short clips). The VAE starts random unless
    given one: `WanCodec.from_pretrained(path)` loads either layout."""

    kind = "wan-vae"
    vae_config = WanVAEConfig  # how a world model's config.json check reads its "vae" settings

    def __init__(self, vae: WanVAE | WanVAEConfig | dict[str, Any] | None = None, posterior: str = "mode",
                 chunked: bool = True) -> None:
        super().__init__()
        if isinstance(vae, WanVAE):
            self.vae = vae
        elif vae is None or isinstance(vae, (WanVAEConfig, dict)):
            self.vae = WanVAE(WanVAEConfig.from_dict(vae) if isinstance(vae, dict) else vae)
        else:
            raise TypeError(f"WanCodec: vae must be a WanVAE, a WanVAEConfig, a dict or None, "
                            f"got {type(vae).__name__}")
        if posterior not in POSTERIORS:
            raise ValueError(f"WanCodec: posterior must be one of {POSTERIORS}, got {posterior!r}")
        self.posterior, self.chunked = posterior, bool(chunked)
        self.latent_channels = self.vae.config.z_dim
        self.temporal_compression = self.vae.temporal_compression
        self.spatial_compression = self.downsample = self.vae.spatial_compression

    @classmethod
    def from_pretrained(cls, path: str | Path, config: WanVAEConfig | None = None,
                        **kwargs: Any) -> "WanCodec":
        return cls(load_wan_vae(path, config), **kwargs)

    def encode(self, pixels: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """With posterior="sample" the noise is drawn in float32 on `generator`'s device, then moved."""
        posterior = self.vae.encode(pixels, chunked=self.chunked)
        z = posterior.mode() if self.posterior == "mode" else posterior.sample(generator)
        return self.vae.normalize(z)

    def decode(self, latents: Tensor) -> Tensor:
        self.vae.check_video(latents, "latents")  # before denormalising, which would fail on a bad shape
        return self.vae.decode(self.vae.denormalize(latents), chunked=self.chunked)

    def decode_stream(self) -> WanDecodeStream:
        """A decoder for a rollout that grows: feed it each new latent frame (normalised) once."""
        return self.vae.decode_stream(normalized=True)

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "vae": self.vae.config.to_dict(), "posterior": self.posterior,
                "chunked": self.chunked}


# --- weight files -----------------------------------------------------------------------------------------

_RESNET_ORIGINAL = {"norm1": "residual.0", "conv1": "residual.2", "norm2": "residual.3",
                    "conv2": "residual.6", "conv_shortcut": "shortcut"}
_MID_ORIGINAL = {"resnets.0": "middle.0", "attentions.0": "middle.1", "resnets.1": "middle.2"}
_PART_ORIGINAL = {"conv_in": "conv1", "norm_out": "head.0", "conv_out": "head.2"}
_TOP_ORIGINAL = {"quant_conv": "conv1", "post_quant_conv": "conv2"}


def original_key(key: str, num_res_blocks: int) -> str:
    """A diffusers-layout tensor name -> its name in Wan's release. Wan keeps the decoder's blocks in one
    flat `upsamples` list: per level num_res_blocks + 1 residual blocks, then its upsampler."""
    parts = key.split(".")
    if parts[0] in _TOP_ORIGINAL:
        return ".".join([_TOP_ORIGINAL[parts[0]], *parts[1:]])
    side, name, rest = parts[0], parts[1], parts[2:]
    if name in _PART_ORIGINAL:
        block = _PART_ORIGINAL[name]
    elif name == "mid_block":
        block, rest = _MID_ORIGINAL[".".join(rest[:2])], rest[2:]
    elif name == "down_blocks":
        block, rest = f"downsamples.{rest[0]}", rest[1:]
    elif name == "up_blocks":
        level, index = int(rest[0]), (int(rest[2]) if rest[1] == "resnets" else num_res_blocks + 1)
        block, rest = f"upsamples.{level * (num_res_blocks + 2) + index}", rest[3:]
    else:
        raise KeyError(f"not a Wan VAE tensor name: {key!r}")
    if rest and rest[0] in _RESNET_ORIGINAL:
        rest = [_RESNET_ORIGINAL[rest[0]], *rest[1:]]
    return ".".join([side, block, *rest])


def _shapes(vae: WanVAE) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in vae.state_dict().items()}


def read_diffusers_config(path: Path) -> WanVAEConfig:
    try:
        return WanVAEConfig.from_diffusers(json.loads(path.read_text()), source=str(path))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None


def _read_tensors(path: Path) -> dict[str, Tensor]:
    if path.suffix == ".safetensors":
        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a pickle that is not plain tensors, or not a torch file at all
        raise ValueError(f"{path}: not a state dict that torch.load(weights_only=True) reads "
                         f"({err})") from None
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a flat dict of tensor names to tensors (as {ORIGINAL_FILE} is), "
                         f"got {type(state).__name__}")
    return dict(state)


def _is_original(state: Mapping[str, Tensor]) -> bool:
    return "encoder.conv1.weight" in state or any(k.startswith(("encoder.downsamples.", "decoder.upsamples."))
                                                  for k in state)


def load_wan_vae(path: str | Path, config: WanVAEConfig | None = None, dtype: torch.dtype = torch.float32
                 ) -> WanVAE:
    """A Wan 2.1 VAE from a diffusers folder (its own config.json; `config`, if given, must equal it), a
    pipeline folder's vae/, or one file (.pth or .safetensors) in either naming with `config` (default:
    Wan 2.1's). Built on the meta device and filled with the file's tensors, cast to `dtype`."""
    path = Path(path)
    if path.is_dir():
        folder = path if (path / DIFFUSERS_CONFIG).is_file() else path / "vae"
        if not (folder / DIFFUSERS_CONFIG).is_file():
            raise ValueError(f"{path}: no {DIFFUSERS_CONFIG} in it nor in {path / 'vae'}; expected a "
                             f"diffusers AutoencoderKLWan folder, a pipeline folder, or a {ORIGINAL_FILE}")
        file_config = read_diffusers_config(folder / DIFFUSERS_CONFIG)
        if config is not None and config != file_config:
            raise ValueError(f"{folder / DIFFUSERS_CONFIG} describes {file_config}, not the config passed, "
                             f"{config}")
        config, weights = file_config, folder / DIFFUSERS_WEIGHTS
        if not weights.is_file():
            found = sorted(p.name for p in folder.iterdir())
            raise ValueError(f"{folder}: no {DIFFUSERS_WEIGHTS} (found {found})")
        state, source = load_file(str(weights)), str(weights)
    elif path.is_file():
        state, source = _read_tensors(path), str(path)
    else:
        raise FileNotFoundError(f"Wan VAE weights: {path} is neither a file nor a folder")
    with torch.device("meta"):  # no random init of weights about to be replaced
        vae = WanVAE(config or WanVAEConfig())
    expected = _shapes(vae)
    if _is_original(state):
        names = {k: original_key(k, vae.config.num_res_blocks) for k in expected}
        renamed = {names[k]: shape for k, shape in expected.items()}
        check_state_dict(renamed, state, f"{source} (Wan's layout)")
        state = {k: state[names[k]] for k in expected}
    check_state_dict(expected, state, source)
    vae.load_state_dict({k: v.to(dtype) for k, v in state.items()}, assign=True)
    return vae


def save_original(vae: WanVAE, path: str | Path) -> Path:
    """Write `vae` as Wan releases it: one torch pickle of a state dict under Wan's names."""
    n = vae.config.num_res_blocks
    torch.save({original_key(k, n): v.detach().cpu().contiguous() for k, v in vae.state_dict().items()}, path)
    return Path(path)


def save_diffusers(vae: WanVAE, folder: str | Path) -> Path:
    """Write `vae` as diffusers' `save_pretrained` does: config.json + diffusion_pytorch_model.safetensors."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"_class_name": "AutoencoderKLWan", "_diffusers_version": DIFFUSERS_VERSION}
    (folder / DIFFUSERS_CONFIG).write_text(json.dumps({**meta, **vae.config.to_dict()}, indent=2))
    tensors = {k: v.detach().cpu().contiguous() for k, v in vae.state_dict().items()}
    save_file(tensors, str(folder / DIFFUSERS_WEIGHTS))
    return folder


def random_wan_vae(config: WanVAEConfig | None = None, seed: int = 0) -> WanVAE:
    """A VAE with seeded random weights, norm gains and biases included (so no tensor is left at a neutral
    value that would hide a misnamed one); the global RNG is untouched."""
    with torch.device("meta"):
        vae = WanVAE(config or WanVAEConfig.preset("tiny"))
    vae.to_empty(device="cpu")
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in vae.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if name.endswith("gamma"):
                p.copy_(1.0 + 0.2 * noise)
            else:
                p.copy_(0.1 * noise if name.endswith("bias") else noise / max(p[0].numel(), 1) ** 0.5)
        vae.decoder.conv_out.weight.mul_(0.25)  # pixels mostly inside [-1, 1], as a trained VAE's are
    return vae


def write_tiny_wan_vae(directory: str | Path, layout: str = "original", config: WanVAEConfig | None = None,
                       seed: int = 0) -> Path:
    """A random tiny Wan VAE on disk, a stand-in for the real one in tests: layout "original" writes
    directory/Wan2.1_VAE.pth (load it with the same `config`), "diffusers" a folder directory/vae/ as a
    pipeline holds it. Returns the file or the pipeline folder."""
    vae, directory = random_wan_vae(config, seed), Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if layout == "original":
        return save_original(vae, directory / ORIGINAL_FILE)
    if layout == "diffusers":
        save_diffusers(vae, directory / "vae")
        return directory
    raise ValueError(f"write_tiny_wan_vae: layout must be 'original' or 'diffusers', got {layout!r}")
