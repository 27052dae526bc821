"""`vid2world convert` / `inspect`: tiny random checkpoints in DynamiCrafter's exact layout, every part, round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from vid2world import ActionSpace, UNetConfig, VideoUNet, WorldModel, causalize
from vid2world.causal import to_official_keys
from vid2world.cli import main
from vid2world.checkpoints.reader import CheckpointError
from vid2world.models.clip import OpenCLIPTextEncoder
from vid2world.checkpoints.convert import ConvertOptions, convert, convert_checkpoint
from vid2world.checkpoints.inspect import inspect_checkpoint
from vid2world.checkpoints.registry import PRETRAINED
from vid2world.testing import random_parts, schedule_buffers, write_checkpoint

from .conftest import load_json

TINY = PRETRAINED["tiny"]
PREFIXES = {"unet": "model.diffusion_model.", "vae": "first_stage_model.", "text_encoder": "cond_stage_model.",
            "image_encoder": "embedder.", "image_proj": "image_proj_model."}


@pytest.fixture(scope="module")
def tiny_parts() -> dict:
    return random_parts(TINY, seed=0)


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory, tiny_parts) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.ckpt", tiny_parts, schedule_buffers(TINY))


def _frames(b=1, t=2, size=64, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (b, t, size, size, 3), dtype=np.uint8)


def _official_unet(official, discrete=False) -> dict:
    sd = load_file(official / "vid2world_tiny_unet.safetensors")
    if discrete:
        sd = {k: v for k, v in sd.items() if not k.startswith("action_emb_proj")}
        sd.update(load_file(official / "vid2world_tiny_unet_discrete.safetensors"))
    return sd


# ---- round trip ----------------------------------------------------------------------------------------------------
def test_tiny_checkpoint_round_trips_through_convert(tmp_path, tiny_ckpt, tiny_parts):
    out = tmp_path / "wm"
    code = main(["convert", "--base", str(tiny_ckpt), "--preset", "tiny", "--transfer", "extrapolative",
                 "--norm", "causal", "--action-dim", "7", "--out", str(out)])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["codec.safetensors", "conditioner.safetensors",
                                                     "config.json", "conversion.json", "model.safetensors"]
    model = WorldModel.from_pretrained(out)
    # The UNet is exactly the core causalization of the same weights.
    base = VideoUNet(UNetConfig.preset("tiny"))
    base.load_state_dict(tiny_parts["unet"])
    reference, _ = causalize(base, "extrapolative", "causal", ActionSpace.continuous(7), seed=0)
    ours = model.unet.state_dict()
    assert model.unet.config == reference.config
    assert all(torch.equal(ours[k], v) for k, v in reference.state_dict().items())
    # The other parts arrive unchanged; the text tower is replaced by its empty-prompt output.
    assert all(torch.equal(model.codec.vae.state_dict()[k], v) for k, v in tiny_parts["vae"].items())
    assert all(torch.equal(model.conditioner.image_encoder.state_dict()[k], v)
               for k, v in tiny_parts["image_encoder"].items())
    assert all(torch.equal(model.conditioner.image_proj.state_dict()[k], v)
               for k, v in tiny_parts["image_proj"].items())
    text = OpenCLIPTextEncoder(TINY.text_encoder).eval()
    text.load_state_dict(tiny_parts["text_encoder"])
    with torch.no_grad():
        assert torch.allclose(model.conditioner.empty_text, text.encode_empty(1), atol=1e-6)
    assert model.fps == 3 and model.codec.scale_factor == pytest.approx(0.18215)
    # ... and it rolls out: 2 context frames, 2 new ones, same seed -> same frames.
    frames, actions = _frames(), np.random.default_rng(1).normal(size=(1, 3, 7)).astype(np.float32)
    a = model.rollout(frames, actions, steps=3, seed=5)
    b = model.rollout(frames, actions, steps=3, seed=5)
    assert a.shape == (1, 2, 64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    report = json.loads((out / "conversion.json").read_text())
    assert report["kind"] == "dynamicrafter" and report["parts"]["vae"] == len(tiny_parts["vae"])
    assert sorted(report["ignored"]) == ["alphas_cumprod", "betas", "scale_arr"]


def test_conditioner_context_is_text_then_image_tokens(tiny_ckpt):
    model, _ = convert_checkpoint(tiny_ckpt, ConvertOptions(preset="tiny"))
    frame = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        context = model.conditioner(frame)
        image = model.conditioner.image_proj(model.conditioner.image_encoder(frame))
    assert context.shape == (2, 77 + 16 * 6, 32)  # 77 + 16*T tokens: the UNet's per-frame split applies at T=6
    assert torch.equal(context[:, :77], model.conditioner.empty_text.expand(2, -1, -1))
    assert torch.equal(context[:, 77:], image)
    assert not torch.allclose(context[0, 77:], context[1, 77:])  # depends on the frame


# ---- the official conversion and released checkpoints -----------------------------------------------------------
@pytest.mark.parametrize("mode", ["extrapolative", "masked", "shift"])
def test_converting_the_fixture_unet_reproduces_the_official_transfer(official, tmp_path, tiny_parts, mode):
    parts = dict(tiny_parts, unet=load_file(official / "dynamicrafter_tiny_unet.safetensors"))
    ckpt = write_checkpoint(tmp_path / "model.ckpt", parts)
    model, report = convert_checkpoint(ckpt, ConvertOptions(
        preset="tiny", transfer=mode, norm="clip", out_conv_height_causal=True,
        action_space=ActionSpace.continuous(7)))
    converted = to_official_keys(model.unet.state_dict())
    reference = load_file(official / f"transfer_{mode}.safetensors")
    new = set(load_json(official / "transfer.json")["modes"][mode]["new_keys_left_at_init"])
    assert sorted(report.causalization["new"]) == sorted(new)
    for key, value in reference.items():
        if key not in new:
            assert torch.equal(converted[key], value), f"{mode}: {key}"
    converted.update({k: reference[k] for k in new})  # the official init of the action layers, then compare outputs
    model.unet.load_state_dict({k.replace(".conv3d.", ".").replace(".conv2d.", "."): v for k, v in converted.items()})
    io = load_file(official / "vid2world_tiny_io.safetensors")
    with torch.no_grad():
        out = model.unet(io["x"], io["timesteps"], io["context"], io["fs"], io["action_raw"], io["action_mask"])
    assert (out - load_file(official / "transfer_io.safetensors")[f"out_{mode}"]).abs().max() <= 1e-5


@pytest.mark.parametrize("discrete", [False, True], ids=["continuous", "multi_hot"])
def test_released_vid2world_checkpoint_matches_the_official_forward(official, tmp_path, tiny_parts, discrete):
    ckpt = write_checkpoint(tmp_path / "v2w.ckpt", dict(tiny_parts, unet=_official_unet(official, discrete)))
    out = tmp_path / "wm"
    assert main(["convert", "--base", str(ckpt), "--preset", "tiny", "--official", "--out", str(out)]) == 0
    model = WorldModel.from_pretrained(out)
    causal = model.unet.config.causal
    assert causal.temporal_norm == "clip" and causal.out_conv_height_causal and not model.sampler.cache
    assert model.action_dim == (51 if discrete else 7)
    io = load_file(official / f"vid2world_tiny_io{'_discrete' if discrete else ''}.safetensors")
    with torch.no_grad():
        y = model.unet(io["x"], io["timesteps"], io["context"], io["fs"], io["action_raw"], io["action_mask"])
    assert (y - io["out"]).abs().max() <= 1e-5


# ---- UNet-only files (pixel space) -------------------------------------------------------------------------------
PIXEL = UNetConfig.preset("tiny", in_channels=6, out_channels=3, context_dim=None, image_cross_attention=False,
                          fs_condition=False, norm_groups=8, dropout=0.0, temporal_length=8)


@pytest.mark.parametrize("prefixed", [True, False], ids=["prefixed", "bare"])
def test_unet_only_pixel_model(tmp_path, prefixed):
    from vid2world.testing import randomize_weights

    unet = randomize_weights(VideoUNet(PIXEL), seed=3)
    prefix = "model.diffusion_model." if prefixed else ""
    path = tmp_path / "unet.safetensors"
    save_file({prefix + k: v.contiguous() for k, v in unet.state_dict().items()}, str(path))
    (tmp_path / "unet.json").write_text(json.dumps(PIXEL.to_dict()))
    out = tmp_path / "wm"
    assert main(["convert", "--base", str(path), "--unet-config", str(tmp_path / "unet.json"),
                 "--action-space", "discrete:5", "--out", str(out)]) == 0
    model = WorldModel.from_pretrained(out)
    assert model.codec.kind == "identity" and model.conditioner is None and model.concat_first_frame
    reference, _ = causalize(unet, "extrapolative", "frame", ActionSpace.multi_hot(5))
    assert all(torch.equal(model.unet.state_dict()[k], v) for k, v in reference.state_dict().items())
    actions = np.zeros((1, 3, 5), np.float32)
    actions[..., 1] = 1
    frames = model.rollout(_frames(size=16), actions, steps=2)
    assert frames.shape == (1, 2, 16, 16, 3)


def test_unet_only_file_without_a_fitting_preset_names_the_nearest(tmp_path):
    path = tmp_path / "unet.pt"
    torch.save(VideoUNet(PIXEL).state_dict(), path)
    with pytest.raises(CheckpointError) as err:
        convert_checkpoint(path, ConvertOptions(preset="dynamicrafter-512"))
    msg = str(err.value)
    assert str(path) in msg and "does not fit preset 'dynamicrafter-512'" in msg and "nearest preset is 'tiny'" in msg


# ---- inspect -------------------------------------------------------------------------------------------------------
def test_inspect_reports_format_preset_parts_and_actions(tmp_path, tiny_ckpt, tiny_parts, official):
    info = inspect_checkpoint(tiny_ckpt)
    assert info["format"] == "lightning" and info["layout"] == "dynamicrafter" and info["preset"] == "tiny"
    assert info["actions"] is None and info["dtype"] == "float32"
    for part, sd in tiny_parts.items():
        assert info["parts"][part]["keys"] == len(sd)
        assert info["parts"][part]["parameters"] == sum(v.numel() for v in sd.values())
    # A released checkpoint in half precision, with one VAE key lost.
    vae = {k: v for k, v in tiny_parts["vae"].items() if k != "decoder.conv_out.bias"}
    parts = {p: {k: v.half() for k, v in sd.items()}
             for p, sd in dict(tiny_parts, unet=_official_unet(official, True), vae=vae).items()}
    path = write_checkpoint(tmp_path / "half.ckpt", parts)
    info = inspect_checkpoint(path)
    assert info["layout"] == "vid2world" and info["dtype"] == "float16" and info["official_renamed"] == 66
    assert info["actions"] == {"kind": "multi_hot", "width": 51, "key": "action_emb_preprocess.weight"}
    assert info["parts"]["unet"]["preset"] == "tiny" and info["preset"] is None
    vae_info = info["parts"]["vae"]
    assert vae_info["preset"] is None and vae_info["nearest"] == "tiny" and vae_info["differences"] == 1
    assert vae_info["examples"] == ["missing decoder.conv_out.bias"]
    assert main(["inspect", str(path), "--json", str(tmp_path / "i.json")]) == 0
    assert json.loads((tmp_path / "i.json").read_text())["actions"]["width"] == 51


def test_inspect_describes_a_converted_world_model(tmp_path, tiny_ckpt, capsys):
    out = tmp_path / "wm"
    assert main(["convert", "--base", str(tiny_ckpt), "--preset", "tiny", "--norm", "causal", "--action-dim", "7",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["inspect", str(out), "--json", str(tmp_path / "wm.json")]) == 0  # was "no such checkpoint file"
    text = capsys.readouterr().out
    assert "format vid2world world model" in text and "UNet preset: tiny" in text
    assert "causal: temporal norm causal" in text and "actions: continuous, width 7" in text
    info = json.loads((tmp_path / "wm.json").read_text())
    model = WorldModel.from_pretrained(out)
    for name, module in {"unet": model.unet, "codec": model.codec, "conditioner": model.conditioner}.items():
        assert info["parts"][name]["parameters"] == sum(v.numel() for v in module.state_dict().values())
    assert info["parameters"] == sum(p["parameters"] for p in info["parts"].values())
    assert info["preset"] == "tiny" and info["dtype"] == "float32" and info["codec"]["kind"] == "sd-vae"
    assert info["conditioner"]["kind"] == model.conditioner.config()["kind"]
    assert info["sampler"]["steps"] == model.sampler.steps and info["source"]["path"] == str(tiny_ckpt)
    config = json.loads((out / "config.json").read_text())  # an architecture no preset has
    config["unet"]["model_channels"] = 64
    (out / "config.json").write_text(json.dumps(config))
    info = inspect_checkpoint(out)
    assert info["preset"] is None and info["nearest"] == "tiny"
    assert info["preset_differences"] == ["model_channels 64 (preset: 32)"]
    del config["unet"]
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="config.json: key 'unet' is missing, expected the UNet's architecture"):
        inspect_checkpoint(out)


@pytest.mark.parametrize("target,message", [
    ("notckpt.txt", "notckpt.txt: not a checkpoint (it starts with 'hello"),
    ("plain", "plain: a directory without config.json; expected a world-model directory"),
    ("/dev/null", "/dev/null: not a regular file (a device, pipe or socket)"),
    ("missing.ckpt", "missing.ckpt: no such checkpoint file"),
])
def test_inspect_names_what_it_cannot_read(tmp_path, capsys, target, message):
    (tmp_path / "notckpt.txt").write_text("hello\n")
    (tmp_path / "plain").mkdir()
    if target == "/dev/null" and not Path(target).exists():
        pytest.skip("no /dev/null here")
    assert main(["inspect", str(tmp_path / target)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vid2world inspect: error: ") and message in lines[0]


# ---- errors ----------------------------------------------------------------------------------------------------------
def _convert_error(capsys, *args) -> str:
    assert main(["convert", *args]) == 2
    return capsys.readouterr().err


def test_not_a_checkpoint_and_truncated_files(tmp_path, capsys, tiny_ckpt):
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"this is not a checkpoint" * 10)
    err = _convert_error(capsys, "--base", str(junk), "--preset", "tiny", "--out", str(tmp_path / "a"))
    assert str(junk) in err and "not a checkpoint" in err
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(tiny_ckpt.read_bytes()[: tiny_ckpt.stat().st_size // 2])
    err = _convert_error(capsys, "--base", str(cut), "--preset", "tiny", "--out", str(tmp_path / "b"))
    assert str(cut) in err and ("truncated" in err or "unreadable" in err)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_preset_that_does_not_fit_says_which_it_looks_like(tmp_path, capsys, tiny_ckpt):
    err = _convert_error(capsys, "--base", str(tiny_ckpt), "--preset", "dynamicrafter-512", "--out",
                         str(tmp_path / "o"))
    assert str(tiny_ckpt) in err and "model.diffusion_model." in err and "looks like preset 'tiny'" in err


def test_missing_part_is_named(tmp_path, tiny_parts, capsys):
    parts = {k: v for k, v in tiny_parts.items() if k != "image_encoder"}
    path = write_checkpoint(tmp_path / "noclip.ckpt", parts)
    err = _convert_error(capsys, "--base", str(path), "--preset", "tiny", "--out", str(tmp_path / "o"))
    assert str(path) in err and "CLIP image tower is missing" in err and "'embedder.'" in err
    vae = {k: v for k, v in tiny_parts["vae"].items() if k != "encoder.conv_in.weight"}
    path = write_checkpoint(tmp_path / "novae.ckpt", dict(tiny_parts, vae=vae))
    err = _convert_error(capsys, "--base", str(path), "--preset", "tiny", "--out", str(tmp_path / "o"))
    assert "'first_stage_model.encoder.conv_in.weight' is missing" in err
    assert not (tmp_path / "o").exists()


def test_action_width_that_contradicts_the_checkpoint(tmp_path, tiny_parts, official, capsys):
    path = write_checkpoint(tmp_path / "v2w.ckpt", dict(tiny_parts, unet=_official_unet(official)))
    err = _convert_error(capsys, "--base", str(path), "--preset", "tiny", "--official", "--action-dim", "13",
                         "--out", str(tmp_path / "o"))
    assert str(path) in err and "model.diffusion_model.action_emb_proj.0.weight" in err
    assert "width 7" in err and "width 13" in err
    err = _convert_error(capsys, "--base", str(path), "--preset", "tiny", "--out", str(tmp_path / "o"))
    assert "--official" in err  # released checkpoints must not be causalized twice
    assert not (tmp_path / "o").exists()


def test_failed_write_leaves_no_directory_and_keeps_an_old_one(tmp_path, tiny_ckpt, monkeypatch):
    import vid2world.world.storage as wm  # where a world model is written

    out = tmp_path / "wm"
    calls = []

    def failing_save(tensors, filename, metadata=None):
        calls.append(filename)
        if len(calls) == 2:  # the UNet's file is written, the codec's fails
            raise OSError("disk full")
        save_file(tensors, filename, metadata=metadata)

    monkeypatch.setattr(wm, "save_file", failing_save)
    with pytest.raises(OSError, match="disk full"):
        convert(tiny_ckpt, out, ConvertOptions(preset="tiny"))
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temporary directory
    monkeypatch.setattr(wm, "save_file", save_file)
    convert(tiny_ckpt, out, ConvertOptions(preset="tiny"))
    before = (out / "model.safetensors").read_bytes()
    calls.clear()
    monkeypatch.setattr(wm, "save_file", failing_save)
    with pytest.raises(OSError):
        convert(tiny_ckpt, out, ConvertOptions(preset="tiny", transfer="shift"), overwrite=True)
    assert (out / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wm"]


def test_pretrained_bundle_matches_the_full_size_manifests(official):
    # The preset wires each part to the right architecture: every key and shape of every part, at full size.
    config = PRETRAINED["dynamicrafter-512"]
    unet = load_json(official / "manifest_dynamicrafter_512_unet.json")["keys"]
    vae = load_json(official / "manifest_first_stage_model.json")["keys"]
    clip = load_json(official / "manifest_clip_encoders.json")["keys"]
    proj = load_json(official / "manifest_image_proj_model.json")["keys"]
    manifests = {"unet": unet, "vae": vae, "image_proj": proj,
                 "text_encoder": {k: v for k, v in clip.items() if k.startswith("cond_stage_model.")},
                 "image_encoder": {k: v for k, v in clip.items() if k.startswith("embedder.")}}
    for part, manifest in manifests.items():
        ours = {PREFIXES[part] + k: list(v) for k, v in config.shapes(part).items()}
        assert ours == {k: list(v) for k, v in manifest.items()}, part


def test_bench_convert_runs_end_to_end_on_the_tiny_layout(tmp_path, capsys):
    assert main(["bench", "convert", "--preset", "tiny", "--dir", str(tmp_path), "--size", "32",
                 "--json", str(tmp_path / "r.json")]) == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["rollout"]["shape"] == [1, 1, 32, 32, 3]
    assert set(result["parts"]) == {"unet", "vae", "text_encoder", "image_encoder", "image_proj"}
    assert result["checkpoint_gb"] > result["world_model_gb"] > 0  # the text tower is dropped, its output kept
    written = result["checkpoint_gb"] + result["world_model_gb"]
    assert result["disk_needed_gb"] == pytest.approx(written, rel=0.03)  # the stated need: weights, less headers
    out = capsys.readouterr().out
    assert "tiny: stand-in checkpoint" in out and f"tiny: needs about {result['disk_needed_gb']:.2f} GB" in out
    # run again: its own earlier world model is replaced; a directory of that name holding anything else is not
    assert main(["bench", "convert", "--preset", "tiny", "--dir", str(tmp_path), "--size", "32"]) == 0
    config = json.loads((tmp_path / "tiny-world-model" / "config.json").read_text())
    config["metadata"]["source"]["path"] = str(tmp_path / "another.ckpt")  # a model the benchmark did not make
    (tmp_path / "tiny-world-model" / "config.json").write_text(json.dumps(config))
    assert main(["bench", "convert", "--preset", "tiny", "--dir", str(tmp_path), "--size", "32"]) == 2
    assert "holds a world model already" in capsys.readouterr().err
