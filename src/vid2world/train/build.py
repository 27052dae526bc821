"""The model a training run starts from, built from `TrainConfig.model` and checked against the dataset.

- `pretrain`: a full-sequence (non-causal) video model without actions.
- `world-model`: a causal model with the dataset's action space; a full-sequence start is causalized first
  (`model.transfer`, `model.norm`), a causal start (e.g. a world model being fine-tuned further) is kept.

Starting points (`model.init`): nothing (random weights for every part of `model.preset`), a world-model directory
(`WorldModel.from_pretrained`) or a DynamiCrafter / released Vid2World checkpoint file (as `vid2world convert`).
Every mismatch with the dataset (action width, frame size) is an error here, before the first step.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..causal.convert import causalize
from ..checkpoints.convert import ConvertOptions, convert_checkpoint
from ..checkpoints.registry import MODELS, PRETRAINED
from ..data.spec import DatasetMeta
from ..models.action_groups import latent_frame_count
from ..models.config import ActionSpace, CausalConfig
from ..world.world_model import SamplerConfig, WorldModel
from .config import ConfigError, TrainConfig


def parse_action_space(text: str) -> ActionSpace:
    """`continuous:A` or `discrete:K` (multi-hot over K entries)."""
    kind, _, width = text.partition(":")
    if kind not in ("continuous", "discrete") or not width.isdigit() or int(width) < 1:
        raise ConfigError(f"model.action_space: expected 'continuous:A' or 'discrete:K', got {text!r}")
    return ActionSpace.continuous(int(width)) if kind == "continuous" else ActionSpace.multi_hot(int(width))


def wanted_action_space(config: TrainConfig, meta: DatasetMeta) -> ActionSpace | None:
    """The action space the run trains: none for `pretrain`; else `model.action_space`, or the dataset's own. A
    configured width that is not the dataset's is an error naming both."""
    if config.mode == "pretrain":
        return None
    if meta.actions is None:
        raise ConfigError(f"{config.data.path}: mode world-model needs actions, but the dataset has none "
                          "(recorded with actions off?); use mode=pretrain for action-free video")
    dataset_space = meta.actions.model_space()
    if config.model.action_space is None:
        return dataset_space
    space = parse_action_space(config.model.action_space)
    if space.dim != dataset_space.dim:
        names = list(meta.actions.names[:4])
        raise ConfigError(f"model.action_space {config.model.action_space!r} has width {space.dim}, but "
                          f"{config.data.path} has actions of width {dataset_space.dim} (first: {names})")
    return space


def _random_model(config: TrainConfig, causal: CausalConfig | None, actions: ActionSpace | None) -> WorldModel:
    name, overrides = config.model.preset, dict(config.model.unet)
    overrides.setdefault("temporal_length", config.data.length)
    if name not in MODELS:
        raise ConfigError(f"model.preset: unknown model {name!r}; available: {sorted(MODELS)} (latent, with a VAE and "
                          f"image encoders: {sorted(PRETRAINED)})")
    spec = MODELS[name]
    return spec.world_model(spec.unet.replace(**overrides, causal=causal, action_space=actions))


def _adapted(model: WorldModel, config: TrainConfig, actions: ActionSpace | None) -> WorldModel:
    """A loaded model made fit for the mode: causalized (world-model) and given action layers if it has none."""
    unet, source = model.unet, config.model.init
    have = unet.config.action_space
    have_dim = model.action_dim  # one video frame's (a backbone behind a temporal codec takes k of them)
    length = clip_latent_frames(model, config)
    if config.mode == "pretrain":
        if unet.is_causal:
            raise ConfigError(f"model.init {source}: a causal world model; mode pretrain trains full-sequence video "
                              "models (start from a pretrained video model, or use mode=world-model)")
        if unet.config.temporal_length != length:
            model.sampler = replace(model.sampler, window=length)
        return model
    if have is not None and actions is not None and (have.kind, have_dim) != (actions.kind, actions.dim):
        raise ConfigError(f"model.init {source}: the model takes {have.kind} actions of width {have_dim}, but the "
                          f"run trains {actions.kind} actions of width {actions.dim} (from {config.data.path})")
    if not unet.is_causal:
        unet, _ = causalize(unet, config.model.transfer, config.model.norm, actions, seed=config.seed,
                            temporal_compression=model.frames_per_step)
    elif have is None:
        raise ConfigError(f"model.init {source}: a causal model without action layers; start from its "
                          "full-sequence parent instead")
    window = None if unet.config.temporal_length == length else length
    sampler = SamplerConfig(cache=unet.config.strictly_causal, window=window)  # roll out as trained
    return WorldModel(unet, model.codec, model.schedule.config, sampler, fps=model.fps, concat_first_frame=model.concat_first_frame, conditioner=model.conditioner,
                      metadata=model.metadata)


def clip_latent_frames(model: WorldModel, config: TrainConfig) -> int:
    """The latent frames a training clip of `data.length` video frames encodes to (1 + (N-1)/k for a codec
    that compresses time by k); a length the codec cannot take is a config error naming the key."""
    k = model.frames_per_step
    if k == 1:
        return config.data.length
    try:
        return latent_frame_count(config.data.length, k)
    except ValueError as err:
        raise ConfigError(f"data.length {config.data.length}: this model's codec compresses time {k}x; {err}") from None


def build_model(config: TrainConfig, meta: DatasetMeta) -> WorldModel:
    """The model to train (float32, CPU), checked against the dataset's action width and frame size."""
    actions = wanted_action_space(config, meta)
    causal = None if config.mode == "pretrain" else CausalConfig(config.model.norm)
    init = config.model.init
    if init is not None and config.model.unet:
        raise ConfigError(f"model.unet {config.model.unet}: architecture overrides apply to random initialisation "
                          f"only; model.init {init} brings its own architecture")
    if init is None:
        model = _random_model(config, causal, actions)
    elif Path(init).is_dir():
        model = _adapted(WorldModel.from_pretrained(init), config, actions)
    elif Path(init).is_file():
        if config.mode == "pretrain":
            raise ConfigError(f"model.init {init}: mode pretrain starts from random weights or a world-model "
                              "directory; checkpoint files are converted into world models (mode=world-model)")
        model, _ = convert_checkpoint(init, ConvertOptions(preset=config.model.preset, transfer=config.model.transfer,
                                                           norm=config.model.norm, action_space=actions,
                                                           seed=config.seed))
        model = _adapted(model, config, actions)
    else:
        raise ConfigError(f"model.init {init}: no such file or directory")
    check_frame_size(model, config)
    model.unet.set_gradient_checkpointing(config.model.gradient_checkpointing)
    return model


def check_frame_size(model: WorldModel, config: TrainConfig) -> None:
    """Frames must divide into the UNet's levels after the codec's downsampling."""
    factor = getattr(model.codec, "downsample", 1) * model.unet.config.downsample_factor
    h, w = config.data.size
    if h % factor or w % factor:
        raise ConfigError(f"data.size {[h, w]}: height and width must be multiples of {factor} (codec x UNet "
                          f"downsampling of preset {config.model.preset!r})")
