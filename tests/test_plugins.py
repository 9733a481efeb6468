"""User code in every stage (issue 25, point 1): a run whose loss or model is registered by the
user's own module works in fresh processes after training -- through ``tfpilot --import`` (which
the run records in its config.yaml) and through a ``tfpilot.plugins`` entry point of a package
made visible by a ``.dist-info`` folder on PYTHONPATH (nothing is pip-installed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

PLUGIN = '''
import keras
from keras import ops

from tfpilot.models import register_model
from tfpilot.models.common import classifier_head, image_input
from tfpilot.training.losses import register_loss


@register_loss("my_loss")
def my_loss(scale=1.0):
    def loss(y_true, y_pred):
        return scale * ops.mean(ops.abs(y_pred - y_true), -1)
    return loss


@keras.saving.register_keras_serializable(package="tfp_test_plugin")
class MyScale(keras.layers.Layer):
    def call(self, x):
        return x * 0.5


@register_model("my_model")
def my_model(input_spec, num_classes):
    inputs, x = image_input(input_spec)
    x = MyScale()(keras.layers.Flatten()(x))
    return keras.Model(inputs, classifier_head(x, num_classes))
'''

SMALL_TRAIN = {"epochs": 1, "batch_size": 16, "precision": "float32",
               "callbacks": {"tensorboard": False, "progress": "none", "checkpoint": False, "backup": False},
               "precise_bn": {"enabled": False}, "mode_gap": {"enabled": False}}


def _env(*paths: Path) -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[1] / "src")
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": os.pathsep.join([src, *map(str, paths)])}


def _tfpilot(env: dict[str, str], *args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tfpilot.cli.main", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=300)


def _ok(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return out.stdout


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(folder holding the module, folder holding only its package's .dist-info with the entry point)."""
    code = tmp_path_factory.mktemp("plugin-code")
    (code / "tfp_test_plugin.py").write_text(PLUGIN, encoding="utf-8")
    meta = tmp_path_factory.mktemp("plugin-meta")
    info = meta / "tfp_test_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tfp-test-plugin\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[tfpilot.plugins]\nmine = tfp_test_plugin\n", encoding="utf-8")
    return code, meta


@pytest.fixture(scope="module")
def runs(plugin: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A table run whose head uses ``my_loss`` (trained with ``--import``) and a digits run of
    ``my_model`` with its own layer (trained with the module found through the entry point)."""
    from tfpilot.testing.table import make_table

    code, meta = plugin
    root = tmp_path_factory.mktemp("plugin-runs")
    table = make_table(root, rows=40, size=8, images=False)
    table_cfg = {"data": {"dataset": str(table)},
                 "features": {"inputs": ["size", "colour"], "outputs": [{"name": "price", "loss": "my_loss"}]},
                 "model": {"params": {"hidden_units": [8]}}, "train": SMALL_TRAIN,
                 "output": {"run_dir": str(root / "table")}}
    image_cfg = {"data": {"dataset": "digits", "train_limit": 200, "test_limit": 50},
                 "model": {"name": "my_model"}, "train": SMALL_TRAIN, "output": {"run_dir": str(root / "image")}}
    for name, cfg in (("table", table_cfg), ("image", image_cfg)):
        (root / f"{name}.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    _ok(_tfpilot(_env(code), "--import", "tfp_test_plugin", "train", root / "table.yaml", "--no-report"))
    _ok(_tfpilot(_env(code, meta), "train", root / "image.yaml", "--no-report"))
    return {"table": root / "table", "image": root / "image", "csv": table}


def test_the_run_records_what_it_imported(runs):
    assert yaml.safe_load((runs["table"] / "config.yaml").read_text())["imports"] == ["tfp_test_plugin"]
    assert yaml.safe_load((runs["image"] / "config.yaml").read_text())["imports"] == []  # the entry point:
    plugins = json.loads((runs["image"] / "env.json").read_text())["plugins"]
    assert plugins == [{"name": "mine", "value": "tfp_test_plugin", "dist": "tfp-test-plugin"}]


def test_a_stage_without_the_module_says_what_is_missing_and_how_to_provide_it(runs):
    out = _tfpilot(_env(), "evaluate", runs["table"])
    assert out.returncode != 0
    err = " ".join((out.stdout + out.stderr).split())
    assert "cannot import 'tfp_test_plugin'" in err and "PYTHONPATH" in err and "--import" in err, err
    # the image run's layer came from an entry point that is not installed here: the load names the class
    out = subprocess.run([sys.executable, "-c", f"import tfpilot; tfpilot.load({str(runs['image'])!r})"],
                         capture_output=True, text=True, env=_env(), timeout=300)
    assert out.returncode != 0
    assert "PluginError" in out.stderr and "MyScale" in out.stderr and "PYTHONPATH" in out.stderr, out.stderr[-3000:]


def _serve_and_ask(env: dict[str, str], run: Path, body: dict, logs: Path, monkeypatch) -> dict:
    from tests.serving.conftest import ServerProcess

    monkeypatch.setenv("PYTHONPATH", env["PYTHONPATH"])  # the server's environment
    server = ServerProcess([str(run), "--name", "m"], logs, tf_serving=True).wait_ready()
    try:
        answer = httpx.post(f"{server.url}/v1/models/m:predict", json=body, timeout=30)
    finally:
        server.stop()
    assert answer.status_code == 200, answer.text
    return answer.json()


LOAD = """
import sys, numpy as np, tfpilot
p = tfpilot.load(sys.argv[1])
x = {"size": np.array([1.0, 2.0]), "colour": np.array(["red", "blue"])} if sys.argv[2] == "table" else \\
    np.zeros((2, 8, 8, 1), "uint8")
print(sorted(p.predict_raw(x)))
"""


@pytest.mark.parametrize("kind", ["table", "image"])
def test_every_stage_works_in_a_fresh_process(kind, runs, plugin, tmp_path, monkeypatch):
    """table: the module comes back through the run's recorded ``imports``, in every stage; image:
    through the ``tfpilot.plugins`` entry point (nothing recorded), in the CLI, the Python API and
    the server (the stages load a run the same way: the table run shows each of them)."""
    code, meta = plugin
    run = runs[kind]
    env = _env(code) if kind == "table" else _env(code, meta)
    assert json.loads(_ok(_tfpilot(env, "evaluate", run, "--json")))["num_examples"] > 0
    if kind == "table":
        _ok(_tfpilot(env, "report", run))
        assert (run / "report.html").is_file()
        assert "price" in _ok(_tfpilot(env, "predict", run, runs["csv"], "--format", "json"))
        _ok(_tfpilot(env, "export", run, "--format", "keras", "--format", "saved_model"))
        _ok(_tfpilot(env, "verify", run))
    else:
        image = run / "digit.png"
        from PIL import Image

        Image.new("L", (8, 8)).save(image)
        assert "digit.png" in _ok(_tfpilot(env, "predict", run, image, "--format", "json"))
    loaded = subprocess.run([sys.executable, "-c", LOAD, str(run), kind], capture_output=True, text=True, env=env,
                            timeout=300)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    body = ({"instances": [{"size": 1.0, "colour": "red"}]} if kind == "table"
            else {"instances": [[[[0]] * 8] * 8]})
    assert "predictions" in _serve_and_ask(env, run, body, tmp_path, monkeypatch)


def test_a_missing_module_is_a_user_error_but_a_bug_inside_it_is_not(tmp_path, monkeypatch):
    from tfpilot.config import ConfigError, load_config
    from tfpilot.plugins import PluginError, import_modules

    (tmp_path / "tfp_broken_plugin.py").write_text("import no_such_dependency_xyz\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_xyz"):  # its own traceback says where
        import_modules(["tfp_broken_plugin"], "--import")
    with pytest.raises(PluginError, match=r"--import: cannot import 'tfp_missing_xyz'.*PYTHONPATH"):
        import_modules(["tfp_missing_xyz"], "--import")
    with pytest.raises(ConfigError, match=r"  - imports: cannot import 'tfp_missing_xyz'"):
        load_config({"imports": ["tfp_missing_xyz"]})
    assert load_config({"imports": ["json"]}).imports == ["json"]
