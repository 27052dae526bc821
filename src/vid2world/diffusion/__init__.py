"""Diffusion: noise schedules, training losses, samplers and guidance (math as pure functions)."""

from .guidance import GuidanceConfig, Moments
from .losses import LossOutput, diffusion_forcing_loss, full_sequence_loss
from .sampler import DDIMSampler, ddim_update, sample_matrix
from .schedule import NoiseSchedule, ScheduleConfig
from .timesteps import (autoregressive_matrix, ddim_timesteps, full_sequence_matrix, history_level,
                        pyramid_matrix)

__all__ = ["GuidanceConfig", "Moments", "LossOutput", "diffusion_forcing_loss", "full_sequence_loss", "ddim_update",
           "DDIMSampler", "sample_matrix", "NoiseSchedule", "ScheduleConfig", "autoregressive_matrix", "ddim_timesteps",
           "full_sequence_matrix", "history_level", "pyramid_matrix"]
