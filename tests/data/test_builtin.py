import pickle
import tarfile

import numpy as np
import pytest

from tfpilot.config import DataConfig
from tfpilot.data import prepare_data
from tfpilot.data.builtin import read_idx
from tfpilot.data.paths import DatasetNotFoundError, search_dirs


def test_lookup_order(monkeypatch, tmp_path):
    monkeypatch.setenv("TFPILOT_DATA_DIR", str(tmp_path / "env"))
    dirs = search_dirs(tmp_path / "flag")
    assert dirs[0] == tmp_path / "flag" and dirs[1] == tmp_path / "env"
    assert dirs[2].parts[-2:] == (".keras", "datasets")


def test_mnist_from_the_shared_copy(shared_datasets):
    data = prepare_data(DataConfig(dataset="mnist", data_dir=shared_datasets, test_limit=500))
    assert data.input_spec.shape == (28, 28, 1)
    assert len(data.splits["train"]) + len(data.splits["val"]) == 60000
    assert len(data.splits["test"]) == 500
    assert data.splits["train"].x.dtype == np.uint8 and data.class_names[0] == "0"


def test_fashion_mnist_idx_files(shared_datasets):
    data = prepare_data(DataConfig(dataset="fashion_mnist", data_dir=shared_datasets, train_limit=1000))
    assert data.class_names[9] == "Ankle boot"
    assert len(data.splits["test"]) == 10000


def test_read_idx_rejects_non_idx(tmp_path):
    (tmp_path / "x").write_bytes(b"hello world")
    with pytest.raises(ValueError, match="not an unsigned-byte IDX"):
        read_idx(tmp_path / "x")


def test_digits_works_offline_with_70_20_10():
    data = prepare_data(DataConfig(dataset="digits"))
    total = sum(len(s) for s in data.splits.values())
    assert total == 1797
    assert abs(len(data.splits["val"]) / total - 0.2) < 0.01
    assert abs(len(data.splits["test"]) / total - 0.1) < 0.01


def _write_cifar10_pickles(root):
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 255, (20, 3072), dtype=np.uint8), b"labels": list(np.arange(20) % 10)}
        (root / name).write_bytes(pickle.dumps(batch))
    names = [n.encode() for n in ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]]
    (root / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}))


def test_cifar10_pickle_layout_dir_and_tarball(tmp_path):
    _write_cifar10_pickles(tmp_path / "a" / "cifar-10-batches-py")
    data = prepare_data(DataConfig(dataset="cifar10", data_dir=tmp_path / "a"))
    assert data.input_spec.shape == (32, 32, 3) and data.class_names[0] == "airplane"
    assert len(data.splits["test"]) == 20
    # pixel layout: channel-planar rows become HWC
    raw = pickle.loads((tmp_path / "a" / "cifar-10-batches-py" / "test_batch").read_bytes())[b"data"][0]
    np.testing.assert_array_equal(data.splits["test"].x[0][0, 0], raw[[0, 1024, 2048]])

    (tmp_path / "b").mkdir()
    with tarfile.open(tmp_path / "b" / "cifar-10-python.tar.gz", "w:gz") as tf_:
        tf_.add(tmp_path / "a" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    data = prepare_data(DataConfig(dataset="cifar10", data_dir=tmp_path / "b"))
    assert len(data.splits["train"]) + len(data.splits["val"]) == 100


def test_missing_dataset_error_lists_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("TFPILOT_DATA_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    import keras

    def offline(*a, **k):
        raise OSError("no network")

    monkeypatch.setattr(keras.datasets.cifar100, "load_data", offline)
    with pytest.raises(DatasetNotFoundError) as err:
        prepare_data(DataConfig(dataset="cifar100", data_dir=tmp_path / "flag"))
    msg = str(err.value)
    assert str(tmp_path / "flag") in msg and str(tmp_path / "nothing") in msg
    assert "--data-dir" in msg and "TFPILOT_DATA_DIR" in msg
