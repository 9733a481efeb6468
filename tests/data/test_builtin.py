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


def test_digits_honours_image_size_and_color_mode_like_image_files(tmp_path):
    from sklearn.datasets import load_digits

    from tfpilot.testing import write_image

    data = prepare_data(DataConfig(dataset="digits", image_size=[16, 16], color_mode="rgb"))
    assert data.input_spec.shape == (16, 16, 3)
    assert {s.x.shape[1:] for s in data.splits.values()} == {(16, 16, 3)}
    # the same pixels as the 8x8 images written as PNG files and loaded as a folder at 16x16 rgb
    raw = np.round(load_digits().images * (255.0 / 16.0)).astype(np.uint8)
    test = data.splits["test"]
    for i, index in enumerate(test.ids[:12]):
        write_image(tmp_path / "png" / str(test.y[i]) / f"{index:04d}.png", raw[index])
    folder = prepare_data(DataConfig(dataset=str(tmp_path / "png"), image_size=[16, 16], color_mode="rgb",
                                     val_split=0.0, test_split=0.0))
    files = folder.splits["train"]
    by_name = {int(str(p).rsplit("/", 1)[-1][:4]): x for p, x in zip(files.ids, files.x)}
    for i, index in enumerate(test.ids[:12]):
        np.testing.assert_array_equal(test.x[i], by_name[int(index)])
    gray = prepare_data(DataConfig(dataset="digits", image_size=[4, 4], color_mode="grayscale", test_limit=10))
    assert gray.input_spec.shape == (4, 4, 1) and gray.splits["test"].x.shape == (10, 4, 4, 1)


def test_rgb_arrays_convert_to_grayscale(tmp_path):
    _write_cifar10_pickles(tmp_path / "a" / "cifar-10-batches-py")
    rgb = prepare_data(DataConfig(dataset="cifar10", data_dir=tmp_path / "a"))
    gray = prepare_data(DataConfig(dataset="cifar10", data_dir=tmp_path / "a", color_mode="grayscale"))
    assert gray.input_spec.shape == (32, 32, 1)
    luma = np.round(rgb.splits["test"].x.astype(np.float64) @ [0.2989, 0.5870, 0.1140])
    np.testing.assert_allclose(gray.splits["test"].x[..., 0], luma, atol=1)


def test_image_settings_on_a_text_dataset_are_refused(tmp_path):
    from tfpilot.testing.text import make_text_corpus, write_text_table

    path = write_text_table(tmp_path / "t.csv", *make_text_corpus(10))
    with pytest.raises(ValueError, match="apply to images"):
        prepare_data(DataConfig(dataset=str(path), image_size=[8, 8]))
