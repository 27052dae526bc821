"""One registry: each model name means one model everywhere (its UNet is the UNet preset of the same name)."""

from __future__ import annotations

import pytest
import torch

from vid2world.checkpoints.registry import MODELS, PRETRAINED, model_spec
from vid2world.models.codec import IdentityCodec, LatentCodec
from vid2world.models.config import CausalConfig, UNetConfig


def test_every_name_is_one_model_whose_unet_is_the_preset_of_that_name():
    assert sorted(MODELS) == UNetConfig.preset_names()
    for name, spec in MODELS.items():
        assert spec.unet == UNetConfig.preset(name), name
    assert sorted(PRETRAINED) == ["dynamicrafter-1024", "dynamicrafter-256", "dynamicrafter-512", "tiny"]
    every_part = ("unet", "vae", "text_encoder", "image_encoder", "image_proj")
    assert all(spec.parts == every_part for spec in PRETRAINED.values())
    assert MODELS["pixel-tiny"].parts == ("unet",)


def test_a_spec_builds_its_whole_model():
    latent = model_spec("tiny").world_model()
    assert isinstance(latent.codec, LatentCodec) and latent.conditioner is not None and latent.fps == 3
    unet = UNetConfig.preset("pixel-tiny", causal=CausalConfig("frame"))
    pixel = model_spec("pixel-tiny").world_model(unet)
    assert isinstance(pixel.codec, IdentityCodec) and pixel.conditioner is None
    assert pixel.sampler.cache and not latent.sampler.cache  # an exact cache only for the causal UNet
    frames = torch.zeros(1, 1, 8, 8, 3, dtype=torch.uint8)
    assert pixel.rollout(frames, None, steps=1, horizon=1).shape == (1, 1, 8, 8, 3)


def test_unknown_names_are_named_with_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown model 'tiny-pixel'; available: \['dynamicrafter-1024'.*'tiny'\]"):
        model_spec("tiny-pixel")
    with pytest.raises(ValueError, match="this model's parts: \\('unet',\\)"):
        MODELS["pixel-tiny"].build("vae")
