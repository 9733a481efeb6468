import csv
import json

import numpy as np
import pytest
import yaml

from tfpilot.config import ConfigError, load_config
from tfpilot.testing import make_image_folder, tiny_config
from tfpilot.training import Trainer
from tfpilot.training.precision import choose_precision, cpu_flags
from tfpilot.training.schedules import create_schedule


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("data") / "shapes", per_class=30, size=16, corrupt=1)


@pytest.fixture(scope="module")
def trained(folder, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "run"
    cfg = load_config(tiny_config(folder, run_dir, epochs=3, batch_size=16),
                      overrides=["model.name=fast_cnn", "model.params={filters: [8], dense_units: 16}",
                                 "train.optimizer.learning_rate=0.01"])
    return Trainer(cfg).fit()


def test_run_directory_holds_everything(trained):
    run = trained.run_
    for name in ("config.yaml", "model.keras", "labels.json", "split.json", "history.csv", "metrics.json",
                 "data_report.json", "env.json"):
        assert run.file(name).is_file(), name
    m = run.metrics
    assert {"accuracy", "loss", "top_k_accuracy", "macro_f1", "balanced_accuracy"} <= set(m["test"])
    assert m["train_seconds"] > 0 and m["epochs_run"] == 3
    assert run.labels["class_names"] == ["circle", "square", "triangle"]
    assert run.labels["input"] == {"kind": "image", "shape": [16, 16, 3], "dtype": "uint8"}
    assert run.data_report["num_skipped"] == 3
    env = run.env
    assert env["packages"]["keras"] and env["seed"] == 42 and env["precision"] == m["precision"]
    rows = list(csv.DictReader(run.file("history.csv").open()))
    assert len(rows) == 3 and {"loss", "val_accuracy", "learning_rate"} <= set(rows[0])


def test_it_learns_the_synthetic_task(trained):
    assert trained.run_.metrics["test"]["accuracy"] >= 0.8
    assert trained.history_["loss"][-1] < trained.history_["loss"][0]


def test_resolved_config_reproduces_the_run(trained, tmp_path):
    resolved = yaml.safe_load(trained.run_.file("config.yaml").read_text())
    resolved["output"]["run_dir"] = str(tmp_path / "again")
    again = Trainer(load_config(resolved)).fit()
    assert json.loads(again.run_.file("split.json").read_text()) == json.loads(trained.run_.file("split.json").read_text())
    a, b = trained.run_.metrics["test"]["accuracy"], again.run_.metrics["test"]["accuracy"]
    assert abs(a - b) <= 0.1


def test_a_finished_run_is_not_overwritten(trained):
    cfg = load_config(trained.run_.file("config.yaml"))
    with pytest.raises(FileExistsError, match="already holds a finished run"):
        Trainer(cfg).fit()


def test_one_hot_labels_and_label_smoothing_train(folder, tmp_path, monkeypatch):
    import keras

    import tfpilot

    streams = []
    original = Trainer._train_stream
    monkeypatch.setattr(Trainer, "_train_stream",
                        lambda self, *a: streams.append(original(self, *a)) or streams[-1])
    cfg = load_config(tiny_config(folder, tmp_path / "r", label_mode="one_hot", label_smoothing=0.1, epochs=2),
                      overrides=["train.optimizer.learning_rate=0.01"])
    t = Trainer(cfg).fit()
    # model.fit got one-hot labels (not class ids) and the loss smooths them by 0.1
    loss = t.model_.loss
    assert isinstance(loss, keras.losses.CategoricalCrossentropy) and loss.get_config()["label_smoothing"] == 0.1
    batches = list(streams[0])
    ids = np.concatenate([y.numpy().argmax(1) for _, y in batches])
    for _, y in batches:
        assert y.shape[1] == 3 and set(np.unique(y.numpy())) == {0.0, 1.0}
        np.testing.assert_array_equal(y.numpy().sum(axis=1), 1.0)
    assert sorted(ids.tolist()) == sorted(np.tile(t.data_.splits["train"].y, 2).tolist())  # 2 epochs of train
    # the test accuracy recorded is the saved model's on the test split, recomputed here
    test = t.data_.splits["test"]
    probs = tfpilot.load(t.run_.path).predict_proba(list(test.paths) if test.x is None else test.x)
    recorded = t.run_.metrics["test"]
    assert recorded["num_examples"] == len(test.y)
    assert recorded["accuracy"] == pytest.approx(float(np.mean(probs.argmax(1) == test.y)))


def test_precision_auto_follows_the_cpu():
    expected = "mixed_bfloat16" if cpu_flags() & {"avx512_bf16", "amx_bf16"} else "float32"
    assert choose_precision("auto") == expected
    assert choose_precision("float32") == "float32"


def test_model_head_stays_float32_under_mixed_precision(trained):
    model = trained.model_
    assert model.layers[-1].dtype_policy.compute_dtype == "float32"
    if trained.precision_ == "mixed_bfloat16":
        assert any(layer.dtype_policy.compute_dtype == "bfloat16" for layer in model.layers)


@pytest.mark.parametrize("name", ["constant", "cosine", "warmup_cosine", "one_cycle", "exponential", "step",
                                  "cosine_restarts"])
def test_schedules_are_sane(name):
    from tfpilot.config import ScheduleConfig

    extra = {"step_epochs": 2} if name == "step" else {}
    s = create_schedule(ScheduleConfig(name=name, warmup_epochs=1 if name == "cosine" else 0, **extra), 0.1, 10, 5)
    lrs = [float(s(i)) if callable(s) else s for i in range(50)]
    assert max(lrs) == pytest.approx(0.1, rel=1e-3) and min(lrs) >= 0  # every schedule peaks at the base LR
    if name != "constant":
        assert lrs[-1] < 0.1


@pytest.mark.parametrize("name", ["warmup_cosine", "one_cycle"])
def test_warmup_epochs_zero_means_no_warmup_and_unset_the_schedules_default(name):
    from tfpilot.config import ScheduleConfig

    lr = lambda s: float(s(0))  # noqa: E731
    assert lr(create_schedule(ScheduleConfig(name=name, warmup_epochs=0), 0.1, 10, 5)) == pytest.approx(0.1, rel=1e-3)
    assert lr(create_schedule(ScheduleConfig(name=name), 0.1, 10, 5)) < 0.05  # its default warm-up
    warm = create_schedule(ScheduleConfig(name=name, warmup_epochs=2), 0.1, 10, 5)
    assert float(warm(10)) < 0.1 * 0.6 and float(warm(20)) == pytest.approx(0.1, rel=1e-3)


@pytest.mark.parametrize("name", ["constant", "exponential", "step", "cosine_restarts"])
def test_warmup_epochs_warms_up_every_schedule_then_leaves_it_unchanged(name):
    from tfpilot.config import ScheduleConfig

    cold = create_schedule(ScheduleConfig(name=name), 0.1, 10, 5)
    warm = create_schedule(ScheduleConfig(name=name, warmup_epochs=1.5), 0.1, 10, 5)
    at = lambda s, i: float(s(i)) if callable(s) else s  # noqa: E731
    assert at(warm, 0) == pytest.approx(0.01 * at(cold, 0), rel=1e-4)
    ramp = [at(warm, i) / at(cold, i) for i in range(16)]
    assert ramp == sorted(ramp) and ramp[7] == pytest.approx(0.01 + 0.99 * 7 / 15, rel=1e-4)
    assert [at(warm, i) for i in range(15, 50)] == pytest.approx([at(cold, i) for i in range(15, 50)], rel=1e-6)


def test_a_warmed_up_schedule_survives_a_keras_save_and_load(tmp_path):
    import keras

    from tfpilot.config import ScheduleConfig
    from tfpilot.runs.run import load_model
    from tfpilot.training.schedules import LinearWarmup

    sched = create_schedule(ScheduleConfig(name="step", warmup_epochs=1, step_epochs=2), 0.1, 10, 5)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(sched), loss="mse")
    model.fit(np.ones((8, 2)), np.ones((8, 1)), epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    optimizer = load_model(tmp_path / "m.keras").optimizer
    assert float(optimizer.learning_rate) == pytest.approx(float(sched(1)), rel=1e-6)  # one step: in the warm-up
    restored = optimizer._learning_rate  # the schedule itself (learning_rate is its value now)
    assert isinstance(restored, LinearWarmup)
    steps = (0, 5, 10, 25)
    assert [float(restored(i)) for i in steps] == pytest.approx([float(sched(i)) for i in steps], rel=1e-6)


@pytest.mark.parametrize(("key", "value", "name", "readers"), [
    ("decay_rate", 0.9, "cosine", "exponential"),
    ("step_epochs", 3, "exponential", "step"),
    ("cycle_mult", 1.5, "one_cycle", "cosine_restarts"),
    ("min_lr_ratio", 0.1, "one_cycle", "cosine, cosine_restarts, warmup_cosine"),
])
def test_a_schedule_key_the_schedule_does_not_read_is_an_error(key, value, name, readers):
    with pytest.raises(ConfigError, match=rf"train.schedule.{key} is not read by schedule '{name}'; "
                                          rf"it is read by {readers}\. Remove the key"):
        load_config(None, overrides=[f"train.schedule={{name: {name}, {key}: {value}}}"])
    load_config(None, overrides=[f"train.schedule={{name: {readers.split(', ')[0]}, {key}: {value}}}"])


def test_reduce_lr_on_plateau_refuses_a_warm_up():
    with pytest.raises(ConfigError, match="cannot change the learning rate of a warm-up schedule"):
        load_config(None, overrides=["train.schedule.warmup_epochs=1",
                                     "train.callbacks.reduce_lr_on_plateau.enabled=true"])


def test_bad_config_fails_before_any_work(tmp_path):
    with pytest.raises(ConfigError):
        load_config(tiny_config(tmp_path / "nope", tmp_path / "r"), overrides=["train.batch_size=-1"])
    assert not (tmp_path / "r").exists()


def test_missing_dataset_path_is_a_clear_error(tmp_path):
    cfg = load_config(tiny_config(tmp_path / "does-not-exist", tmp_path / "r"))
    with pytest.raises(KeyError, match="not an existing path either"):
        Trainer(cfg).fit()


def test_every_optimizer_builds():
    from tfpilot.config import OptimizerConfig
    from tfpilot.training.optimizers import OPTIMIZERS, create_optimizer

    for name in OPTIMIZERS.list():
        opt = create_optimizer(OptimizerConfig(name=name, clipnorm=1.0))
        assert np.isclose(float(opt.learning_rate), 1e-3)


def test_a_table_model_trains_through_the_custom_loop_as_through_fit(tmp_path):
    """train.loop=custom on a 2-input, 2-head model: a loss per head weighted by loss_weight, metrics per
    head, the same run files and the same numbers as model.fit with the same seed."""
    from tfpilot.testing.table import make_table

    table = make_table(tmp_path, rows=80, images=False)
    runs = {}
    for loop in ("fit", "custom"):
        cfg = load_config({
            "data": {"dataset": str(table)},
            "features": {"inputs": ["title", "size"], "outputs": ["kind", {"name": "price", "loss_weight": 0.5}]},
            "model": {"name": "multitask", "params": {"hidden_units": [16], "dropout": 0.0}},
            "train": {"epochs": 4, "batch_size": 8, "precision": "float32", "loop": loop, "seed": 7,
                      "optimizer": {"learning_rate": 0.01},
                      "callbacks": {"tensorboard": False, "progress": "none", "early_stopping": {"enabled": False}}},
            "output": {"run_dir": str(tmp_path / loop)},
        })
        runs[loop] = Trainer(cfg).fit().run_
    fit, custom = runs["fit"], runs["custom"]
    assert sorted(p.name for p in custom.path.iterdir()) == sorted(p.name for p in fit.path.iterdir())
    rows = {k: list(csv.DictReader(r.file("history.csv").open())) for k, r in runs.items()}
    assert list(rows["custom"][0]) == list(rows["fit"][0])
    assert {"kind_accuracy", "price_mae", "val_kind_accuracy", "val_price_mae"} <= set(rows["custom"][0])
    losses = [float(r["loss"]) for r in rows["custom"]]
    assert losses[-1] < 0.5 * losses[0]
    np.testing.assert_allclose(losses, [float(r["loss"]) for r in rows["fit"]], rtol=1e-3)
    heads, alone = custom.metrics["test"]["heads"], fit.metrics["test"]["heads"]
    assert heads["kind"]["accuracy"] == pytest.approx(alone["kind"]["accuracy"], abs=0.01)
    assert heads["price"]["mae"] == pytest.approx(alone["price"]["mae"], rel=0.01)
