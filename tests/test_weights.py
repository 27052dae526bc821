"""Shipped weight files (io/weights.py): int8 with a scale per output row, float16, read back as float32."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from vid2world.io.weights import MIN_QUANTIZED, SCALE_SUFFIX, quantize_rows, read_weights, write_weights

BUNDLED = Path(__file__).resolve().parents[1] / "src" / "vid2world" / "zoo" / "models"


def test_int8_rows_error_is_at_most_half_a_step_of_each_row():
    torch.manual_seed(0)
    weight = torch.randn(16, 8, 3, 3) * torch.logspace(-3, 1, 16).reshape(16, 1, 1, 1)  # rows of unlike ranges
    values, scale = quantize_rows(weight)
    assert values.dtype == torch.int8 and scale.shape == (16, 1, 1, 1)
    error = (values.float() * scale - weight).abs()
    assert (error <= scale / 2 * (1 + 1e-6)).all()
    peaks = weight.abs().reshape(16, -1).amax(1)
    assert torch.equal(values.reshape(16, -1).abs().amax(1), torch.full((16,), 127, dtype=torch.int8))
    torch.testing.assert_close((values.float() * scale).abs().reshape(16, -1).amax(1), peaks)
    zero_values, zero_scale = quantize_rows(torch.zeros(4, 300))  # an all-zero row must not divide by zero
    assert torch.isfinite(zero_scale).all() and not zero_values.any()


def test_write_then_read_gives_float32_state(tmp_path):
    torch.manual_seed(1)
    state = {"conv.weight": torch.randn(32, 16, 3, 3), "conv.bias": torch.randn(32),
             "small.weight": torch.randn(4, 4), "steps": torch.arange(3)}
    path = tmp_path / "model.safetensors"
    write_weights(state, path, "int8-rows", "model")
    with safe_open(str(path), framework="pt") as f:
        assert f.metadata() == {"format": "vid2world.model"}
        assert f.get_tensor("conv.weight").dtype == torch.int8
        assert f.get_tensor("conv.bias").dtype == torch.float16 and f.get_tensor("small.weight").numel() < MIN_QUANTIZED
        assert "conv.weight" + SCALE_SUFFIX in f.keys()
    back = read_weights(path)
    first = path.read_bytes()
    write_weights(state, path, "int8-rows", "model")
    assert path.read_bytes() == first, "the same weights make the same bytes"
    assert sorted(back) == sorted(state)
    assert back["conv.weight"].dtype == torch.float32 and torch.equal(back["steps"], state["steps"])
    relative = (back["conv.weight"] - state["conv.weight"]).norm() / state["conv.weight"].norm()
    assert 0 < relative < 0.01
    torch.testing.assert_close(back["conv.bias"], state["conv.bias"].half().float(), rtol=0, atol=0)
    write_weights(state, path, "float16", "model")
    assert read_weights(path)["conv.weight"].dtype == torch.float16
    with pytest.raises(ValueError, match="weights precision must be one of"):
        write_weights(state, path, "int4", "model")


def test_a_world_model_shipped_in_int8_loads_and_predicts_nearly_the_same(tmp_path):
    import vid2world as v2w
    from vid2world.zoo.finish import shipped_weights

    from .test_world_model import frames, pixel_unet

    wm = v2w.WorldModel(pixel_unet(), sampler=v2w.SamplerConfig(steps=2))
    source = wm.save_pretrained(tmp_path / "float")
    shipped = tmp_path / "int8"
    shipped.mkdir()
    (shipped / "config.json").write_bytes((source / "config.json").read_bytes())
    shipped_weights(source, shipped, "int8-rows")
    assert (shipped / "model.safetensors").stat().st_size < 0.4 * (source / "model.safetensors").stat().st_size
    loaded = v2w.WorldModel.from_pretrained(shipped)
    assert next(loaded.unet.parameters()).dtype == torch.float32
    actions = torch.rand(2, 3, 2) * 2 - 1
    ours, theirs = (m.rollout(frames(t=1), actions, seed=3).float() for m in (loaded, wm))
    assert not torch.equal(ours, theirs)
    assert (ours - theirs).abs().mean() < 0.03 * theirs.std(), "a few hundredths of the frames' spread"


def test_requantize_rewrites_a_model_directory_in_place_and_the_card_says_so(tmp_path):
    import json

    import vid2world as v2w
    from vid2world.zoo.card import card_markdown
    from vid2world.zoo.finish import requantize

    from .test_world_model import pixel_unet

    model = v2w.WorldModel(pixel_unet()).save_pretrained(tmp_path / "m")
    before = read_weights(model / "model.safetensors")
    requantize(model, "int8-rows")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary left beside it
    with safe_open(str(model / "model.safetensors"), framework="pt") as f:
        assert any(f.get_tensor(k).dtype == torch.int8 for k in f.keys())
    after = v2w.WorldModel.from_pretrained(model).unet.state_dict()
    assert all((after[k] - v).abs().max() <= v.abs().max() / 254 * 1.001 for k, v in before.items())
    card = json.loads((BUNDLED / "vizdoom-deathmatch" / "card.json").read_text())  # a real card to render
    card["weights"] = {"precision": "int8-rows", "requantized": {
        "precision": "int8-rows", "from": "float16", "date": "2026-12-07", "windows": 32, "preset": "fast",
        "gaps": {"PSNR": "19.08 against 19.10: -0.019 (-0.044 to -0.002)"}, "command": "python scripts/x.py"}}
    markdown = card_markdown(card)
    assert "weights stored in int8 with a scale per output row (the codec in float16)." in markdown
    assert "## Weights in int8 (2026-12-07)" in markdown and "| PSNR | 19.08 against 19.10: -0.019 (-0.044 to -0.002) |" in markdown
    assert markdown.index("## Weights in int8") < markdown.index("## Rebuild")
