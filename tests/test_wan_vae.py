"""Wan 2.1's VAE: diffusers' AutoencoderKLWan key layout and numbers, streams equal to whole clips, both
weight-file layouts, strict loading, and the `WanCodec` wrapper. Tiny random configs throughout."""

from __future__ import annotations

import json

import pytest
import torch

from vid2world.models.validation import StateDictError
from vid2world.models.wan.codec import (ORIGINAL_FILE, WanCodec, load_wan_vae, original_key, random_wan_vae,
                                        save_diffusers, save_original, write_tiny_wan_vae)
from vid2world.models.wan.vae import WanVAE, WanVAEConfig

diffusers = pytest.importorskip("diffusers", reason="diffusers (a dev dependency) is the Wan VAE's oracle")
pytestmark = pytest.mark.usefixtures("one_thread")

ZERO4, ONE4 = (0.0,) * 4, (1.0,) * 4
CONFIGS = {
    "4-levels-z4": WanVAEConfig(base_dim=4, z_dim=4, dim_mult=(1, 2, 2, 2), num_res_blocks=1,
                                latents_mean=ZERO4, latents_std=ONE4),
    "wan-shape": WanVAEConfig(base_dim=4, dim_mult=(1, 2, 4, 4), num_res_blocks=2),  # Wan 2.1's, narrow
    "2x-time-own-decoder-width": WanVAEConfig(
        base_dim=8, decoder_base_dim=4, z_dim=4, dim_mult=(1, 2, 2), num_res_blocks=1,
        temperal_downsample=(True, False), scale_factor_temporal=2, scale_factor_spatial=4,
        latents_mean=(0.1, -0.2, 0.3, 0.0), latents_std=(1.5, 0.5, 2.0, 1.0)),
}


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def twins(cfg: WanVAEConfig, seed: int = 0, dtype: torch.dtype = torch.float32):
    ours = random_wan_vae(cfg, seed).eval().to(dtype)
    theirs = diffusers.AutoencoderKLWan(**cfg.to_dict()).eval().to(dtype)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    return ours, theirs


def video(cfg: WanVAEConfig, frames: int, seed: int = 0, dtype: torch.dtype = torch.float32, batch: int = 2):
    f = cfg.spatial_compression
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, 3, frames, 2 * f, 3 * f, generator=g) * 2 - 1).to(dtype)


# --- layout -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cfg", [WanVAEConfig(), *CONFIGS.values()], ids=["wan2.1", *CONFIGS])
def test_state_dict_keys_and_shapes_equal_diffusers(cfg):
    with torch.device("meta"):
        ours, theirs = WanVAE(cfg), diffusers.AutoencoderKLWan(**cfg.to_dict())
    shapes = lambda m: {k: tuple(v.shape) for k, v in m.state_dict().items()}  # noqa: E731
    assert shapes(ours) == shapes(theirs)


def test_full_size_is_wan21():
    with torch.device("meta"):
        vae = WanVAE(WanVAEConfig.preset("wan2.1"))
    assert len(vae.state_dict()) == 194 and sum(p.numel() for p in vae.parameters()) == 126_892_531
    assert (vae.temporal_compression, vae.spatial_compression) == (4, 8)


def test_original_names_are_what_diffusers_converts_from():
    # diffusers' single-file converter hard-codes Wan 2.1's block indices: the real layout, on meta tensors
    from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

    with torch.device("meta"):
        state = WanVAE().state_dict()
    original = {original_key(k, 2): v for k, v in state.items()}
    assert len(original) == len(state)
    assert "decoder.upsamples.4.shortcut.weight" in original and "encoder.head.2.weight" in original
    converted = convert_wan_vae_to_diffusers(original)
    assert set(converted) == set(state) and all(converted[k] is state[k] for k in state)


# --- parity with diffusers ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["4-levels-z4", "2x-time-own-decoder-width"])
@pytest.mark.parametrize("frames", [1, 5, 9])
def test_float32_encode_and_decode_equal_diffusers(name, frames):
    cfg = CONFIGS[name]
    ours, theirs = twins(cfg)
    x = video(cfg, frames)
    with torch.no_grad():
        want = theirs.encode(x).latent_dist
        for chunked in (False, True):
            got = ours.encode(x, chunked=chunked)
            latent_frames = 1 + (frames - 1) // cfg.temporal_compression
            assert got.mean.shape == want.mean.shape == (2, cfg.z_dim, latent_frames, 2, 3)
            assert rel(got.mean, want.mean) <= 1e-5 and rel(got.logvar, want.logvar) <= 1e-5
        seeded = lambda: torch.Generator().manual_seed(7)  # noqa: E731
        assert rel(ours.encode(x).sample(seeded()), want.sample(generator=seeded())) <= 1e-5
        z = want.sample(generator=seeded())
        pixels = theirs.decode(z).sample
        assert pixels.shape == x.shape
        for chunked in (False, True):
            assert rel(ours.decode(z, chunked=chunked), pixels) <= 1e-5


@pytest.mark.parametrize("name", list(CONFIGS))
def test_float64_numbers_are_diffusers_exactly(name, monkeypatch):
    # diffusers rounds to float32 around its nearest-neighbour upsample (for bf16 kernels); that op is exact
    # in any dtype, so without the rounding the two implementations agree to float64 precision
    from diffusers.models.autoencoders import autoencoder_kl_wan

    monkeypatch.setattr(autoencoder_kl_wan.WanUpsample, "forward", torch.nn.Upsample.forward)
    cfg = CONFIGS[name]
    ours, theirs = twins(cfg, seed=1, dtype=torch.float64)
    x = video(cfg, 9, seed=1, dtype=torch.float64, batch=1)
    with torch.no_grad():
        want = theirs.encode(x).latent_dist.mean
        assert rel(ours.encode(x).mean, want) <= 1e-12
        assert rel(ours.decode(want), theirs.decode(want).sample) <= 1e-12


# --- streams ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["4-levels-z4", "2x-time-own-decoder-width"])
def test_decoding_frame_by_frame_equals_the_whole_clip(name):
    cfg = CONFIGS[name]
    vae = random_wan_vae(cfg, seed=2).double().eval()
    z = torch.randn(2, cfg.z_dim, 4, 2, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    tc = cfg.temporal_compression
    with torch.no_grad():
        whole = vae.decode(z)
        stream = vae.decode_stream()
        per_frame = [stream.decode(z[:, :, i:i + 1]) for i in range(4)]
        assert [p.shape[2] for p in per_frame] == [1, tc, tc, tc]
        assert stream.frames_out == whole.shape[2] == 1 + 3 * tc
        assert rel(torch.cat(per_frame, dim=2), whole) <= 1e-10
        assert torch.equal(vae.decode(z, chunked=True), torch.cat(per_frame, dim=2))  # the same steps exactly
        uneven = vae.decode_stream()  # any split works: 1 + 2 + 1 latent frames
        pieces = [uneven.decode(z[:, :, lo:hi]) for lo, hi in ((0, 1), (1, 3), (3, 4))]
        assert rel(torch.cat(pieces, dim=2), whole) <= 1e-10


@pytest.mark.parametrize("splits", [(1, 4, 4), (5, 4), (1, 8), (9,)])
def test_encoding_in_chunks_equals_the_whole_clip(splits):
    cfg = CONFIGS["4-levels-z4"]
    vae = random_wan_vae(cfg, seed=3).double().eval()
    x = video(cfg, 9, seed=3, dtype=torch.float64)
    with torch.no_grad():
        whole = vae.encode(x)
        stream, start, means = vae.encode_stream(), 0, []
        for n in splits:
            means.append(stream.encode(x[:, :, start:start + n]).mean)
            start += n
        assert [m.shape[2] for m in means] == [1 + (splits[0] - 1) // 4, *[n // 4 for n in splits[1:]]]
        assert rel(torch.cat(means, dim=2), whole.mean) <= 1e-10
        assert rel(vae.encode(x, chunked=True).mean, whole.mean) <= 1e-10


def test_streams_refuse_wrong_chunks_by_name():
    cfg = CONFIGS["4-levels-z4"]
    vae = random_wan_vae(cfg).eval()
    x = video(cfg, 9)
    stream = vae.encode_stream()
    with pytest.raises(ValueError, match=r"T=2 frames, expected 1 \+ 4k"):
        stream.encode(x[:, :, :2])
    stream.encode(x[:, :, :1])
    with pytest.raises(ValueError, match=r"T=3 frames, expected 4k"):
        stream.encode(x[:, :, 1:4])
    with pytest.raises(ValueError, match=r"start a new stream"):
        stream.encode(x[:1, :, 1:5])
    decoder = vae.decode_stream()
    decoder.decode(torch.zeros(2, 4, 1, 2, 3))
    with pytest.raises(ValueError, match=r"\(B, H, W\) = \(2, 4, 3\)"):
        decoder.decode(torch.zeros(2, 4, 1, 4, 3))
    with pytest.raises(ValueError, match=r"latents: expected a tensor \[B, 4, T, H, W\]"):
        decoder.decode(torch.zeros(2, 16, 1, 2, 3))


# --- weight files -------------------------------------------------------------------------------------------

def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert set(sa) == set(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_loads_what_diffusers_saves_folder_and_pipeline(tmp_path):
    cfg = CONFIGS["2x-time-own-decoder-width"]
    ours, theirs = twins(cfg, seed=4)
    theirs.save_pretrained(tmp_path / "pipeline" / "vae")
    for path in (tmp_path / "pipeline" / "vae", tmp_path / "pipeline"):
        loaded = load_wan_vae(path)
        assert loaded.config == cfg
        assert_same_weights(loaded, ours)
    with pytest.raises(ValueError, match="not the config passed"):
        load_wan_vae(tmp_path / "pipeline", config=CONFIGS["4-levels-z4"])


def test_diffusers_loads_what_we_save(tmp_path):
    cfg = CONFIGS["4-levels-z4"]
    ours = random_wan_vae(cfg, seed=5)
    save_diffusers(ours, tmp_path / "vae")
    theirs = diffusers.AutoencoderKLWan.from_pretrained(tmp_path / "vae")
    assert WanVAEConfig.from_diffusers(dict(theirs.config)) == cfg
    assert_same_weights(theirs, ours)


def test_original_layout_round_trip_and_diffusers_conversion(tmp_path):
    from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

    cfg = CONFIGS["wan-shape"]  # the converter hard-codes Wan 2.1's block indices
    path = write_tiny_wan_vae(tmp_path, "original", cfg, seed=6)
    assert path == tmp_path / ORIGINAL_FILE
    raw = torch.load(path, weights_only=True)
    assert {"encoder.conv1.weight", "decoder.upsamples.3.resample.1.weight", "conv2.bias"} <= set(raw)
    loaded = load_wan_vae(path, cfg)
    assert_same_weights(loaded, random_wan_vae(cfg, seed=6))
    theirs = diffusers.AutoencoderKLWan(**cfg.to_dict())
    theirs.load_state_dict(convert_wan_vae_to_diffusers(raw), strict=True)
    assert_same_weights(theirs, loaded)


def test_stand_in_folder_loads_as_a_pipeline(tmp_path):
    folder = write_tiny_wan_vae(tmp_path, "diffusers", seed=1)
    assert (folder / "vae" / "config.json").is_file()
    assert_same_weights(load_wan_vae(folder), random_wan_vae(WanVAEConfig.preset("tiny"), seed=1))
    with pytest.raises(ValueError, match="layout must be"):
        write_tiny_wan_vae(tmp_path, "ckpt")


def test_bad_original_files_are_refused_by_name(tmp_path):
    cfg = CONFIGS["4-levels-z4"]
    state = torch.load(write_tiny_wan_vae(tmp_path, "original", cfg), weights_only=True)
    cases = {
        "missing": ({k: v for k, v in state.items() if k != "decoder.head.2.bias"}, "'decoder.head.2.bias'"),
        "extra": ({**state, "encoder.extra.weight": torch.zeros(1)},
                  r"unexpected key\(s\): 'encoder.extra.weight'"),
        "misshaped": ({**state, "conv2.weight": torch.zeros(4, 4, 1, 1, 2)},
                      r"key 'conv2.weight': shape \[4, 4, 1, 1, 2\]"),
    }
    for name, (bad, message) in cases.items():
        torch.save(bad, tmp_path / f"{name}.pth")
        with pytest.raises(StateDictError, match=message):
            load_wan_vae(tmp_path / f"{name}.pth", cfg)
    with pytest.raises(StateDictError, match="missing key"):  # Wan 2.1's config does not fit a tiny file
        load_wan_vae(tmp_path / ORIGINAL_FILE)
    torch.save({"state_dict": state}, tmp_path / "nested.pth")
    with pytest.raises(ValueError, match="flat dict of tensor names"):
        load_wan_vae(tmp_path / "nested.pth", cfg)


def test_bad_diffusers_folders_are_refused_by_name(tmp_path):
    from safetensors.torch import load_file, save_file

    cfg = CONFIGS["4-levels-z4"]
    folder = save_diffusers(random_wan_vae(cfg), tmp_path / "vae")
    weights = folder / "diffusion_pytorch_model.safetensors"
    state = load_file(str(weights))
    del state["encoder.mid_block.attentions.0.proj.bias"]
    save_file(state, str(weights))
    with pytest.raises(StateDictError, match="'encoder.mid_block.attentions.0.proj.bias'"):
        load_wan_vae(folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "tile_size": 256}))
    with pytest.raises(ValueError, match=r"unknown WanVAEConfig keys \['tile_size'\]"):
        load_wan_vae(folder)
    (folder / "config.json").write_text(json.dumps({**config, "_class_name": "AutoencoderKL"}))
    with pytest.raises(ValueError, match="_class_name is 'AutoencoderKL'"):
        load_wan_vae(folder)
    weights.unlink()
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="no diffusion_pytorch_model.safetensors"):
        load_wan_vae(folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no config.json in it"):
        load_wan_vae(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="neither a file nor a folder"):
        load_wan_vae(tmp_path / "absent.pth")


# --- config -------------------------------------------------------------------------------------------------

def test_config_round_trips_and_refuses_what_it_does_not_build():
    for cfg in (WanVAEConfig(), *CONFIGS.values()):
        assert WanVAEConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert WanVAEConfig.preset("wan2.1") == WanVAEConfig()
    refused = {
        "attn_scales": ({"attn_scales": [0.5]}, "attn_scales must be empty"),
        "wan2.2": ({"is_residual": True}, "Wan 2.2"),
        "patch": ({"patch_size": 2}, "Wan 2.2"),
        "levels": ({"temperal_downsample": [True, True]}, "temperal_downsample must be 3 booleans"),
        "mean": ({"latents_mean": [0.0] * 4}, "latents_mean must be z_dim=16"),
        "std": ({"latents_std": [0.0] * 16}, "latents_std must be positive"),
        "time": ({"scale_factor_temporal": 8}, "compresses by 4"),
        "space": ({"dim_mult": [1, 2, 2], "temperal_downsample": [True, True]},
                  "scale_factor_spatial=8 disagrees"),
        "width": ({"base_dim": 0}, "base_dim must be a positive int"),
        "unknown": ({"tile": 1}, r"unknown WanVAEConfig keys \['tile'\]"),
    }
    for name, (change, message) in refused.items():
        with pytest.raises(ValueError, match=message):
            WanVAEConfig.from_dict({**WanVAEConfig().to_dict(), **change})


# --- codec --------------------------------------------------------------------------------------------------

def tiny_codec(**kwargs) -> WanCodec:
    return WanCodec(random_wan_vae(WanVAEConfig.preset("tiny"), seed=8), **kwargs).eval()


def test_codec_shapes_config_and_refusals():
    codec = tiny_codec()
    assert (codec.kind, codec.latent_channels, codec.temporal_compression, codec.spatial_compression,
            codec.downsample) == ("wan-vae", 16, 4, 8, 8)
    pixels = video(WanVAEConfig.preset("tiny"), 5)
    with torch.no_grad():
        latents = codec.encode(pixels)
        assert latents.shape == (2, 16, 2, 2, 3)
        assert codec.decode(latents).shape == pixels.shape
    rebuilt = WanCodec(**{k: v for k, v in codec.config().items() if k != "kind"})
    assert rebuilt.config() == codec.config() and json.loads(json.dumps(codec.config())) == codec.config()
    rebuilt.load_state_dict(codec.state_dict(), strict=True)
    with pytest.raises(ValueError, match=r"T=4 frames, expected 1 \+ 4k"):
        codec.encode(pixels[:, :, :4])
    with pytest.raises(ValueError, match="multiples of 8"):
        codec.encode(pixels[..., :12])
    with pytest.raises(ValueError, match=r"latents: expected a tensor \[B, 16, T, H, W\]"):
        codec.decode(latents[:, :4])
    with pytest.raises(ValueError, match="posterior must be one of"):
        WanCodec(posterior="mean")


def test_codec_latents_are_the_wan_pipelines_normalised_latents():
    codec = tiny_codec(chunked=False)
    theirs = diffusers.AutoencoderKLWan(**codec.vae.config.to_dict()).eval()
    theirs.load_state_dict(codec.vae.state_dict())
    pixels = video(codec.vae.config, 5, seed=9)
    mean = torch.tensor(theirs.config.latents_mean).view(1, 16, 1, 1, 1)
    inv_std = 1.0 / torch.tensor(theirs.config.latents_std).view(1, 16, 1, 1, 1)
    with torch.no_grad():
        # WanImageToVideoPipeline's condition latents
        want = (theirs.encode(pixels).latent_dist.mode() - mean) * inv_std
        latents = codec.encode(pixels)
        assert rel(latents, want) <= 1e-5
        # and the pipelines' decode: latents / inv_std + mean
        assert rel(codec.decode(latents), theirs.decode(latents / inv_std + mean).sample) <= 1e-5


def test_codec_seeded_sample_is_deterministic():
    codec = tiny_codec(posterior="sample")
    pixels = video(codec.vae.config, 5)
    seeded = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    with torch.no_grad():
        a, b, c = (codec.encode(pixels, generator=seeded(s)) for s in (1, 1, 2))
        mode = tiny_codec().encode(pixels, generator=seeded(1))
    assert torch.equal(a, b) and not torch.allclose(a, c)
    assert not torch.allclose(a, mode) and torch.equal(mode, tiny_codec().encode(pixels))


def test_codec_decode_stream_matches_decode_each_latent_frame_once():
    codec = tiny_codec()
    with torch.no_grad():
        latents = codec.encode(video(codec.vae.config, 9))
        whole = codec.decode(latents)
        stream = codec.decode_stream()
        pieces = [stream.decode(latents[:, :, i:i + 1]) for i in range(latents.shape[2])]
    assert [p.shape[2] for p in pieces] == [1, 4, 4]
    assert torch.equal(torch.cat(pieces, dim=2), whole)  # chunked decode runs the same steps
