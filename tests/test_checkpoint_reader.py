"""Checkpoint files of every supported kind read into one flat state dict; bad files are named, never unpickled."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from vid2world.cli import main
from vid2world.checkpoints.reader import CheckpointError, read_checkpoint

WEIGHTS = {"model.diffusion_model.input_blocks.0.0.weight": torch.randn(4, 8, 3, 3),
           "model.diffusion_model.framestride_embed.0.weight": torch.randn(16, 4),
           "first_stage_model.encoder.conv_in.weight": torch.randn(2, 3, 3, 3),
           "cond_stage_model.model.positional_embedding": torch.randn(5, 4),
           "embedder.model.visual.proj": torch.randn(4, 4),
           "image_proj_model.latents": torch.randn(1, 16, 4),
           "betas": torch.linspace(0, 1, 10)}


def check(ckpt, fmt):
    assert ckpt.format == fmt
    assert ckpt.renamed == {"model.diffusion_model.framestride_embed.0.weight":
                            "model.diffusion_model.fps_embedding.0.weight"}
    assert torch.equal(ckpt.state_dict["model.diffusion_model.fps_embedding.0.weight"],
                       WEIGHTS["model.diffusion_model.framestride_embed.0.weight"])
    parts = ckpt.parts()
    assert sorted(parts) == ["image_encoder", "image_proj", "other", "text_encoder", "unet", "vae"]
    assert sorted(parts["unet"]) == ["fps_embedding.0.weight", "input_blocks.0.0.weight"]
    assert list(parts["other"]) == ["betas"] and list(parts["image_proj"]) == ["latents"]


@pytest.mark.parametrize("fmt, wrap", [
    ("lightning", lambda w: {"state_dict": w, "epoch": 3, "global_step": 1000}),
    ("state_dict", lambda w: collections.OrderedDict(w)),
    ("deepspeed", lambda w: {"module": w}),
    ("deepspeed", lambda w: {f"module.{k}": v for k, v in w.items()}),
])
def test_pickled_formats(tmp_path, fmt, wrap):
    torch.save(wrap(WEIGHTS), tmp_path / "model.ckpt")
    check(read_checkpoint(tmp_path / "model.ckpt"), fmt)


def test_safetensors(tmp_path):
    save_file(WEIGHTS, str(tmp_path / "model.safetensors"))
    check(read_checkpoint(tmp_path / "model.safetensors"), "safetensors")


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_arbitrary_objects_are_not_unpickled(tmp_path, capsys):
    torch.save({"state_dict": WEIGHTS, "hyper_parameters": Payload()}, tmp_path / "model.ckpt")
    with pytest.raises(CheckpointError, match="model.ckpt: holds Python objects other than tensors"):
        read_checkpoint(tmp_path / "model.ckpt")
    assert "this must never run" not in capsys.readouterr().out
    assert read_checkpoint(tmp_path / "model.ckpt", trust_pickle=True).format == "lightning"


def test_bad_files_are_named(tmp_path):
    (tmp_path / "notes.ckpt").write_text("not a checkpoint at all")
    with pytest.raises(CheckpointError, match="notes.ckpt: .*not a checkpoint"):
        read_checkpoint(tmp_path / "notes.ckpt")
    (tmp_path / "hello.ckpt").write_text("hello")  # torch's unpickler raised a bare KeyError on this one
    with pytest.raises(CheckpointError, match="hello.ckpt: not a checkpoint \\(it starts with 'hello'"):
        read_checkpoint(tmp_path / "hello.ckpt")
    torch.save({"state_dict": WEIGHTS}, tmp_path / "model.ckpt")
    data = (tmp_path / "model.ckpt").read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.ckpt: unreadable, truncated"):
        read_checkpoint(tmp_path / "cut.ckpt")
    (tmp_path / "cut.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    with pytest.raises(CheckpointError, match="cut.safetensors: unreadable safetensors"):
        read_checkpoint(tmp_path / "cut.safetensors")
    torch.save({"epoch": 3}, tmp_path / "empty.ckpt")
    with pytest.raises(CheckpointError, match="empty.ckpt: no tensors found"):
        read_checkpoint(tmp_path / "empty.ckpt")
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        read_checkpoint(tmp_path / "missing.ckpt")


def test_what_is_not_a_checkpoint_file_says_what_it_is(tmp_path):
    (tmp_path / "notckpt.txt").write_text("hello\n")
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(tmp_path / "notckpt.txt")
    text = str(err.value)  # was "unreadable, truncated or not a checkpoint (101)"
    assert text.startswith(f"{tmp_path / 'notckpt.txt'}: not a checkpoint (it starts with 'hello")
    assert "torch.save" in text and ".safetensors" in text and "\n" not in text
    (tmp_path / "empty.ckpt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.ckpt: not a checkpoint \\(the file is empty\\)"):
        read_checkpoint(tmp_path / "empty.ckpt")
    (tmp_path / "bad.pt").write_bytes(b"\x80\x02garbage")  # a pickle header, then nonsense
    with pytest.raises(CheckpointError, match=r"bad.pt: not a checkpoint, or a corrupt one \(Unsupported operand"):
        read_checkpoint(tmp_path / "bad.pt")
    (tmp_path / "plain").mkdir()
    with pytest.raises(CheckpointError, match="plain: a directory, expected a checkpoint file"):
        read_checkpoint(tmp_path / "plain")
    (tmp_path / "plain" / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="plain: a directory \\(a world model, already converted\\?\\)"):
        read_checkpoint(tmp_path / "plain")
    if Path("/dev/null").exists():
        with pytest.raises(CheckpointError, match="/dev/null: not a regular file"):
            read_checkpoint("/dev/null")


def test_safetensors_content_is_read_whatever_the_suffix(tmp_path):
    save_file(WEIGHTS, tmp_path / "model.ckpt")
    assert read_checkpoint(tmp_path / "model.ckpt").format == "safetensors"


def test_the_cli_names_its_flag_and_python_its_keyword(tmp_path, capsys):
    torch.save({"state_dict": WEIGHTS, "hyper_parameters": Payload()}, tmp_path / "model.ckpt")
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(tmp_path / "model.ckpt")
    assert "pass trust_pickle=True" in str(err.value) and "--trust-pickle" not in str(err.value)
    assert main(["inspect", str(tmp_path / "model.ckpt")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"vid2world inspect: error: {tmp_path / 'model.ckpt'}: holds")
    assert "pass --trust-pickle" in lines[0] and "trust_pickle" not in lines[0]
