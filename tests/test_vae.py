"""The SD KL-VAE (`first_stage_model`): exact LDM key layout, parity with diffusers, and the `LatentCodec` wrapper."""

from __future__ import annotations

import pytest
import torch

from vid2world.models.codec import CODECS, IdentityCodec, LatentCodec, codec_from_config
from vid2world.models.vae import VAE_PRESETS, AutoencoderKL, VAEConfig

from .conftest import load_json

SCALE = 0.18215


def _manifest(official):
    return load_json(official / "manifest_first_stage_model.json")


# --- layout -----------------------------------------------------------------------------------------------------

def test_full_size_keys_and_shapes_equal_official_manifest(official):
    manifest = _manifest(official)
    with torch.device("meta"):
        vae = AutoencoderKL(VAEConfig.preset("sd"))
    prefix = manifest["prefix_in_model_ckpt"]
    assert prefix == "first_stage_model."
    ours = {prefix + k: list(v.shape) for k, v in vae.state_dict().items()}
    expected = {k: list(v) for k, v in manifest["keys"].items()}
    missing, extra = sorted(set(expected) - set(ours)), sorted(set(ours) - set(expected))
    misshaped = sorted(k for k in set(ours) & set(expected) if ours[k] != expected[k])
    assert (missing, extra, misshaped) == ([], [], [])
    assert len(ours) == 248
    assert sum(p.numel() for p in vae.parameters()) == manifest["num_parameters"] == 83_653_863


def test_sd_preset_matches_official_ddconfig(official):
    kwargs = _manifest(official)["constructor_kwargs"]
    d = dict(kwargs["ddconfig"], embed_dim=kwargs["embed_dim"])
    assert VAEConfig.preset("sd") == VAEConfig.from_dict(d)
    assert VAEConfig.preset("sd").downsample == 8


def test_tiny_preset_downsamples_by_8_and_runs():
    cfg = VAEConfig.preset("tiny")
    assert cfg.downsample == 8 and VAE_PRESETS["tiny"] is cfg
    torch.manual_seed(0)
    vae = AutoencoderKL(cfg).eval()
    with torch.no_grad():
        posterior = vae.encode(torch.rand(2, 3, 16, 24) * 2 - 1)
        assert posterior.mean.shape == posterior.logvar.shape == posterior.std.shape == (2, 4, 2, 3)
        assert vae.decode(posterior.mode()).shape == (2, 3, 16, 24)


def test_attention_levels_follow_ldm_resolution_rule():
    # LDM puts attention at the level whose feature map has a side of `resolution / 2**i`, in encoder and decoder.
    cfg = VAEConfig(ch=32, ch_mult=(1, 2, 2), num_res_blocks=1, resolution=32, attn_resolutions=(16,))
    keys = set(AutoencoderKL(cfg).state_dict())
    assert "encoder.down.1.attn.0.q.weight" in keys and "decoder.up.1.attn.1.proj_out.weight" in keys
    assert not any(k.startswith(("encoder.down.0.attn", "encoder.down.2.attn", "decoder.up.0.attn",
                                 "decoder.up.2.attn")) for k in keys)
    assert "decoder.up.1.attn.2.q.weight" not in keys  # one per block: num_res_blocks + 1 = 2 in the decoder


# --- parity with diffusers ----------------------------------------------------------------------------------------

def _diffusers_twin(cfg: VAEConfig, ours: AutoencoderKL):
    diffusers = pytest.importorskip("diffusers", reason="diffusers (a dev dependency) is needed for VAE parity")
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    n = len(cfg.ch_mult)
    dconfig = dict(in_channels=cfg.in_channels, out_channels=cfg.out_ch, down_block_types=("DownEncoderBlock2D",) * n,
                   up_block_types=("UpDecoderBlock2D",) * n, block_out_channels=tuple(cfg.ch * m for m in cfg.ch_mult),
                   layers_per_block=cfg.num_res_blocks, latent_channels=cfg.z_channels,
                   norm_num_groups=cfg.norm_groups, sample_size=cfg.resolution)
    theirs = diffusers.AutoencoderKL(**dconfig).eval()
    checkpoint = {"first_stage_model." + k: v for k, v in ours.state_dict().items()}
    converted = convert_ldm_vae_checkpoint(checkpoint, dconfig)
    theirs.load_state_dict(converted, strict=True)
    return theirs


def test_parity_with_diffusers_autoencoder_kl():
    # Small but complete: 3 levels (2 downsamplers), width changes (nin_shortcut), mid attention, 8 norm groups.
    cfg = VAEConfig(ch=32, ch_mult=(1, 2, 2), num_res_blocks=2, z_channels=4, embed_dim=4, norm_groups=8,
                    resolution=32)
    torch.manual_seed(0)
    ours = AutoencoderKL(cfg).eval()
    with torch.no_grad():  # random GroupNorm affines so a swapped weight/bias or norm would show
        for name, p in ours.named_parameters():
            if "norm" in name:
                p.copy_(torch.randn_like(p) * 0.5 + (1.0 if name.endswith("weight") else 0.0))
    theirs = _diffusers_twin(cfg, ours)
    x = torch.rand(2, 3, 32, 24) * 2 - 1
    z = torch.randn(2, 4, 8, 6)
    with torch.no_grad():
        p_ours, p_theirs = ours.encode(x), theirs.encode(x).latent_dist
        torch.testing.assert_close(p_ours.mean, p_theirs.mean, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(p_ours.logvar, p_theirs.logvar, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(p_ours.std, p_theirs.std, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(ours.decode(z), theirs.decode(z).sample, rtol=1e-5, atol=1e-5)
    assert p_ours.mean.abs().max() > 1e-2  # outputs are not trivially zero


def test_posterior_clamps_logvar_and_samples_from_generator():
    from vid2world.models.vae import DiagonalGaussian

    mean, logvar = torch.randn(1, 2, 3, 3), torch.tensor([-100.0, 100.0]).repeat(9).reshape(1, 2, 3, 3)
    post = DiagonalGaussian(torch.cat([mean, logvar], dim=1))
    assert post.logvar.min() == -30.0 and post.logvar.max() == 20.0
    torch.testing.assert_close(post.std, torch.exp(0.5 * post.logvar))
    assert torch.equal(post.mode(), mean)
    noise = torch.randn(mean.shape, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(post.sample(torch.Generator().manual_seed(3)), mean + post.std * noise)


# --- LatentCodec on the full-size VAE -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sd_codec() -> LatentCodec:
    torch.manual_seed(0)
    return LatentCodec(posterior="mode", per_frame=True).eval()


def _sharing(base: LatentCodec, **overrides) -> LatentCodec:
    """A codec with other settings around the same VAE weights (built on meta, so nothing is initialised twice)."""
    kwargs = dict(base.config(), **overrides)
    kwargs.pop("kind")
    with torch.device("meta"):
        codec = LatentCodec(**kwargs)
    codec.vae = base.vae
    return codec.eval()


@pytest.fixture(scope="module")
def clip() -> torch.Tensor:
    return torch.rand(1, 3, 2, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1


def test_full_size_codec_shapes_scale_and_per_frame_equivalence(sd_codec, clip):
    codec, vae = sd_codec, sd_codec.vae
    batched = _sharing(codec, per_frame=False)
    assert codec.latent_channels == 4 and codec.downsample == 8
    with torch.no_grad():
        latents = codec.encode(clip)
        assert latents.shape == (1, 4, 2, 8, 8)
        decoded = codec.decode(latents)
        assert decoded.shape == (1, 3, 2, 64, 64)
        for t in range(2):  # scale and (b, c, t) layout, frame by frame against the bare VAE
            torch.testing.assert_close(latents[:, :, t], SCALE * vae.encode(clip[:, :, t]).mean)
            torch.testing.assert_close(decoded[:, :, t], vae.decode(latents[:, :, t] / SCALE))
        # batched and per-frame convs sum in other orders: an error relative to each output's scale, not absolute
        torch.testing.assert_close(batched.encode(clip), latents, rtol=1e-4, atol=1e-4 * latents.abs().max())
        torch.testing.assert_close(batched.decode(latents), decoded, rtol=1e-4, atol=1e-4 * decoded.abs().max())
    assert not torch.equal(latents[:, :, 0], latents[:, :, 1])


def test_full_size_codec_sampling_is_seeded_and_same_per_frame_and_batched(sd_codec, clip):
    per_frame = _sharing(sd_codec, posterior="sample", per_frame=True)
    batched = _sharing(sd_codec, posterior="sample", per_frame=False)
    with torch.no_grad():
        a = per_frame.encode(clip, generator=torch.Generator().manual_seed(7))
        b = batched.encode(clip, generator=torch.Generator().manual_seed(7))
        c = batched.encode(clip, generator=torch.Generator().manual_seed(8))
        frames = clip.transpose(1, 2).reshape(2, 3, 64, 64)
        post = sd_codec.vae.encode(frames)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(b, c)
    # The noise is one draw of shape [B*T, 4, h, w] in (b, t) order from the caller's generator.
    noise = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(7))
    expected = (SCALE * (post.mean + post.std * noise)).reshape(1, 2, 4, 8, 8).transpose(1, 2)
    torch.testing.assert_close(b, expected, rtol=1e-4, atol=1e-5)


# --- config and errors --------------------------------------------------------------------------------------------

def test_codec_config_round_trip():
    codec = LatentCodec(VAEConfig.preset("tiny"), scale_factor=0.5, per_frame=False, posterior="mode")
    config = codec.config()
    assert config == {"kind": "sd-vae", "vae": VAEConfig.preset("tiny").to_dict(), "scale_factor": 0.5,
                      "per_frame": False, "posterior": "mode"}
    assert isinstance(config["vae"]["ch_mult"], list)
    rebuilt = codec_from_config(config)
    assert isinstance(rebuilt, LatentCodec) and rebuilt.config() == config
    assert rebuilt.vae.config == VAEConfig.preset("tiny")
    assert CODECS["sd-vae"] is LatentCodec
    rebuilt.vae.load_state_dict(codec.vae.state_dict(), strict=True)
    assert codec_from_config(IdentityCodec().config()).config() == {"kind": "identity", "channels": 3}
    pixels = torch.zeros(1, 3, 1, 8, 8)
    assert IdentityCodec().encode(pixels, generator=torch.Generator()) is pixels


def test_vae_config_round_trip_and_validation():
    cfg = VAEConfig.preset("tiny")
    assert VAEConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match=r"unknown VAEConfig keys \['chmult'\].*ch_mult"):
        VAEConfig.from_dict({"chmult": [1, 2]})
    with pytest.raises(ValueError, match="unknown VAE preset 'xl'.*sd.*tiny"):
        VAEConfig.preset("xl")
    with pytest.raises(ValueError, match="divisible by norm_groups=32"):
        VAEConfig(ch=48)
    with pytest.raises(ValueError, match="double_z must be True"):
        VAEConfig(double_z=False)
    with pytest.raises(ValueError, match="ch_mult"):
        VAEConfig(ch_mult=())
    with pytest.raises(ValueError, match="z_channels must be a positive int"):
        VAEConfig(z_channels=0)


def test_codec_bad_inputs_raise_clear_errors():
    tiny = VAEConfig.preset("tiny").to_dict()
    with pytest.raises(ValueError, match="unknown VAEConfig keys"):
        codec_from_config({"kind": "sd-vae", "vae": dict(tiny, bogus=1)})
    with pytest.raises(ValueError, match="posterior must be one of"):
        LatentCodec(tiny, posterior="mean")
    with pytest.raises(ValueError, match="scale_factor"):
        LatentCodec(tiny, scale_factor=0.0)
    codec = LatentCodec(tiny, posterior="mode")
    with pytest.raises(ValueError, match=r"multiples of the VAE's downsample factor 8, got H=12, W=16"):
        codec.encode(torch.zeros(1, 3, 2, 12, 16))
    with pytest.raises(ValueError, match=r"pixels of shape \[B, 3, T, H, W\], got \(1, 4, 2, 16, 16\)"):
        codec.encode(torch.zeros(1, 4, 2, 16, 16))
    with pytest.raises(ValueError, match=r"pixels of shape \[B, 3, T, H, W\]"):
        codec.encode(torch.zeros(3, 16, 16))
    with pytest.raises(ValueError, match=r"latents of shape \[B, 4, T, H, W\], got \(1, 3, 2, 2, 2\)"):
        codec.decode(torch.zeros(1, 3, 2, 2, 2))
    with pytest.raises(ValueError, match=r"AutoencoderKL expects pixels of shape \[N, 3, H, W\]"):
        codec.vae.encode(torch.zeros(1, 1, 16, 16))
