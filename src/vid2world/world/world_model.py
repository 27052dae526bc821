"""`WorldModel`: a causal video UNet, a codec, a noise schedule and sampler settings, rolled out frame by frame."""

from __future__ import annotations

import inspect
import json
import math
import numbers
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from ..diffusion.guidance import GuidanceConfig
from ..io.atomic import AtomicDirectory, check_replaceable
from ..diffusion.schedule import NoiseSchedule, ScheduleConfig
from ..diffusion.timesteps import SPACINGS, ddim_timesteps, history_level
from ..io.progress import progress_bar
from ..models.clip import CLIPVisionConfig
from ..models.codec import CODECS, IdentityCodec, codec_from_config
from ..models.conditioning import ImageConditioner
from ..models.config import UNetConfig
from ..models.precision import PRECISIONS, autocast_weights, weights_version
from ..models.resampler import ResamplerConfig
from ..models.unet import VideoUNet
from ..models.vae import VAEConfig
from ..models.validation import StateDictError, check_state_dict
from .denoise import followed_actions
from .frames import actions_to_tensor, frames_to_tensor, tensor_to_frames
from .anchor import IMAGE_CONDS, first_in_view
from .session import RolloutSession, eval_mode

CONFIG_NAME, WEIGHTS_NAME = "config.json", "model.safetensors"
SAMPLING_PRESETS = ("quality", "fast")  # `--quality` / `--fast`: SamplerConfig.steps / .fast_steps and guidance
# components with weights of their own, each in its own file (diffusers-style); the UNet's file stays WEIGHTS_NAME
COMPONENT_FILES = {"codec": "codec.safetensors", "conditioner": "conditioner.safetensors"}


@dataclass(frozen=True)
class SamplerConfig:
    """How frames are sampled. Defaults follow the official release (method.md section 12, `release`/`strict`)."""

    steps: int = 50
    spacing: str = "trailing"
    eta: float = 1.0
    history_level: int | str = "penultimate"  # "penultimate" (official: 39 at 50 steps) | "clean" | int (paper: 20)
    window: int | None = None  # frames the model sees at once (history + new); None: the UNet's training length
    slide: bool = True  # roll the window along for rollouts longer than it; False: longer rollouts are an error
    cache: bool = True  # KV/conv/norm cache (strictly causal models); False: recompute the window every step
    final_alpha_one: bool = False  # lvdm ends at abar_0, not 1
    guidance: GuidanceConfig = field(default_factory=GuidanceConfig)
    # the frame whose latent (and CLIP tokens) condition a sliding window: its first (the release) or the episode's
    image_cond: str = "window_first"
    fast_steps: int = 8  # the `fast` preset's DDIM steps (interactive play); `quality` uses `steps`
    fast_guidance: float | None = None  # the `fast` preset's guidance scale; None: `guidance.scale`
    # the UNet's matmuls and convs: fp32, or bf16 autocast (AMX / AVX-512 BF16 CPUs, GPUs); the sampler stays fp32
    precision: str = "fp32"
    fast_precision: str | None = None  # the `fast` preset's; None: `precision`

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or not 1 <= self.steps <= 1000:
            raise ValueError(f"steps must be an integer in 1..1000, got {self.steps!r}")
        if self.spacing not in SPACINGS:
            raise ValueError(f"spacing must be one of {SPACINGS}, got {self.spacing!r}")
        if not (isinstance(self.eta, (int, float)) and 0 <= self.eta <= 1):
            raise ValueError(f"eta must be in [0, 1], got {self.eta!r}")
        if self.image_cond not in IMAGE_CONDS:
            raise ValueError(f"image_cond must be one of {IMAGE_CONDS}, got {self.image_cond!r}")
        if not isinstance(self.fast_steps, int) or not 1 <= self.fast_steps <= 1000:
            raise ValueError(f"fast_steps must be an integer in 1..1000, got {self.fast_steps!r}")
        if self.window is not None and self.window < 1:
            raise ValueError(f"window must be >= 1 frame, got {self.window}")
        for key, value in (("precision", self.precision), ("fast_precision", self.fast_precision or "fp32")):
            if value not in PRECISIONS:
                raise ValueError(f"{key} must be one of {PRECISIONS}, got {value!r}")
        history_level(ddim_timesteps(self.steps, self.spacing), self.history_level)  # validates

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SamplerConfig":
        d = dict(d)
        d["guidance"] = GuidanceConfig.from_dict(d.get("guidance", {}))
        return cls(**d)


@dataclass(frozen=True)
class SamplingPreset:
    """What `--fast` / `--quality` resolve to for one model."""

    steps: int
    guidance: float
    precision: str = "fp32"


class WorldModel(nn.Module):
    """Predicts the next frame from past frames and actions.

    `WorldModel(unet, codec=None)`: pixel space when `codec` is None. `fps` is the frame-rate condition (Vid2World
    uses 3 for every dataset); `concat_first_frame` (default: the UNet takes twice the codec's channels) feeds the
    first context frame's latent, repeated, as extra input channels (DynamiCrafter's hybrid conditioning);
    `conditioner` (an `ImageConditioner`) turns the first context frame into the cross-attention context.
    """

    def __init__(self, unet: VideoUNet, codec: nn.Module | None = None, schedule: ScheduleConfig | None = None,
                 sampler: SamplerConfig | None = None, *, fps: int | None = None,
                 concat_first_frame: bool | None = None, conditioner: ImageConditioner | None = None,
                 metadata: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.unet = unet
        self.codec = codec or IdentityCodec()
        self.conditioner = conditioner
        if conditioner is not None and unet.config.context_dim != conditioner.width:
            raise ValueError(f"conditioner width {conditioner.width} != UNet context_dim {unet.config.context_dim}")
        self.schedule = NoiseSchedule(schedule)
        self.sampler = sampler or SamplerConfig()
        self._bf16_unet: tuple[tuple[int, ...], VideoUNet] | None = None  # (weights version, copy): sampling_unet
        self.fps = fps
        channels = self.codec.latent_channels
        if concat_first_frame is None:
            concat_first_frame = unet.config.in_channels == 2 * channels
        expected_in = channels * (2 if concat_first_frame else 1)
        if unet.config.in_channels != expected_in or unet.config.out_channels != channels:
            raise ValueError(f"UNet channels in={unet.config.in_channels} out={unet.config.out_channels} do not fit a "
                             f"codec of {channels} channels (expected in={expected_in}, out={channels})")
        self.concat_first_frame = concat_first_frame
        self.metadata = dict(metadata or {})

    # ---- properties ----------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def action_dim(self) -> int | None:
        space = self.unet.config.action_space
        return None if space is None else space.dim

    @property
    def window(self) -> int:
        return self.sampler.window or self.unet.config.temporal_length

    # ---- checks --------------------------------------------------------------------------------------------
    def sampling(self, preset: str | None) -> SamplingPreset:
        """DDIM steps, guidance and precision of a sampling preset: `quality` (or None) the sampler's own, `fast`
        its `fast_steps`, `fast_guidance` and `fast_precision`."""
        if preset is not None and preset not in SAMPLING_PRESETS:
            raise ValueError(f"sampling preset must be one of {SAMPLING_PRESETS}, got {preset!r}")
        s = self.sampler
        if preset == "fast":
            return SamplingPreset(s.fast_steps, s.guidance.scale if s.fast_guidance is None else s.fast_guidance,
                                  s.fast_precision or s.precision)
        return SamplingPreset(s.steps, s.guidance.scale, s.precision)

    def check_step_action(self, action: Any, batch: int) -> Tensor | None:
        """One step's action [B, A] (numpy or torch) as a float tensor on the model's device."""
        if self.action_dim is None:
            if action is not None:
                raise ValueError("action: this world model has no action input; call step() without one")
            return None
        if action is None:
            raise ValueError(f"action: expected [B={batch}, A={self.action_dim}], got None")
        return actions_to_tensor(action, "action", batch, self.action_dim, self.device, one_step=True)

    def _settings(self, steps: int | None, guidance: float | None, cache: bool | None, precision: str | None
                  ) -> SamplerConfig:
        changes: dict[str, Any] = {} if precision is None else {"precision": precision}
        if steps is not None:
            changes["steps"] = steps
        if guidance is not None:
            if not isinstance(guidance, (int, float)) or not math.isfinite(guidance):
                raise ValueError(f"guidance must be a finite number (1 = off), got {guidance!r}")
            changes["guidance"] = replace(self.sampler.guidance, scale=float(guidance))
        if cache is not None:
            changes["cache"] = bool(cache)
        return replace(self.sampler, **changes) if changes else self.sampler

    # ---- rollouts ------------------------------------------------------------------------------------------
    def session(self, context_frames: Any, context_actions: Any = None, steps: int | None = None,
                guidance: float | None = None, seed: int = 0, cache: bool | None = None,
                context: Tensor | None = None, precision: str | None = None) -> RolloutSession:
        """A stateful rollout: start from `context_frames` [B, T0, H, W, 3] uint8 and the actions between them
        (`context_actions` [B, T0-1, A] = a_0 .. a_{T0-2}); then `session.step(action)` -> the next frame.

        `cache=False` recomputes the window at every step (the official algorithm; needed for `clip`-norm models).
        `precision` "bf16" runs the UNet under bf16 autocast (None: the sampler's `precision`).
        """
        settings = self._settings(steps, guidance, cache, precision)  # validate before any work
        pixels, as_numpy = frames_to_tensor(context_frames, "context_frames", self.device)
        return self._pixel_session(pixels, as_numpy, context_actions, settings, seed, context)

    def _pixel_session(self, pixels: Tensor, as_numpy: bool, context_actions: Any, settings: SamplerConfig,
                       seed: int, context: Tensor | None) -> RolloutSession:
        anchor = first_in_view(pixels.shape[2], settings.window or self.window, settings.image_cond)
        own_context = context is None and self.conditioner is not None  # re-derived when the anchor moves
        latents, frame_actions, context = self._encode_pixels(pixels, context_actions, seed, context, anchor)
        return self._start_session(latents, frame_actions, settings, seed, context, as_numpy, own_context)

    def encode_context(self, context_frames: Any, context_actions: Any = None, seed: int = 0,
                       context: Tensor | None = None,
                       anchor: int = 0) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Context frames [B, T0, H, W, 3] uint8 and the actions between them ([B, T0-1, A]) as a session starts
        from them: (latents [B, C, T0, h, w], the action each frame follows [B, T0, A] or None, cross-attention
        context (of frame `anchor`) or None)."""
        pixels, _ = frames_to_tensor(context_frames, "context_frames", self.device)
        return self._encode_pixels(pixels, context_actions, seed, context, anchor)

    def _encode_pixels(self, pixels: Tensor, context_actions: Any, seed: int, context: Tensor | None,
                       anchor: int = 0) -> tuple[Tensor, Tensor | None, Tensor | None]:
        b, t0 = pixels.shape[0], pixels.shape[2]
        frame_actions = None
        if self.action_dim is not None:
            if t0 > 1 and context_actions is None:
                raise ValueError(f"context_actions: expected [B={b}, T0-1={t0 - 1}, A={self.action_dim}] for "
                                 f"{t0} context frames, got None")
            given = torch.zeros(b, 0, self.action_dim, device=self.device)
            if t0 > 1:
                given = actions_to_tensor(context_actions, "context_actions", b, self.action_dim, self.device)
                if given.shape[1] != t0 - 1:
                    raise ValueError(f"context_actions: expected T0-1={t0 - 1} actions for {t0} context frames, got "
                                     f"{given.shape[1]}")
            frame_actions = followed_actions(given)  # frame 0 follows no action
        with torch.no_grad(), eval_mode(self):
            # the VAE's posterior draw gets its own stream, so the frames depend on the seed alone
            latents = self.codec.encode(pixels, generator=torch.Generator().manual_seed(int(seed) + 1))
            latents = latents.to(next(self.unet.parameters()).dtype)
            if context is None and self.conditioner is not None:
                context = self.conditioner(pixels[:, :, anchor]).to(latents.dtype)
        return latents, frame_actions, context

    def latent_session(self, latents: Tensor, frame_actions: Tensor | None = None, steps: int | None = None,
                       guidance: float | None = None, seed: int = 0, cache: bool | None = None,
                       context: Tensor | None = None, as_numpy: bool = False, precision: str | None = None
                       ) -> RolloutSession:
        """A session started from context latents [B, C, T0, h, w] and the action each one follows
        ([B, T0, A], frame 0's being zeros); for callers that work in latent space (benchmarks, training)."""
        return self._start_session(latents, frame_actions, self._settings(steps, guidance, cache, precision), seed,
                                   context, as_numpy)

    def sampling_unet(self, precision: str) -> VideoUNet:
        """The UNet a session samples with: this model's own for fp32; for bf16 a copy whose linear and conv
        weights are bf16 already (`autocast_weights`: the same numbers as autocast over this UNet, without casting
        every weight at every frame), made once and again whenever the weights change."""
        if precision == "fp32":
            return self.unet
        version = weights_version(self.unet)
        if self._bf16_unet is None or self._bf16_unet[0] != version:
            self._bf16_unet = (version, autocast_weights(self.unet))
        return self._bf16_unet[1]

    def _start_session(self, latents: Tensor, frame_actions: Tensor | None, settings: SamplerConfig, seed: int,
                       context: Tensor | None, as_numpy: bool, own_context: bool = False) -> RolloutSession:
        t0 = latents.shape[2]
        if not settings.slide and t0 >= self.window:
            raise ValueError(f"context_frames: {t0} context frames leave no room in a window of {self.window} frames "
                             "and sliding is off (SamplerConfig.slide=False); give fewer frames or enable sliding")
        if settings.cache and not self.unet.config.strictly_causal:
            raise ValueError(f"cache=True needs a strictly causal UNet (temporal_norm 'frame' or 'causal'), this one "
                             f"has causal={self.unet.config.causal}; pass cache=False to recompute the window at "
                             "every step")
        return RolloutSession(self, settings, latents, frame_actions, seed=seed, context=context, as_numpy=as_numpy,
                              own_context=own_context)

    @torch.no_grad()
    def rollout(self, context_frames: Any, actions: Any = None, steps: int | None = None,
                guidance: float | None = None, seed: int = 0, cache: bool | None = None, horizon: int | None = None,
                progress: bool = False, context: Tensor | None = None, precision: str | None = None) -> Any:
        """Autoregressive rollout, batched: returns the N generated frames [B, N, H, W, 3] uint8.

        `actions` [B, T0-1+N, A] = a_0 .. a_{T0+N-2}: frame t follows action t-1. Models without actions take
        `horizon=N` instead (a model with actions accepts `horizon` only when it equals the N its actions imply).
        The networks run in eval mode whatever mode the model is in (see `eval_mode`); `precision` as in `session`.
        """
        settings = self._settings(steps, guidance, cache, precision)
        pixels, as_numpy = frames_to_tensor(context_frames, "context_frames", self.device)
        b, t0 = pixels.shape[0], pixels.shape[2]
        all_actions, n = self._rollout_actions(actions, horizon, b, t0)
        if not settings.slide and t0 + n > self.window:
            raise ValueError(f"a rollout of {t0}+{n} frames exceeds the window of {self.window} frames and sliding "
                             "is off (SamplerConfig.slide=False)")
        with eval_mode(self):
            sess = self._pixel_session(pixels, as_numpy, None if all_actions is None else all_actions[:, : t0 - 1],
                                       settings, seed, context)
            generated = torch.cat([sess.step_latent(None if all_actions is None else all_actions[:, t0 - 1 + i])
                                   for i in progress_bar(range(n), desc="rollout", unit="frame", enabled=progress)],
                                  dim=2)
            return tensor_to_frames(self.codec.decode(generated), as_numpy)

    def _rollout_actions(self, actions: Any, horizon: Any, b: int, t0: int) -> tuple[Tensor | None, int]:
        """`rollout`'s actions as a tensor (None without an action input) and the number of frames N to generate."""
        if horizon is not None and (isinstance(horizon, bool) or not isinstance(horizon, numbers.Integral)
                                    or horizon < 1):
            raise ValueError(f"horizon: expected the number of frames to generate (an integer >= 1), got {horizon!r}")
        if self.action_dim is None:
            if actions is not None:
                raise ValueError("actions: this world model has no action input; pass horizon=N instead")
            if horizon is None:
                raise ValueError("horizon: expected the number of frames to generate (>= 1), got None")
            return None, int(horizon)
        if actions is None:
            raise ValueError(f"actions: expected [B={b}, T0-1+N, A={self.action_dim}], got None")
        all_actions = actions_to_tensor(actions, "actions", b, self.action_dim, self.device)
        n = all_actions.shape[1] - (t0 - 1)
        if n < 1:
            raise ValueError(f"actions: {all_actions.shape[1]} actions for {t0} context frames generate no frame; "
                             f"expected T0-1+N = {t0 - 1}+N actions with N >= 1")
        if horizon is not None and horizon != n:
            raise ValueError(f"horizon={horizon} conflicts with the actions: {all_actions.shape[1]} actions after "
                             f"{t0} context frames generate N={n} frames; pass horizon={n} or leave it out")
        return all_actions, n

    # ---- persistence ---------------------------------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        return {"format": "vid2world.WorldModel", "version": 1, "unet": self.unet.config.to_dict(),
                "codec": self.codec.config(), "schedule": self.schedule.config.to_dict(),
                "sampler": self.sampler.to_dict(), "fps": self.fps, "concat_first_frame": self.concat_first_frame,
                "conditioner": None if self.conditioner is None else self.conditioner.config(),
                "metadata": self.metadata}

    def _component_states(self) -> dict[str, dict[str, Tensor]]:
        """The weights saved beside the UNet's, by component (only components that have any)."""
        states = {name: _cpu_state(getattr(self, name)) for name in COMPONENT_FILES if getattr(self, name) is not None}
        return {name: state for name, state in states.items() if state}

    def save_pretrained(self, directory: str | os.PathLike, extra_files: Mapping[str, str] | None = None, *,
                        overwrite: bool = False) -> Path:
        """Write `config.json`, `model.safetensors` (the UNet) and the other components' weights into `directory`,
        with `extra_files` (name -> text) beside them; atomically: a temporary sibling, then renamed into place.

        `directory` must be new or empty; an existing world model is replaced only with `overwrite=True`, and any
        other non-empty directory is refused (`check_save_target`)."""
        target = check_save_target(directory, overwrite)
        with AtomicDirectory(target, overwrite=overwrite) as tmp:
            save_file(_cpu_state(self.unet), str(tmp.path / WEIGHTS_NAME), metadata={"format": "vid2world.VideoUNet"})
            for name, component_state in self._component_states().items():
                save_file(component_state, str(tmp.path / COMPONENT_FILES[name]),
                          metadata={"format": f"vid2world.{name}"})
            (tmp.path / CONFIG_NAME).write_text(json.dumps(self.config_dict(), indent=1))
            for name, text in (extra_files or {}).items():
                (tmp.path / name).write_text(text)
        return target

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, device: str | torch.device = "cpu") -> "WorldModel":
        """Load a directory written by `save_pretrained` (or `vid2world convert`)."""
        path = Path(directory)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such directory; expected a world-model directory (written by "
                                    "save_pretrained or `vid2world convert`)")
        if not path.is_dir():
            raise ValueError(f"{path}: is a file, not a world-model directory; a checkpoint file becomes one with "
                             f"`vid2world convert --base {path} --preset P --out DIR` (see `vid2world inspect {path}`)")
        config_path, weights_path = path / CONFIG_NAME, path / WEIGHTS_NAME
        for p in (config_path, weights_path):
            if not p.is_file():
                raise FileNotFoundError(f"{p}: missing; a world-model directory holds {CONFIG_NAME} and {WEIGHTS_NAME}")
        model = cls._from_config(config_path, read_config(config_path))
        try:
            state = load_file(str(weights_path))
            model.unet.load_state_dict(state)
        except StateDictError as err:
            raise ValueError(f"{weights_path}: {err}") from None
        except Exception as err:  # safetensors raises its own error types for truncated or foreign files
            if isinstance(err, ValueError):
                raise ValueError(f"{path}: {err}") from None
            raise ValueError(f"{weights_path}: cannot read weights ({err})") from None
        for name, filename in COMPONENT_FILES.items():
            module = getattr(model, name)
            if module is None or not module.state_dict():
                continue
            component_path = path / filename
            if not component_path.is_file():
                raise FileNotFoundError(f"{component_path}: missing; {config_path} has a {name} with weights")
            _load_component(module, component_path)
        return model.eval().to(device)

    @classmethod
    def _from_config(cls, config_path: Path, config: dict[str, Any]) -> "WorldModel":
        """The model `config` (checked by `read_config`) describes, with fresh weights; the networks' own
        objections (channels that do not fit, a codec that refuses its settings) name the file and the key."""
        unet = _config_part(config_path, "unet", lambda: VideoUNet(UNetConfig.from_dict(config["unet"])))
        codec = _config_part(config_path, "codec", lambda: codec_from_config(config["codec"]))
        conditioner = None
        if config.get("conditioner") is not None:
            conditioner = _config_part(config_path, "conditioner",
                                       lambda: ImageConditioner.from_config(config["conditioner"]))
        try:
            return cls(unet.eval(), codec, ScheduleConfig.from_dict(config["schedule"]),
                       SamplerConfig.from_dict(config["sampler"]), fps=config.get("fps"),
                       concat_first_frame=config.get("concat_first_frame"), conditioner=conditioner,
                       metadata=config.get("metadata"))
        except ValueError as err:
            raise ValueError(f"{config_path}: {err}") from None


def is_world_model_dir(directory: str | os.PathLike) -> bool:
    """Whether `directory` holds a world model (a `config.json` of format `vid2world.WorldModel`)."""
    try:
        return json.loads((Path(directory) / CONFIG_NAME).read_text()).get("format") == "vid2world.WorldModel"
    except (OSError, ValueError, AttributeError):
        return False


# What `from_pretrained` reads from config.json besides "format": per key, what it holds, its JSON type, and
# whether it may be null or left out (a config.json written by save_pretrained has every key).
_OBJECT, _NUMBER, _BOOLEAN = "a JSON object", "a finite number", "true or false"
CONFIG_KEYS: dict[str, tuple[str, str, bool]] = {
    "unet": ("the UNet's architecture", _OBJECT, False),
    "codec": ("the codec's settings", _OBJECT, False),
    "schedule": ("the noise schedule", _OBJECT, False),
    "sampler": ("the sampler's settings", _OBJECT, False),
    "fps": ("the frame-rate condition", _NUMBER, True),
    "concat_first_frame": ("whether the UNet takes the first frame's latent", _BOOLEAN, True),
    "conditioner": ("the image conditioner's settings", _OBJECT, True),
    "metadata": ("the model's metadata", _OBJECT, True),
}
_JSON_TYPES = ((dict, "object"), (list, "array"), (str, "string"), (bool, "boolean"),
               ((int, float), "number"))


def read_config(config_path: Path) -> dict[str, Any]:
    """A world model's `config.json`, checked against all that `from_pretrained` reads from it: each key's
    type and each component's settings (parsed, no network built). ValueError naming the file and the key."""
    try:
        config = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{config_path}: not valid JSON ({err})") from None
    if not isinstance(config, dict):
        kind = next((name for types, name in _JSON_TYPES if isinstance(config, types)), "null")
        raise ValueError(f"{config_path}: a JSON {kind}, expected a JSON object (a world model's settings, "
                         "as WorldModel.save_pretrained or `vid2world convert` write them)")
    if config.get("format") != "vid2world.WorldModel":
        raise ValueError(f"{config_path}: key 'format' is {config.get('format')!r}, expected "
                         "'vid2world.WorldModel' (a world-model directory written by `vid2world convert` or "
                         "WorldModel.save_pretrained)")
    for key, (what, kind, optional) in CONFIG_KEYS.items():
        if key not in config and not optional:
            raise ValueError(f"{config_path}: key {key!r} is missing, expected {what} ({kind})")
        value = config.get(key)
        if not (value is None and optional) and not _is_json(value, kind):
            text = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
            raise ValueError(f"{config_path}: key {key!r} is {text}, expected {what} "
                             f"({kind}{' or null' if optional else ''})")
    _config_part(config_path, "unet", lambda: UNetConfig.from_dict(config["unet"]))
    _config_part(config_path, "codec", lambda: _check_codec(config["codec"]))
    _config_part(config_path, "schedule", lambda: ScheduleConfig.from_dict(config["schedule"]))
    _config_part(config_path, "sampler", lambda: SamplerConfig.from_dict(config["sampler"]))
    if config.get("conditioner") is not None:
        _config_part(config_path, "conditioner", lambda: _check_conditioner(config["conditioner"]))
    return config


def check_config(config_path: Path) -> dict[str, Any]:
    """`read_config`, then the model it describes built on the meta device (no memory, no weights read): all
    that `from_pretrained` refuses before reading weights, such as UNet channels that do not fit the codec."""
    config = read_config(config_path)
    with torch.device("meta"):
        WorldModel._from_config(config_path, config)
    return config


def _is_json(value: Any, kind: str) -> bool:
    if kind == _OBJECT:
        return isinstance(value, dict)
    if kind == _BOOLEAN:
        return isinstance(value, bool)
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _config_part(config_path: Path, key: str, parse: Callable[[], Any]) -> Any:
    """`parse()` of the settings under `key`, any error it raises as a ValueError naming file and key."""
    try:
        return parse()
    except KeyError as err:
        raise ValueError(f"{config_path}: key {key!r}: missing key {err}") from None
    except (TypeError, ValueError, AttributeError) as err:
        raise ValueError(f"{config_path}: key {key!r}: {err}") from None


def _check_codec(config: Mapping[str, Any]) -> None:
    """A codec's settings, checked without building it (the SD VAE takes seconds and 330 MB)."""
    kind = config.get("kind")
    if kind not in CODECS:
        raise ValueError(f"unknown codec kind {kind!r}; available: {sorted(CODECS)}")
    takes = set(inspect.signature(CODECS[kind]).parameters)
    unexpected = sorted(set(config) - takes - {"kind"})
    if unexpected:
        raise ValueError(f"unexpected settings {unexpected} for codec kind {kind!r}; it takes "
                         f"{sorted(takes)}")
    if isinstance(config.get("vae"), Mapping):
        VAEConfig.from_dict(config["vae"])


def _check_conditioner(config: Mapping[str, Any]) -> None:
    """An image conditioner's settings, checked without building its CLIP tower."""
    if config.get("kind") != ImageConditioner.kind:
        raise ValueError(f"conditioner kind {config.get('kind')!r} is not {ImageConditioner.kind!r}")
    CLIPVisionConfig.from_dict(config["image_encoder"])
    ResamplerConfig.from_dict(config["image_proj"])


def check_save_target(directory: str | os.PathLike, overwrite: bool = False,
                      keep: Iterable[str | os.PathLike] = ()) -> Path:
    """Raise unless `save_pretrained` may write `directory`: new, empty, or (with `overwrite`) a world model; never
    a directory holding a path in `keep` (the input being converted). Returns it as an absolute path."""
    target = check_replaceable(directory, overwrite=True, keep=keep)
    if not target.is_dir() or not any(target.iterdir()):
        return check_replaceable(target)
    if not is_world_model_dir(target):
        raise FileExistsError(f"{target}: not empty and not a world-model directory (no {CONFIG_NAME} of format "
                              "'vid2world.WorldModel'); refusing to replace it: give a new or an empty directory")
    if not overwrite:
        raise FileExistsError(f"{target}: holds a world model already; give a new directory, or pass overwrite=True "
                              "to replace it")
    return target


def _cpu_state(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}


def _load_component(module: nn.Module, path: Path) -> None:
    """Strict load of a component's weights, naming the file and the keys that do not fit."""
    try:
        state = load_file(str(path))
    except Exception as err:
        raise ValueError(f"{path}: cannot read weights ({err})") from None
    check_state_dict({k: tuple(v.shape) for k, v in module.state_dict().items()}, state, source=str(path))
    module.load_state_dict(state)
