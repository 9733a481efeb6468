"""Built-in datasets: MNIST, Fashion-MNIST, CIFAR-10/100 and scikit-learn's digits.

Each looks for its files in :func:`~tfpilot.data.paths.search_dirs` (Keras' cache
layout) and falls back to Keras' own download; when both fail, the error lists where it
looked and how to fix it.
"""

from __future__ import annotations

import gzip
import logging
import pickle
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot.config.schema import DataConfig
from tfpilot.data.paths import DatasetNotFoundError, extract_archive, find_data_file, not_found_message
from tfpilot.data.registry import register_dataset
from tfpilot.data.report import DataReport
from tfpilot.data.source import RawDataset, Split
from tfpilot.errors import UserError
from tfpilot.spec import InputSpec

log = logging.getLogger(__name__)

Arrays = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]


def _keras_download(name: str, loader: Callable[[], Arrays], candidates: list[str], cfg: DataConfig) -> Arrays:
    log.info("%s not found locally; trying Keras' download", name)
    try:
        return loader()
    except Exception as exc:
        raise DatasetNotFoundError(not_found_message(name, candidates, cfg.data_dir) + f"\n(download error: {exc})") from None


def _image_arrays(name: str, arrays: Arrays, class_names: list[str], source: str) -> RawDataset:
    (x_tr, y_tr), (x_te, y_te) = arrays
    x_tr, x_te = (a[..., None] if a.ndim == 3 else a for a in (x_tr, x_te))
    splits = {
        "train": Split(y=np.asarray(y_tr).reshape(-1), x=np.ascontiguousarray(x_tr, dtype=np.uint8)),
        "test": Split(y=np.asarray(y_te).reshape(-1), x=np.ascontiguousarray(x_te, dtype=np.uint8)),
    }
    spec = InputSpec.image(*x_tr.shape[1:4])
    return RawDataset(name, class_names, spec, splits, DataReport(dataset=name, source=source))


def read_mnist_npz(path: str | Path) -> Arrays:
    with np.load(path, allow_pickle=False) as d:
        return (d["x_train"], d["y_train"]), (d["x_test"], d["y_test"])


@register_dataset("mnist", description="MNIST handwritten digits, 60k/10k 28x28 grayscale")
def mnist(cfg: DataConfig, report: DataReport) -> RawDataset:
    candidates = ["mnist.npz"]
    path = find_data_file(candidates, cfg.data_dir)
    if path is not None:
        arrays = read_mnist_npz(path)
    else:
        import keras

        arrays = _keras_download("mnist", keras.datasets.mnist.load_data, candidates, cfg)
    return _image_arrays("mnist", arrays, [str(i) for i in range(10)], str(path or "keras download"))


def read_idx(path: str | Path) -> np.ndarray:
    """Read an (optionally gzipped) IDX file, the format of MNIST's original files."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if data[:2] != b"\x00\x00" or data[2] != 8:
        raise UserError(f"{path} is not an unsigned-byte IDX file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


@register_dataset("fashion_mnist", description="Fashion-MNIST clothing, 60k/10k 28x28 grayscale")
def fashion_mnist(cfg: DataConfig, report: DataReport) -> RawDataset:
    files = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    candidates = [f"fashion-mnist/{files[0]}"]
    first = find_data_file(candidates, cfg.data_dir)
    if first is not None:
        d = first.parent
        x_tr, y_tr, x_te, y_te = (read_idx(d / f) for f in files)
        arrays: Arrays = ((x_tr, y_tr), (x_te, y_te))
    else:
        import keras

        arrays = _keras_download("fashion_mnist", keras.datasets.fashion_mnist.load_data, candidates, cfg)
    return _image_arrays("fashion_mnist", arrays, FASHION_CLASSES, str(first.parent if first else "keras download"))


def _unpickle(path: Path) -> dict[bytes, Any]:
    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")


def read_cifar_pickles(root: Path, fine: bool = True) -> tuple[Arrays, list[str]]:
    """Read Keras/Toronto's python-pickle CIFAR layout (cifar-10-batches-py or cifar-100-python)."""

    def to_images(batch: dict[bytes, Any]) -> np.ndarray:
        return np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)

    if (root / "data_batch_1").exists():  # CIFAR-10
        train = [_unpickle(root / f"data_batch_{i}") for i in range(1, 6)]
        test = _unpickle(root / "test_batch")
        key = b"labels"
        meta = _unpickle(root / "batches.meta")
        names = [n.decode() for n in meta[b"label_names"]]
    else:  # CIFAR-100
        train, test = [_unpickle(root / "train")], _unpickle(root / "test")
        key = b"fine_labels" if fine else b"coarse_labels"
        meta = _unpickle(root / "meta")
        names = [n.decode() for n in meta[b"fine_label_names" if fine else b"coarse_label_names"]]
    x_tr = np.concatenate([to_images(b) for b in train])
    y_tr = np.concatenate([np.asarray(b[key]) for b in train])
    return ((x_tr, y_tr), (to_images(test), np.asarray(test[key]))), names


def _cifar(name: str, dirname: str, archive: str, cfg: DataConfig, report: DataReport) -> RawDataset:
    candidates = [dirname, f"{dirname}-target/{dirname}", archive]
    path = find_data_file(candidates, cfg.data_dir)
    if path is not None and path.is_file():
        with tarfile.open(path):  # a clear error for a broken archive before extracting
            pass
        path = extract_archive(path) / dirname
    if path is not None:
        arrays, names = read_cifar_pickles(path)
        return _image_arrays(name, arrays, names, str(path))
    if name == "cifar10":  # the JPEG image-folder copy (cifar10-jpg/{train,test}/<class>/)
        jpg = find_data_file(["cifar10-jpg", "cifar10-jpg.tar.gz"], cfg.data_dir)
        if jpg is not None:
            from tfpilot.data.folder import load_image_folder

            report.note(f"using the JPEG image-folder copy of CIFAR-10 at {jpg}")
            ds = load_image_folder(jpg, cfg, report)
            ds.name = name
            return ds
        candidates += ["cifar10-jpg", "cifar10-jpg.tar.gz"]
    import keras

    loader = keras.datasets.cifar10.load_data if name == "cifar10" else keras.datasets.cifar100.load_data
    arrays = _keras_download(name, loader, candidates, cfg)
    names = CIFAR10_CLASSES if name == "cifar10" else [str(i) for i in range(100)]
    return _image_arrays(name, arrays, names, "keras download")


@register_dataset("cifar10", description="CIFAR-10, 50k/10k 32x32 RGB, 10 classes")
def cifar10(cfg: DataConfig, report: DataReport) -> RawDataset:
    return _cifar("cifar10", "cifar-10-batches-py", "cifar-10-python.tar.gz", cfg, report)


@register_dataset("cifar100", description="CIFAR-100 (fine labels), 50k/10k 32x32 RGB, 100 classes")
def cifar100(cfg: DataConfig, report: DataReport) -> RawDataset:
    return _cifar("cifar100", "cifar-100-python", "cifar-100-python.tar.gz", cfg, report)


@register_dataset("digits", description="scikit-learn's 8x8 digits (1,797 images, bundled, offline)")
def digits(cfg: DataConfig, report: DataReport) -> RawDataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    splits = {"train": Split(y=d.target, x=x)}
    return RawDataset("digits", [str(i) for i in range(10)], InputSpec.image(8, 8, 1), splits,
                      DataReport(dataset="digits", source="sklearn.datasets.load_digits"))
