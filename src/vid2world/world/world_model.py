"""`WorldModel`: a causal video backbone (models/backbone.py), a codec, a noise schedule and sampler settings,
rolled out frame by frame."""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from ..diffusion.schedule import NoiseSchedule, ScheduleConfig
from ..io.progress import progress_bar
from ..models.action_groups import group_actions, latent_frame_count
from ..models.backbone import Backbone
from ..models.codec import IdentityCodec
from ..models.embeddings import followed_actions
from ..models.precision import autocast_weights, fitting_precision, weights_version
from . import storage
from .anchor import first_in_view
from .frames import actions_to_tensor, frames_to_tensor, tensor_to_frames
from .sampling import SAMPLING_PRESETS, FastPreset, SamplerConfig, Sampling
from .session import RolloutSession, eval_mode
from .storage import COMPONENT_FILES, CONFIG_NAME, WEIGHTS_NAME, check_save_target, is_world_model_dir, \
    read_config

__all__ = ["COMPONENT_FILES", "CONFIG_NAME", "FastPreset", "SAMPLING_PRESETS", "SamplerConfig", "Sampling",
           "WEIGHTS_NAME", "WorldModel", "check_config", "check_save_target", "is_world_model_dir", "read_config"]


class WorldModel(nn.Module):
    """Predicts the next frame from past frames and actions.

    `WorldModel(backbone, codec=None)`: any `Backbone` (DynamiCrafter's `VideoUNet`, Wan's `WanTransformer`); pixel
    space when `codec` is None. `fps` is the frame-rate condition (Vid2World uses 3 for every dataset; backbones
    without one ignore it); `concat_first_frame` (default: the backbone takes twice the codec's channels) feeds the
    first context frame's latent, repeated, as extra input channels (DynamiCrafter's hybrid conditioning; a
    Wan image-to-video backbone puts it, with its mask, on the window's first frame only: models/wan/i2v.py);
    `conditioner` (an `ImageConditioner`, a `PromptConditioner`: a fixed prompt's features, or a
    `WanImageConditioner`: the prompt's and the frame's CLIP tokens) gives the cross-attention context, from
    the first context frame.
    """

    def __init__(self, backbone: Backbone, codec: nn.Module | None = None, schedule: ScheduleConfig | None = None,
                 sampler: SamplerConfig | None = None, *, fps: int | None = None,
                 concat_first_frame: bool | None = None, conditioner: nn.Module | None = None,
                 metadata: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.codec = codec or IdentityCodec()
        self.conditioner = conditioner
        net = backbone.config
        if conditioner is not None and net.context_dim != conditioner.width:
            raise ValueError(f"conditioner width {conditioner.width} != {type(backbone).__name__} context_dim "
                             f"{net.context_dim}")
        image_width, image_dim = getattr(conditioner, "image_width", None), getattr(net, "image_dim", None)
        if conditioner is not None and image_width != image_dim:  # Wan I2V: the CLIP tokens' width
            raise ValueError(f"conditioner image tokens of width {image_width} != {type(backbone).__name__} "
                             f"image_dim {image_dim}")
        self.schedule = NoiseSchedule(schedule)
        self.sampler = sampler or SamplerConfig()
        self._bf16_copy: tuple[tuple[int, ...], Backbone] | None = None  # (weights version, copy): sampling_backbone
        self.fps = fps
        channels = self.codec.latent_channels
        mask = backbone.mask_channels  # Wan I2V adds its first-frame mask itself (models/wan/i2v.py)
        if concat_first_frame is None:
            concat_first_frame = net.in_channels - mask == 2 * channels
        expected_in = channels * (2 if concat_first_frame else 1) + mask
        if net.in_channels != expected_in or net.out_channels != channels:
            raise ValueError(f"{type(backbone).__name__} channels in={net.in_channels} out={net.out_channels} do not "
                             f"fit a codec of {channels} channels (expected in={expected_in}, out={channels})")
        self.concat_first_frame = concat_first_frame
        self.metadata = dict(metadata or {})

    # ---- properties ----------------------------------------------------------------------------------------
    @property
    def unet(self) -> Backbone:
        """The backbone, by the name DynamiCrafter's users know it (`backbone`)."""
        return self.backbone

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    @property
    def frames_per_step(self) -> int:
        """Video frames one latent frame covers after the first (the codec's temporal compression; 1 for
        per-frame codecs): a step takes this many actions and makes this many frames."""
        return int(getattr(self.codec, "temporal_compression", 1))

    @property
    def action_dim(self) -> int | None:
        """One video frame's action width (the backbone's action input holds `frames_per_step` of them)."""
        space = self.backbone.config.action_space
        return None if space is None else space.dim // self.frames_per_step

    def latent_actions(self, actions_before: Tensor) -> Tensor:
        """Video actions [B, N-1, A] (a_t after video frame t) -> what each latent frame follows: the one-frame
        shift for per-frame codecs, the group of `frames_per_step` actions otherwise (`models/action_groups.py`)."""
        k = self.frames_per_step
        return followed_actions(actions_before) if k == 1 else group_actions(actions_before, k)

    @property
    def window(self) -> int:
        return self.sampler.window or self.backbone.config.temporal_length

    # ---- checks --------------------------------------------------------------------------------------------
    def sampling(self, preset: str | None = None, *, steps: int | None = None, guidance: float | None = None,
                 precision: str | None = None, cache: bool | None = None) -> Sampling:
        """The `Sampling` a preset resolves to for this model (`quality` or None: the sampler's own; `fast`: with
        `SamplerConfig.fast`), with a caller's explicit steps, guidance, precision or cache over it."""
        return self._runnable(self.sampler.resolve(preset, steps=steps, guidance=guidance, precision=precision,
                                                   cache=cache))

    def _runnable(self, sampling: Sampling) -> Sampling:
        """`sampling` with bf16 replaced by fp32 where this model's device does not run bf16 natively."""
        return sampling.override(precision=fitting_precision(sampling.precision, self.device))

    def check_step_action(self, action: Any, batch: int) -> Tensor | None:
        """One step's action [B, A] (numpy or torch; [B, k, A] when a step makes k = `frames_per_step` frames) as
        the float tensor [B, k*A] the backbone takes, on the model's device."""
        k = self.frames_per_step
        if self.action_dim is None:
            if action is not None:
                raise ValueError("action: this world model has no action input; call step() without one")
            return None
        if action is None:
            shape = f"[B={batch}, A={self.action_dim}]" if k == 1 else f"[B={batch}, {k}, A={self.action_dim}]"
            raise ValueError(f"action: expected {shape}, got None")
        if k == 1:
            return actions_to_tensor(action, "action", batch, self.action_dim, self.device, one_step=True)
        shape = tuple(action.shape) if isinstance(action, Tensor) else np.shape(action)
        if len(shape) != 3:
            raise ValueError(f"action: expected [B={batch}, {k}, A={self.action_dim}] (one action per video frame a "
                             f"step makes), got shape {shape}")
        actions = actions_to_tensor(action, "action", batch, self.action_dim, self.device)
        if actions.shape[1] != k:
            raise ValueError(f"action: expected [B={batch}, {k}, A={self.action_dim}] (one action per video frame "
                             f"a step makes), got shape {tuple(actions.shape)}")
        return actions.reshape(batch, k * self.action_dim)

    def _settings(self, sampling: Sampling | None, steps: int | None, guidance: float | None, cache: bool | None,
                  precision: str | None) -> SamplerConfig:
        """A session's full sampler settings: `sampling` (None: the `quality` preset) with the explicit values."""
        chosen = (sampling or self.sampler.resolve()).override(steps=steps, guidance=guidance, precision=precision,
                                                                  cache=cache)
        return self.sampler.with_sampling(self._runnable(chosen))

    # ---- rollouts ------------------------------------------------------------------------------------------
    def session(self, context_frames: Any, context_actions: Any = None, steps: int | None = None,
                guidance: float | None = None, seed: int = 0, cache: bool | None = None,
                context: Tensor | None = None, precision: str | None = None,
                sampling: Sampling | None = None) -> RolloutSession:
        """A stateful rollout: start from `context_frames` [B, T0, H, W, 3] uint8 and the actions between them
        (`context_actions` [B, T0-1, A] = a_0 .. a_{T0-2}); then `session.step(action)` -> the next frame.

        `cache=False` recomputes the window at every step (the official algorithm; needed for `clip`-norm models).
        `precision` "bf16" runs the backbone under bf16 autocast (None: the sampler's `precision`). `sampling` (from
        `WorldModel.sampling(preset)`) replaces the `quality` preset these values override.
        """
        settings = self._settings(sampling, steps, guidance, cache, precision)  # validate before any work
        pixels, as_numpy = frames_to_tensor(context_frames, "context_frames", self.device)
        return self._pixel_session(pixels, as_numpy, context_actions, settings, seed, context)

    def _pixel_session(self, pixels: Tensor, as_numpy: bool, context_actions: Any, settings: SamplerConfig,
                       seed: int, context: Tensor | None) -> RolloutSession:
        anchor = first_in_view(pixels.shape[2], settings.window or self.window, settings.image_cond)
        # re-derived when the anchor moves, when it depends on the anchor frame
        own_context = context is None and self.conditioner is not None and self.conditioner.frame_dependent
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
        if self.frames_per_step > 1:
            try:
                latent_frame_count(t0, self.frames_per_step)
            except ValueError as err:
                raise ValueError(f"context_frames: {err}") from None
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
            frame_actions = self.latent_actions(given)  # frame 0 follows no action
        with torch.no_grad(), eval_mode(self):
            # the VAE's posterior draw gets its own stream, so the frames depend on the seed alone
            latents = self.codec.encode(pixels, generator=torch.Generator().manual_seed(int(seed) + 1))
            latents = latents.to(next(self.backbone.parameters()).dtype)
            if context is None and self.conditioner is not None:
                context = self.conditioner(pixels[:, :, anchor]).to(latents.dtype)
        return latents, frame_actions, context

    def latent_session(self, latents: Tensor, frame_actions: Tensor | None = None, steps: int | None = None,
                       guidance: float | None = None, seed: int = 0, cache: bool | None = None,
                       context: Tensor | None = None, as_numpy: bool = False, precision: str | None = None,
                       sampling: Sampling | None = None) -> RolloutSession:
        """A session started from context latents [B, C, T0, h, w] and the action each one follows
        ([B, T0, A], frame 0's being zeros); for callers that work in latent space (benchmarks, training)."""
        settings = self._settings(sampling, steps, guidance, cache, precision)
        return self._start_session(latents, frame_actions, settings, seed, context, as_numpy)

    def sampling_backbone(self, precision: str) -> Backbone:
        """The backbone a session samples with: this model's own for fp32; for bf16 a copy whose linear and conv
        weights are bf16 already (`autocast_weights`: the same numbers as autocast over it, without casting
        every weight at every frame), made once and again whenever the weights change."""
        if precision == "fp32":
            return self.backbone
        version = weights_version(self.backbone)
        if self._bf16_copy is None or self._bf16_copy[0] != version:
            self._bf16_copy = (version, autocast_weights(self.backbone))
        return self._bf16_copy[1]

    def _start_session(self, latents: Tensor, frame_actions: Tensor | None, settings: SamplerConfig, seed: int,
                       context: Tensor | None, as_numpy: bool, own_context: bool = False) -> RolloutSession:
        t0 = latents.shape[2]
        if not settings.slide and t0 >= self.window:
            raise ValueError(f"context_frames: {t0} context frames leave no room in a window of {self.window} frames "
                             "and sliding is off (SamplerConfig.slide=False); give fewer frames or enable sliding")
        if settings.image_cond == "episode_first" and settings.slide and self.backbone.mask_channels:
            raise ValueError("image_cond 'episode_first': an image-to-video Wan model marks the first frame "
                             "of its window as the anchor image, which a sliding window moves past; use "
                             "'window_first' (the anchor moves with the window)")
        if settings.cache and not self.backbone.config.strictly_causal:
            raise ValueError(f"cache=True needs a strictly causal backbone (a UNet's temporal_norm 'frame' or "
                             f"'causal'), this one has causal={self.backbone.config.causal}; pass cache=False to recompute the window at "
                             "every step")
        return RolloutSession(self, settings, latents, frame_actions, seed=seed, context=context, as_numpy=as_numpy,
                              own_context=own_context)

    @torch.no_grad()
    def rollout(self, context_frames: Any, actions: Any = None, steps: int | None = None,
                guidance: float | None = None, seed: int = 0, cache: bool | None = None, horizon: int | None = None,
                progress: bool = False, context: Tensor | None = None, precision: str | None = None,
                sampling: Sampling | None = None) -> Any:
        """Autoregressive rollout, batched: returns the N generated frames [B, N, H, W, 3] uint8.

        `actions` [B, T0-1+N, A] = a_0 .. a_{T0+N-2}: frame t follows action t-1. Models without actions take
        `horizon=N` instead (a model with actions accepts `horizon` only when it equals the N its actions imply).
        The networks run in eval mode whatever mode the model is in (see `eval_mode`); `precision` as in `session`.
        """
        settings = self._settings(sampling, steps, guidance, cache, precision)
        pixels, as_numpy = frames_to_tensor(context_frames, "context_frames", self.device)
        b, t0 = pixels.shape[0], pixels.shape[2]
        all_actions, n = self._rollout_actions(actions, horizon, b, t0)
        k = self.frames_per_step
        if n % k:
            raise ValueError(f"actions: {n} frames to generate, but each step of this model makes {k} frames (its "
                             f"codec's temporal compression); give a multiple of {k}")
        latent_t0 = t0 if k == 1 else latent_frame_count(t0, k)
        if not settings.slide and latent_t0 + n // k > self.window:
            raise ValueError(f"a rollout of {latent_t0}+{n // k} frames exceeds the window of {self.window} frames "
                             "and sliding is off (SamplerConfig.slide=False)")

        def step_action(i: int) -> Tensor | None:  # the k video actions latent step i follows, side by side
            return None if all_actions is None else all_actions[:, t0 - 1 + k * i: t0 - 1 + k * (i + 1)].reshape(b, -1)

        with eval_mode(self):
            sess = self._pixel_session(pixels, as_numpy, None if all_actions is None else all_actions[:, : t0 - 1],
                                       settings, seed, context)
            generated = torch.cat([sess.step_latent(step_action(i)) for i in progress_bar(
                range(n // k), desc="rollout", unit="frame" if k == 1 else "step", enabled=progress)], dim=2)
            return tensor_to_frames(sess.decode(generated), as_numpy)

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

    # ---- persistence (world/storage.py) ----------------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        return storage.config_dict(self)

    def save_pretrained(self, directory: str | os.PathLike, extra_files: Mapping[str, str] | None = None, *,
                        overwrite: bool = False) -> Path:
        """Write the model into `directory` (config.json, the backbone's and the other components' weights, with
        `extra_files` beside them), atomically; see `storage.save_world_model`."""
        return storage.save_world_model(self, directory, extra_files, overwrite=overwrite)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, device: str | torch.device = "cpu") -> "WorldModel":
        """Load a directory written by `save_pretrained` (or `vid2world convert`)."""
        return storage.load_world_model(cls, directory, device)


def check_config(config_path: Path) -> dict[str, Any]:
    """`read_config`, then the model it describes built on the meta device (no memory, no weights read): all
    that `from_pretrained` refuses before reading weights, such as channels that do not fit the codec."""
    config = read_config(config_path)
    with torch.device("meta"):
        storage.build_from_config(WorldModel, config_path, config)
    return config
