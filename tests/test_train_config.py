"""`vid2world train` configuration: YAML + dotlist overrides, every key and type checked before anything runs."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from vid2world.cli import main
from vid2world.train.config import ConfigError, OptimSection, TrainConfig, load_config, save_config
from vid2world.train.config_ranges import RANGES, value_at

YAML = """
mode: world-model
model:
  preset: tiny
  unet: {norm_groups: 8}
data:
  path: data/doom
  size: [32, 48]
train:
  steps: 5
"""


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(YAML)
    return path


def test_yaml_and_overrides_merge_over_the_defaults(config_file):
    config = load_config(config_file, ["train.batch_size=4", "optim.lr=3e-4", "model.unet.dropout=0.0"])
    assert isinstance(config, TrainConfig)
    assert config.train.steps == 5 and config.train.batch_size == 4 and config.optim.lr == pytest.approx(3e-4)
    assert config.data.size == [32, 48] and config.model.unet == {"norm_groups": 8, "dropout": 0.0}
    assert config.optim.grad_clip == 0.5 and config.train.grad_accum == 1  # defaults stay


def test_saved_config_reloads_to_the_same_run(config_file, tmp_path):
    config = load_config(config_file, ["seed=7"])
    again = load_config(save_config(config, tmp_path / "resolved.yaml"))
    assert again == config and again.seed == 7


@pytest.mark.parametrize("override,message", [
    ("train.stpes=3", "unknown config key 'train.stpes'; did you mean train.steps"),
    ("trian.steps=3", "unknown config key 'trian'; did you mean train?"),
    ("model.tranfser=shift", "did you mean model.transfer"),
    ("train.steps=abc", "override train.steps=abc: train.steps: expected an integer, got 'abc'"),
    ("mode=finetune", "mode: must be one of ['pretrain', 'world-model'], got 'finetune'"),
    ("train.steps=0", "train.steps: must be >= 1"),
    ("train.precision=fp8", "train.precision"),
    ("data.size=[1,2,3]", "data.size: must be [H, W] with each >= 1, got [1, 2, 3]"),
    ("steps", "expected key=value"),
])
def test_bad_keys_and_values_are_named(config_file, override, message):
    with pytest.raises(ConfigError) as err:
        load_config(config_file, [override])
    assert message in str(err.value)


def test_unknown_key_in_the_file_is_named(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("optim:\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match="unknown config key 'optim.learning_rate'"):
        load_config(path)
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "broken.yaml").write_text("mode: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml: not valid YAML"):
        load_config(tmp_path / "broken.yaml")


def test_type_errors_name_the_source_the_key_and_the_expected_type(config_file, tmp_path):
    with pytest.raises(ConfigError) as err:  # was blamed on the YAML file
        load_config(config_file, ["train.batch_size=4", "train.steps=abc"])
    assert str(err.value) == "override train.steps=abc: train.steps: expected an integer, got 'abc'"
    path = tmp_path / "size.yaml"
    path.write_text("data:\n  size: 64\n")
    with pytest.raises(ConfigError) as err:  # was omegaconf's "AnyNode is not a ListConfig"
        load_config(path)
    assert str(err.value) == f"{path}: data.size: expected a list [H, W] of integers (e.g. [64, 64]), got 64"
    with pytest.raises(ConfigError, match=r"^override optim.betas=\[0.9,x\]: optim.betas\[1\]: expected a number"):
        load_config(config_file, ["optim.betas=[0.9,x]"])
    with pytest.raises(ConfigError, match=r"^override data=3: data: expected a section \(keys path, split"):
        load_config(config_file, ["data=3"])
    with pytest.raises(ConfigError, match=r"^override train.steps=0: train.steps: must be >= 1, got 0$"):
        load_config(config_file, ["train.steps=0"])


@pytest.mark.parametrize("override,key", [("optim.lr=nan", "optim.lr"), ("optim.lr=inf", "optim.lr"),
                                          ("optim.grad_clip=-inf", "optim.grad_clip"),
                                          ("optim.betas=[0.9,.nan]", "optim.betas[1]"),
                                          ("model.unet.dropout=.inf", "model.unet.dropout")])
def test_non_finite_numbers_are_refused_naming_the_key(config_file, override, key):
    with pytest.raises(ConfigError) as err:  # optim.lr=nan reached torch's optimiser, which named no key
        load_config(config_file, [override])
    assert str(err.value).startswith(f"override {override}: {key}: must be a finite number, got ")


def test_non_finite_number_in_the_file_or_in_python(tmp_path):
    path = tmp_path / "nan.yaml"
    path.write_text("optim:\n  lr: .nan\n")
    with pytest.raises(ConfigError, match=f"^{path}: optim.lr: must be a finite number, got nan$"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"^optim.ema_decay: must be a finite number, got inf$"):
        TrainConfig(optim=OptimSection(ema_decay=float("inf")))


def test_cli_names_the_override_in_one_line(config_file, capsys):
    assert main(["train", str(config_file), "train.steps=abc"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["vid2world train: error: override train.steps=abc: train.steps: expected an integer, got 'abc'"]


# ---- ranges: every key's value checked at load time, naming the key, the value, the range and the source ---
@pytest.mark.parametrize("override,message", [
    # accepted before, and wrong: the loss climbed (0.39 -> 1.43); a negative learning rate (loss 65.8)
    ("optim.grad_clip=-1", "optim.grad_clip: must be > 0, got -1.0"),
    ("optim.warmup_steps=-2", "optim.warmup_steps: must be >= 0, got -2"),
    # a ZeroDivisionError after step 1, the run directory left behind
    ("log.every=0", "log.every: must be >= 1, got 0"),
    ("log.save_every=0", "log.save_every: must be >= 1, got 0"),
    ("data.size=[0,0]", "data.size: must be [H, W] with each >= 1, got [0, 0]"),  # a traceback
    # torch's "Invalid learning rate" and Python's "slice step cannot be zero", no key named
    ("optim.lr=-1", "optim.lr: must be > 0, got -1.0"),
    ("data.frame_skip=0", "data.frame_skip: must be >= 1, got 0"),
])
def test_values_out_of_range_are_named_with_their_source(config_file, override, message):
    with pytest.raises(ConfigError) as err:
        load_config(config_file, [override])
    assert str(err.value) == f"override {override}: {message}"


def test_out_of_range_value_in_the_file_names_the_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("optim:\n  warmup_steps: -2\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, ["train.steps=3"])
    assert str(err.value) == f"{path}: optim.warmup_steps: must be >= 0, got -2"


def test_a_range_that_depends_on_another_key_names_both(config_file):
    with pytest.raises(ConfigError) as err:  # data.length puts the default log.sample_context=2 out of range
        load_config(config_file, ["data.length=2"])
    assert str(err.value) == "override data.length=2: log.sample_context: must be in [1, data.length=2), " \
                             "got 2"
    with pytest.raises(ConfigError) as err:
        load_config(config_file, ["data.layout=resize_pad"])
    assert str(err.value).startswith("override data.layout=resize_pad: data.inner: must be [H, W] when "
                                     "data.layout is resize_pad")


def test_yaml_whose_top_level_is_not_a_mapping_is_named(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- train.steps=3\n- optim.lr=0.1\n")
    with pytest.raises(ConfigError) as err:  # was AttributeError: 'list' object has no attribute 'items'
        load_config(path)
    assert str(err.value) == f"{path}: expected a mapping of config keys at the top level " \
                             "(e.g. `train: {steps: 100}`), got a list"
    path.write_text("42\n")
    with pytest.raises(ConfigError, match=r"top level \(e.g. `train: {steps: 100}`\), got an integer$"):
        load_config(path)


def test_interpolation_errors_name_the_source_and_the_key(config_file, tmp_path):
    path = tmp_path / "interp.yaml"
    path.write_text("out: runs/${nope}\n")
    with pytest.raises(ConfigError) as err:  # were three raw OmegaConf lines naming neither file nor override
        load_config(path)
    assert str(err.value) == f"{path}: out: cannot resolve interpolation runs/${{nope}}: " \
                             "Interpolation key 'nope' not found"
    with pytest.raises(ConfigError) as err:
        load_config(config_file, ["train.steps=${out}"])
    assert str(err.value) == "override train.steps=${out}: train.steps: interpolation ${out} does not give " \
                             "an integer"
    with pytest.raises(ConfigError) as err:  # OmegaConf named no key at all here
        load_config(config_file, ["data.size=${seed}"])
    assert str(err.value).startswith("override data.size=${seed}: data.size: interpolation ${seed} does not "
                                     "give a list [H, W] of integers")
    with pytest.raises(ConfigError, match=r"^override seed=\${seed}: seed: cannot resolve interpolation "):
        load_config(config_file, ["seed=${seed}"])
    with pytest.raises(ConfigError, match=r"^override data.size=\[\${seed},3\]: "):  # was yaml's ParserError
        load_config(config_file, ["data.size=[${seed},3]"])
    with pytest.raises(ConfigError, match=r"^override data.inner=\\\${seed}: data.inner: interpolation "):
        load_config(config_file, ["data.inner=\\${seed}"])  # escaped: OmegaConf failed later, naming no key
    assert load_config(config_file, ["out=${data.path}/run"]).out == "data/doom/run"  # a good one still works


def test_cli_names_a_bad_range_and_a_bad_interpolation_in_one_line(config_file, tmp_path, capsys):
    out = tmp_path / "run"
    for override, message in [("log.every=0", "log.every: must be >= 1, got 0"),
                              ("out=${nope}", "out: cannot resolve interpolation ${nope}: "
                                              "Interpolation key 'nope' not found")]:
        assert main(["train", str(config_file), f"out={out}", override]) == 2
        err = capsys.readouterr().err
        assert err.splitlines() == [f"vid2world train: error: override {override}: {message}"], err
        assert not out.exists()  # refused before a run directory is made


def test_every_key_has_a_range_and_the_defaults_are_inside_it():
    def leaves(cls, prefix=""):
        for f in dataclasses.fields(cls):
            sub = typing.get_type_hints(cls)[f.name]
            dotted = f"{prefix}{f.name}"
            yield from leaves(sub, f"{dotted}.") if dataclasses.is_dataclass(sub) else [dotted]

    assert sorted(RANGES) == sorted(leaves(TrainConfig))  # a new key needs its range
    defaults = TrainConfig().to_dict()
    assert [key for key, allowed in RANGES.items() if not allowed.accepts(value_at(defaults, key))] == []
