"""`vid2world train` configuration: YAML + dotlist overrides, every key and type checked before anything runs."""

from __future__ import annotations

import pytest

from vid2world.train.config import ConfigError, TrainConfig, load_config, save_config

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
    ("train.steps=abc", "key train.steps"),
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
