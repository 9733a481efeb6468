"""A classifier run directory and its exports written before issue 23 still load, evaluate and serve.

``tests/fixtures/classifier_run`` is a tiny run (scikit-learn's ``digits``, an ``mlp``) with its
``keras``, ``saved_model`` and ``tflite`` exports, made by ``tests/fixtures/make_classifier_run.py``
with the code of that time; its ``expected.json`` holds what that code predicted for four test
images. Every test works on a copy in a temporary folder (the run records the absolute path it was
trained in, which no longer exists), and asserts today's answers equal the recorded ones: the
Python API, ``tfpilot evaluate`` on the recorded split, and ``tfpilot serve`` over TF Serving's REST
and gRPC APIs with the served signatures of that time.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.serving.conftest import ServerProcess, free_port, png_bytes

FIXTURE = Path(__file__).parent / "fixtures" / "classifier_run"
CLASSES = [str(i) for i in range(10)]
#: Everything was float32 when the fixture was made; other CPUs may differ in the last bits.
ATOL = 1e-5
#: The outputs of the SavedModel export's ``serving_default`` signature, as TF Serving answers them.
SIGNATURE_OUTPUTS = {"probabilities", "classes", "class_ids", "scores"}
TIMEOUT = 30


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the fixture run, away from the folder it was trained in."""
    path = tmp_path_factory.mktemp("old-run") / "classifier_run"
    shutil.copytree(FIXTURE, path)
    return path


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    return json.loads((FIXTURE / "expected.json").read_text())


@pytest.fixture(scope="module")
def images(expected: dict[str, Any]) -> np.ndarray:
    """The four recorded test images, uint8 (4, 8, 8, 1)."""
    x = np.array(expected["images"], dtype=np.uint8)
    assert x.shape == (4, 8, 8, 1)
    return x


def test_the_fixture_is_a_small_run_recorded_elsewhere() -> None:
    size = sum(f.stat().st_size for f in FIXTURE.rglob("*") if f.is_file())
    assert size < 200_000
    recorded = (FIXTURE / "config.yaml").read_text()
    assert "run_dir: /" in recorded and str(FIXTURE) not in recorded  # an absolute path nothing may rely on
    for name in ("config.yaml", "model.keras", "labels.json", "split.json", "metrics.json", "history.csv"):
        assert (FIXTURE / name).is_file(), name


@pytest.mark.parametrize("artifact, reference", [
    ("", "predictor"),
    ("export/keras", "predictor"),
    ("export/saved_model", "saved_model"),
    ("export/tflite", "tflite"),
])
def test_load_predicts_the_recorded_probabilities(run: Path, expected: dict[str, Any], images: np.ndarray,
                                                  artifact: str, reference: str) -> None:
    import tfpilot

    predictor = tfpilot.load(run / artifact)
    assert predictor.class_names == CLASSES
    want = np.array(expected[reference]["probabilities"])
    np.testing.assert_allclose(predictor.predict_proba(images), want, atol=ATOL)
    labels = [p["label"] for p in predictor.predict(images, top_k=3)]
    assert labels == expected["predictor"]["labels"] == expected["saved_model"]["classes"]
    assert labels == [CLASSES[i] for i in want.argmax(axis=1)]


def test_the_saved_model_signature_answers_as_recorded(run: Path, expected: dict[str, Any],
                                                       images: np.ndarray) -> None:
    import tensorflow as tf

    signature = tf.saved_model.load(str(run / "export" / "saved_model")).signatures["serving_default"]
    out = signature(images=tf.constant(images))
    assert set(out) == SIGNATURE_OUTPUTS
    want = expected["saved_model"]
    np.testing.assert_allclose(out["probabilities"].numpy(), want["probabilities"], atol=ATOL)
    assert [c.decode() for c in out["classes"].numpy()] == want["classes"]
    assert out["class_ids"].numpy().tolist() == want["class_ids"]
    np.testing.assert_allclose(out["scores"].numpy(), want["scores"], atol=ATOL)


def test_evaluate_cli_rebuilds_the_recorded_split(run: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "tfpilot.cli.main", "evaluate", str(run), "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout)
    trained = json.loads((run / "metrics.json").read_text())["test"]
    assert got["num_examples"] == trained["num_examples"] == 179
    assert got["accuracy"] == pytest.approx(trained["accuracy"], abs=1e-9)
    assert got["confusion_matrix"] == trained["confusion_matrix"]
    saved = json.loads((run / "evaluations" / "test.json").read_text())
    assert saved["accuracy"] == pytest.approx(trained["accuracy"], abs=1e-9)


@pytest.fixture(scope="module")
def server(run: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One ``tfpilot serve`` (REST and gRPC) of the run directory (``run``), its SavedModel export
    folder (``export``) and a TF Serving base path holding that export as version 1 (``base``)."""
    base = tmp_path_factory.mktemp("tf-serving-base") / "digits"
    shutil.copytree(run / "export" / "saved_model", base / "1")
    grpc_port = free_port()
    proc = ServerProcess([str(run), str(run / "export" / "saved_model"), str(base), "--name", "run", "--name",
                          "export", "--name", "base", "--grpc-port", str(grpc_port)],
                         tmp_path_factory.mktemp("serve-logs"))
    proc.grpc_target = f"127.0.0.1:{grpc_port}"
    try:
        yield proc.wait_ready()
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        yield c


def signature_of(client: httpx.Client, model: str, name: str = "serving_default") -> dict[str, Any]:
    meta = client.get(f"/v1/models/{model}/metadata").json()["metadata"]
    assert meta["class_names"] == CLASSES
    assert meta["input_spec"] == {"kind": "image", "shape": [8, 8, 1], "dtype": "uint8"}
    return meta["signature_def"]["signature_def"][name]


def dims(tensor: dict[str, Any]) -> list[int]:
    return [int(d["size"]) for d in tensor["tensor_shape"]["dim"]]


def test_served_base_path_keeps_the_exported_signature(client: httpx.Client, expected: dict[str, Any],
                                                       images: np.ndarray) -> None:
    sig = signature_of(client, "base")
    assert list(sig["inputs"]) == ["images"]
    assert (sig["inputs"]["images"]["dtype"], dims(sig["inputs"]["images"])) == ("DT_UINT8", [-1, -1, -1, 1])
    assert set(sig["outputs"]) == SIGNATURE_OUTPUTS
    assert dims(sig["outputs"]["probabilities"]) == [-1, 10]
    r = client.post("/v1/models/base:predict", json={"instances": images.tolist()})
    assert r.status_code == 200, r.text
    rows = r.json()["predictions"]
    assert all(set(row) == SIGNATURE_OUTPUTS for row in rows)
    want = expected["saved_model"]
    np.testing.assert_allclose([row["probabilities"] for row in rows], want["probabilities"], atol=ATOL)
    assert [row["classes"] for row in rows] == want["classes"]
    assert [row["class_ids"] for row in rows] == want["class_ids"]
    np.testing.assert_allclose([row["scores"] for row in rows], want["scores"], atol=ATOL)


def test_served_base_path_keeps_the_bytes_signature(client: httpx.Client, expected: dict[str, Any],
                                                    images: np.ndarray) -> None:
    sig = signature_of(client, "base", "serving_bytes")
    assert (list(sig["inputs"]), sig["inputs"]["image_bytes"]["dtype"]) == (["image_bytes"], "DT_STRING")
    b64 = [{"b64": base64.b64encode(png_bytes(img)).decode()} for img in images]
    r = client.post("/v1/models/base:predict", json={"signature_name": "serving_bytes", "instances": b64})
    assert r.status_code == 200, r.text
    rows = r.json()["predictions"]
    np.testing.assert_allclose([row["probabilities"] for row in rows], expected["saved_model"]["probabilities"],
                               atol=ATOL)
    assert [row["classes"] for row in rows] == expected["saved_model"]["classes"]


@pytest.mark.parametrize("model, input_name, reference", [
    ("run", "image", "predictor"),
    ("export", "input", "saved_model"),
])
def test_served_run_and_export_folder_answer_as_before(client: httpx.Client, expected: dict[str, Any],
                                                       images: np.ndarray, model: str, input_name: str,
                                                       reference: str) -> None:
    sig = signature_of(client, model)
    assert list(sig["inputs"]) == [input_name]
    assert (sig["inputs"][input_name]["dtype"], dims(sig["inputs"][input_name])) == ("DT_UINT8", [-1, 8, 8, 1])
    assert list(sig["outputs"]) == ["output_0"] and dims(sig["outputs"]["output_0"]) == [-1, 10]
    r = client.post(f"/v1/models/{model}:predict", json={"instances": images.tolist()})
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(r.json()["predictions"], expected[reference]["probabilities"], atol=ATOL)


@pytest.fixture(scope="module")
def prediction_stub(server: ServerProcess) -> Iterator[Any]:
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(server.grpc_target) as channel:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


def test_grpc_predict_and_metadata_of_the_export(prediction_stub: Any, expected: dict[str, Any],
                                                 images: np.ndarray) -> None:
    import tensorflow as tf
    from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "base"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(images))
    response = prediction_stub.Predict(request, timeout=TIMEOUT)
    assert set(response.outputs) == SIGNATURE_OUTPUTS
    want = expected["saved_model"]
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["probabilities"]), want["probabilities"], atol=ATOL)
    assert [c.decode() for c in tf.make_ndarray(response.outputs["classes"])] == want["classes"]
    assert tf.make_ndarray(response.outputs["class_ids"]).tolist() == want["class_ids"]

    meta = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    meta.model_spec.name = "base"
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert prediction_stub.GetModelMetadata(meta, timeout=TIMEOUT).metadata["signature_def"].Unpack(signatures)
    sig = signatures.signature_def["serving_default"]
    images_info = sig.inputs["images"]
    assert tf.dtypes.as_dtype(images_info.dtype) == tf.uint8
    assert [d.size for d in images_info.tensor_shape.dim] == [-1, -1, -1, 1]
    assert set(sig.outputs) == SIGNATURE_OUTPUTS


def test_grpc_predict_of_the_run_directory(prediction_stub: Any, expected: dict[str, Any], images: np.ndarray) -> None:
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "run"
    request.inputs["image"].CopyFrom(tf.make_tensor_proto(images))
    response = prediction_stub.Predict(request, timeout=TIMEOUT)
    assert list(response.outputs) == ["output_0"]
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["output_0"]), expected["predictor"]["probabilities"],
                               atol=ATOL)
