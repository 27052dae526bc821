"""The bundled models: the quick build runs every stage end to end and resumes; the shipped ViZDoom model loads,
is small, strictly causal, exact under the cache, and takes the recorder's frames and actions directly."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

import vid2world as v2w
from vid2world.causal.diagnostics import ProbeInputs, future_leak
from vid2world.cli import main
from vid2world.zoo.recipe import load_recipe, recipe_names

pytestmark = pytest.mark.usefixtures("one_thread")
MiB = 2 ** 20


def test_quick_build_runs_every_stage_and_resumes(tmp_path, capsys):
    out = tmp_path / "build"
    assert main(["zoo", "build", "vizdoom-deathmatch", "--quick", "--out", str(out), "--no-progress"]) == 0
    for stage in ("autoencoder", "pretrain", "finetune", "refine", "refine-2", "distill", "idm", "eval-quality",
                  "eval-fast", "model"):
        assert (out / stage).is_dir(), stage
    card = json.loads((out / "model" / "card.json").read_text())
    assert card["rebuild"] == "vid2world zoo build vizdoom-deathmatch"
    assert card["stages"]["finetune"]["config"]["steps"] == card["stages"]["refine-2"]["config"]["steps"] == 3
    fast = card["evaluation"]["fast"]  # the distilled student ships: one unguided step in both presets
    assert (fast["steps"], fast["guidance"], fast["precision"]) == (1, 1.0, "fp32")
    assert "(1, 1, fp32)" in (out / "model" / "card.md").read_text()
    assert {"quality", "fast"} == set(card["evaluation"]) and card["evaluation"]["quality"]["steps"] == 1
    assert card["stages"]["distill"]["config"]["teacher_guidance"] == 2.0
    assert "model" in card["evaluation"]["quality"]["sources"]
    assert "## Held-out evaluation" in (out / "model" / "card.md").read_text()
    scored = json.loads((out / "eval-fast" / "results.json").read_text())  # every held-out episode, said so
    assert scored["protocol"]["split"] is None and not any("no episode in split" in n for n in scored["notes"])
    assert card["evaluation"]["fast"]["paired"] == scored["paired"]  # the card's window-by-window lines
    assert "- fast, against copy last frame: " in (out / "model" / "card.md").read_text()
    from safetensors.torch import load_file

    from vid2world.io.weights import read_weights

    stored, student = (load_file(str(out / d / "model.safetensors")) for d in ("model", "distill"))
    assert {v.dtype for v in stored.values()} == {torch.int8, torch.float16, torch.float32}  # the recipe's int8-rows
    shipped = read_weights(out / "model" / "model.safetensors")
    assert sorted(shipped) == sorted(student)
    for k, v in student.items():  # the last stage ships: int8 rows within half a step of each row's range
        if stored[k].dtype == torch.int8:
            rows, error = v.reshape(len(v), -1), (shipped[k] - v).reshape(len(v), -1)
            assert (error.abs().amax(1) <= rows.abs().amax(1) / 254 * 1.001).all(), k
        else:
            assert torch.equal(stored[k], v.half()), k
    model = v2w.WorldModel.from_pretrained(out / "model")
    assert model.unet.config.strictly_causal and model.action_dim == 12
    assert model.metadata["env"] == "vizdoom:deathmatch" and model.metadata["frame_size"] == [64, 64]
    stamp = (out / "refine-2" / "stage.json").stat().st_mtime_ns
    kept = tmp_path / "kept"
    assert main(["zoo", "build", "vizdoom-deathmatch", "--quick", "--out", str(out), "--until", "refine",
                 "--keep-stages", str(kept), "--no-progress"]) == 0
    assert (out / "refine-2" / "stage.json").stat().st_mtime_ns == stamp  # resumed: nothing retrained
    passive = v2w.WorldModel.from_pretrained(kept / "pretrain")  # float16 on disk, float32 loaded
    assert passive.unet.config.causal is None and next(passive.unet.parameters()).dtype == torch.float32
    assert v2w.WorldModel.from_pretrained(kept / "refine-2").unet.config.strictly_causal  # the latest stage
    assert (kept / "autoencoder" / "codec.safetensors").is_file()
    assert not (kept / "finetune").exists() and not (kept / "refine").exists()  # a build goes on from the latest
    assert (kept / "distill" / "stage.json").is_file()  # and the student, so it is not distilled again
    again = tmp_path / "again"  # a fresh build directory with the kept stages: nothing is trained again
    shutil.copytree(kept, again)
    stamp = (again / "refine-2" / "stage.json").stat().st_mtime_ns
    assert main(["zoo", "build", "vizdoom-deathmatch", "--quick", "--out", str(again), "--until", "refine",
                 "--no-progress"]) == 0
    assert (again / "refine-2" / "stage.json").stat().st_mtime_ns == stamp
    assert not (again / "finetune").exists() and not (again / "refine").exists()
    _ablations_start_from_the_build(out, tmp_path / "ablations", capsys)
    _a_base_recipe_starts_from_the_base_stages(out, tmp_path / "boxing", capsys)


def _a_base_recipe_starts_from_the_base_stages(base, out, capsys):
    """atari-boxing starts from vizdoom-deathmatch's autoencoder and pretrain stages: copied, never retrained, the
    base's pretraining data not recorded again; the card lists that data and scores the codec on Boxing frames."""
    args = ["zoo", "build", "atari-boxing", "--quick", "--out", str(out), "--eval-presets", "fast", "--no-progress"]
    assert main(args + ["--base-stages", str(out / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert str(out / "nowhere" / "autoencoder") in err and "--base-stages" in err and err.count("\n") == 1
    assert "git restore --source=" in err and "vid2world zoo build vizdoom-deathmatch --until pretrain" in err
    assert not (out / "data").exists()  # it failed before recording anything
    assert main(args + ["--base-stages", str(base)]) == 0
    for stage in ("autoencoder", "pretrain"):
        assert (out / stage / "stage.json").read_bytes() == (base / stage / "stage.json").read_bytes()
    assert sorted(p.name for p in (out / "data").iterdir()) == ["atari_Boxing-s0", "atari_Boxing-s1"]
    model = v2w.WorldModel.from_pretrained(out / "model")
    assert model.action_dim == 18 and model.metadata["env"] == "atari:Boxing" and model.unet.config.strictly_causal
    card = json.loads((out / "model" / "card.json").read_text())
    assert card["base"] == "vizdoom-deathmatch" and card["rebuild"] == "vid2world zoo build atari-boxing"
    pretrain = [r for r in card["data"] if r["role"].startswith("pretrain")]
    assert {r["env"] for r in pretrain} == {s.env for s in load_recipe("vizdoom-deathmatch").pretrain_data}
    assert 0 < card["stages"]["autoencoder"]["target_heldout_psnr"] < 60
    assert {"heldout_psnr_before", "heldout_psnr"} <= set(card["stages"]["decoder"])
    assert "Its decoder, fine-tuned on this model's frames" in (out / "model" / "card.md").read_text()
    from safetensors.torch import load_file

    shipped, adapted, base_codec = (load_file(str(d / "codec.safetensors"))
                                    for d in (out / "model", out / "decoder", base / "autoencoder"))
    assert all(torch.equal(shipped[k], v.half()) for k, v in adapted.items())  # the adapted decoder ships
    encoder = [k for k in base_codec if k.startswith(("vae.encoder.", "vae.quant_conv."))]
    assert encoder and all(torch.equal(adapted[k], base_codec[k]) for k in encoder)  # the base's encoder, unchanged
    assert any(not torch.equal(adapted[k], base_codec[k]) for k in adapted if k.startswith("vae.decoder."))


def _ablations_start_from_the_build(build, out, capsys):
    """`zoo ablate` on the quick build: every (arm, seed) fine-tuned and scored, spreads over the seeds, a clip-norm
    arm recomputing its window, and a second call resuming without training anything again."""
    args = ["zoo", "ablate", "vizdoom-deathmatch", "--quick", "--build", str(build), "--out", str(out), "--steps", "2",
            "--seeds", "2", "--arms", "transfer,norm-clip", "--guidance", "1", "--windows", "2", "--no-progress"]
    assert main(args) == 0
    summary = json.loads((out / "ablations.json").read_text())
    fast = summary["fast_guidance"]  # the recipe's fast preset; the transfer arm also without guidance
    assert set(summary["cells"]) == {f"transfer@{fast:g}", "transfer@1", f"norm-clip@{fast:g}"}
    cell = summary["cells"][f"norm-clip@{fast:g}"]
    assert cell["psnr"]["n"] == 2 and len(cell["seeds"]) == 2 and len(cell["psnr_per_horizon"]) == 4
    psnrs = [r["psnr"] for r in cell["seeds"]]
    assert cell["psnr"]["mean"] == pytest.approx(np.mean(psnrs))
    assert cell["psnr"]["sd"] == pytest.approx(np.std(psnrs, ddof=1))
    clip = json.loads((out / "runs" / "norm-clip-s1" / "config.json").read_text())
    assert clip["unet"]["causal"]["temporal_norm"] == "clip" and clip["sampler"]["cache"] is False
    assert json.loads((out / "runs" / "transfer-s0" / "stage.json").read_text())["config"]["seed"] == 0
    assert "## (d) temporal norm" in (out / "ablations.md").read_text() and (out / "per-horizon.png").is_file()
    assert "## (c) guidance scale" in (out / "ablations.md").read_text()
    # the arms paired on the same windows: each window averaged over the seeds, then mine - reference
    pair = summary["paired"]["(d) temporal norm"]
    assert pair["reference"] == f"transfer@{fast:g}" and set(pair["arms"]) == {f"norm-clip@{fast:g}"}
    mine, ref = (np.mean([r["per_window"]["psnr"] for r in summary["cells"][k]["seeds"]], axis=0)
                 for k in (f"norm-clip@{fast:g}", f"transfer@{fast:g}"))
    got = pair["arms"][f"norm-clip@{fast:g}"]
    assert len(mine) == 2 and got["psnr"]["difference"] == pytest.approx(np.mean(mine - ref), abs=1e-9)
    assert got["psnr"]["wins"] == int((mine > ref).sum()) and 0 <= got["seeds_ahead"] <= 2
    assert set(summary["paired"]["(c) guidance scale"]["arms"]) == {"transfer@1"}
    assert f"Window by window against `transfer@{fast:g}`" in (out / "ablations.md").read_text()
    scored = json.loads((out / "runs" / "norm-clip-s0" / f"eval-2x-g{fast:g}" / "results.json").read_text())
    assert scored["protocol"]["steps"] == 2 and not scored["counterfactual"]  # the quick recipe's fast preset
    stamp = (out / "runs" / "transfer-s1" / "stage.json").stat().st_mtime_ns
    assert main(args) == 0 and (out / "runs" / "transfer-s1" / "stage.json").stat().st_mtime_ns == stamp


def test_base_stages_are_found_in_the_restored_stages_else_the_bases_build(tmp_path, monkeypatch):
    from vid2world.zoo.stages import base_stages_dir

    monkeypatch.chdir(tmp_path)
    boxing = load_recipe("atari-boxing")
    assert base_stages_dir(boxing, "given/dir") == tmp_path.joinpath("given/dir").relative_to(tmp_path)
    for root in ("build/zoo", "zoo/stages"):  # the restored stages win over a build
        (tmp_path / root / "vizdoom-deathmatch" / "pretrain").mkdir(parents=True)
        (tmp_path / root / "vizdoom-deathmatch" / "pretrain" / "stage.json").write_text("{}")
        assert str(base_stages_dir(boxing, None)) == f"{root}/vizdoom-deathmatch"


def test_recipes_and_their_errors(tmp_path, capsys):
    assert "vizdoom-deathmatch" in recipe_names()
    recipe = load_recipe("vizdoom-deathmatch")
    quick = recipe.quick()
    assert quick.finetune.steps < recipe.finetune.steps and quick.unet_preset == recipe.unet_preset
    assert main(["zoo", "build", "no-such-model", "--out", str(tmp_path / "x")]) == 2
    assert "unknown bundled model 'no-such-model'" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nnot_a_field: 1\n")
    assert main(["zoo", "build", str(bad), "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "not_a_field" in err and "\n" == err[-1] and err.count("\n") == 1
    boxing, base = load_recipe("atari-boxing"), load_recipe("vizdoom-deathmatch")
    assert boxing.base == base.name and boxing.target.env == "atari:Boxing"
    assert (boxing.pretrain, boxing.vae, boxing.pretrain_data) == (base.pretrain, base.vae, base.pretrain_data)
    assert boxing.finetune.compile and not boxing.quick().finetune.compile  # the quick variant never compiles
    assert boxing.decoder.steps > boxing.quick().decoder.steps == 3
    pusht = load_recipe("pusht")  # the robot model's recipe: the same base, continuous actions with their range
    assert pusht.base == base.name and pusht.target.env == pusht.heldout.env == "pusht"
    assert pusht.target.seed != pusht.heldout.seed and pusht.vae == base.vae
    for text, needle in (("base: vizdoom-deathmatch\nvae: {ch: 8}\n", "['vae'] come from the base recipe"),
                         ("base: no-such-recipe\n", "unknown bundled model 'no-such-recipe'"),
                         ("decoder: {steps: 3}\n", "only a recipe with a base adapts its decoder"),
                         ("weights: int4\n", "weights: expected one of ['float16', 'int8-rows'], got 'int4'")):
        bad.write_text("name: x\n" + text)
        assert main(["zoo", "build", str(bad), "--out", str(tmp_path / "z")]) == 2
        assert needle in capsys.readouterr().err


needs_bundled = pytest.mark.skipif("vizdoom-deathmatch" not in v2w.zoo.names(),
                                   reason="the bundled ViZDoom model is not in this checkout")
bundled = pytest.mark.parametrize("name", v2w.zoo.names() or [pytest.param("none", marks=pytest.mark.skip(
    reason="no bundled model in this checkout"))])


@bundled
def test_bundled_model_is_small_and_says_what_it_is(name, capsys):
    root = v2w.zoo.path(name)
    files = [p for p in root.rglob("*") if p.is_file()]
    assert all(p.stat().st_size <= 16 * MiB for p in files)
    total = sum(p.stat().st_size for n in v2w.zoo.names() for p in v2w.zoo.path(n).rglob("*") if p.is_file())
    assert total <= 40 * MiB
    card = (root / "card.md").read_text()
    for needle in ("## Data", "## Training", "## Held-out evaluation", f"vid2world zoo build {name}"):
        assert needle in card
    assert main(["zoo", "list"]) == 0
    assert name in capsys.readouterr().out


@bundled
def test_bundled_model_is_causal_exact_and_driven_by_the_recorder(name):
    from vid2world.data.sim import make_simulator

    model = v2w.zoo.load(name)
    leak = future_leak(model.unet, ProbeInputs.random(model.unet, batch=1, frames=6, size=16), 2)
    assert float(leak[:3].max()) == 0.0 and float(leak[3:].max()) > 0
    sim = make_simulator(model.metadata["env"], model.metadata["frame_size"][0])
    try:
        start = sim.reset(7)
        assert sim.spec.to_dict() == model.metadata["actions"]
        rng = np.random.default_rng(0)
        actions = np.stack([sim.scripted_action(rng) for _ in range(3)])[None]  # the recorder's action vectors
    finally:
        sim.close()
    cached = model.rollout(start[None, None], actions, steps=2, seed=3)
    recomputed = model.rollout(start[None, None], actions, steps=2, seed=3, cache=False)
    assert cached.shape == (1, 3, 64, 64, 3) and cached.dtype == np.uint8
    assert np.abs(cached.astype(int) - recomputed.astype(int)).max() <= 1  # float rounding at most one level


@needs_bundled
def test_bench_play_times_both_presets(tmp_path):
    assert main(["bench", "play", "--frames", "2", "--warmup", "0", "--json", str(tmp_path / "p.json")]) == 0
    rows = {r["preset"]: r for r in json.loads((tmp_path / "p.json").read_text())["rows"]}
    model = v2w.zoo.load("vizdoom-deathmatch")  # each preset as the model samples it (the shipped student: 1 step)
    assert {p: (r["steps"], r["guidance"]) for p, r in rows.items()} == \
        {p: (model.sampling(p).steps, model.sampling(p).guidance) for p in ("quality", "fast")}
    assert all(r["fps"] > 0 for r in rows.values())
    assert all(r["frames"] == 2 for r in rows.values())
    assert main(["bench", "play", "--frames", "1", "--warmup", "1", "--steps", "2", "--guidance", "1,2.5",
                 "--json", str(tmp_path / "g.json")]) == 0
    grid = json.loads((tmp_path / "g.json").read_text())["rows"]
    assert [(r["steps"], r["guidance"]) for r in grid] == [(2, 1.0), (2, 2.5)]
