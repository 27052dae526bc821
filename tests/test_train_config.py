"""`vid2world train` configuration: YAML + dotlist overrides, every key and type checked before anything runs."""

from __future__ import annotations

import pytest

from vid2world.cli import main
from vid2world.train.config import ConfigError, OptimSection, TrainConfig, load_config, save_config

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
    ("mode=finetune", "mode: 'finetune' is not one of ['pretrain', 'world-model']"),
    ("train.steps=0", "train.steps: must be >= 1"),
    ("train.precision=fp8", "train.precision"),
    ("data.size=[1,2,3]", "data.size: expected [H, W]"),
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
