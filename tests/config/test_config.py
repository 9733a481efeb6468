from pathlib import Path

import pytest
import yaml

from tfpilot.config import Config, ConfigError, dump_config, load_config, parse_override

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_defaults_and_overrides_apply_in_order(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train: {epochs: 7, batch_size: 32}\nmodel: {name: mlp}\n")
    cfg = load_config(p, overrides=["train.epochs=3", "data.image_size=[32, 32]"], batch_size=64)
    assert cfg.train.epochs == 3  # --set wins over the file
    assert cfg.train.batch_size == 64  # short flag over the file
    assert cfg.data.image_size == (32, 32)
    assert cfg.model.name == "mlp"


def test_unknown_key_names_the_key_and_the_nearest_valid_one():
    with pytest.raises(ConfigError) as err:
        load_config(None, overrides=["train.epochz=3"])
    msg = str(err.value)
    assert "train.epochz: unknown key" in msg and "Did you mean 'epochs'" in msg


def test_unknown_section_and_nested_key():
    with pytest.raises(ConfigError, match=r"train\.optimizer\.lr: unknown key\. Did you mean 'learning_rate'"):
        load_config({"train": {"optimizer": {"lr": 0.1}}})
    with pytest.raises(ConfigError, match="trian: unknown key. Did you mean 'train'"):
        load_config({"trian": {}})


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("train.epochs=0", "train.epochs: Input should be greater than 0"),
        ("train.precision=fp8", "train.precision: Input should be 'auto'"),
        ("model.name=resnett", "Did you mean 'resnet'"),
        ("train.optimizer.name=adamm", "Did you mean 'adam'"),
        ("train.schedule.name=cosin", "Did you mean 'cosine'"),
        ("model={name: mnist_cnn, params: {hidden: 3}}", "model 'mnist_cnn' has no parameter 'hidden'"),
        ("data.val_split=0.6", "must leave some data for training"),
        ("data.image_size=[0, 5]", "two positive integers"),
    ],
)
def test_bad_values_fail_before_any_work(override, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(None, overrides=[override, "data.test_split=0.5"] if "val_split" in override else [override])
    assert fragment in str(err.value)


def test_plateau_and_schedule_conflict_is_explained():
    with pytest.raises(ConfigError, match="reduce_lr_on_plateau cannot change the learning rate"):
        load_config(None, overrides=["train.schedule.name=cosine", "train.callbacks.reduce_lr_on_plateau.enabled=true"])


def test_malformed_override():
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_override("train.epochs")
    with pytest.raises(ConfigError, match="is a value, not a section"):
        load_config({"train": {"epochs": 2}}, overrides=["train.epochs.x=1"])


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(None, overrides=["train.epochs=2", "model.params={hidden_units: [8]}"], model="mlp")
    p = tmp_path / "resolved.yaml"
    p.write_text(dump_config(cfg))
    again = load_config(p)
    assert again == cfg
    assert yaml.safe_load(p.read_text())["train"]["optimizer"]["name"] == "adam"  # defaults written out


@pytest.mark.parametrize("preset", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_preset_validates(preset):
    assert isinstance(load_config(preset), Config)


def test_seed_presets_exist():
    names = {p.name for p in CONFIGS.glob("*.yaml")}
    assert {"mnist_mlp.yaml", "mnist_cnn.yaml", "cifar10_cnn.yaml", "cifar10_cnn_bn.yaml", "mnist_fast.yaml"} <= names


def test_an_unknown_key_suggests_the_nearest_key_of_a_subsection():
    from tfpilot.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"train\.lr: unknown key\. Did you mean .*'optimizer\.learning_rate'"):
        load_config(None, overrides=["train.lr=0.1"])
    with pytest.raises(ConfigError, match=r"Did you mean 'batch_size'\?"):
        load_config(None, overrides=["train.bs=8"])
