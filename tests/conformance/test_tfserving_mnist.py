"""TF Serving's MNIST tutorial, unchanged: ``mnist_saved_model.py`` exported the model (conftest.py),
``tfpilot serve`` serves it, and ``mnist_client.py`` (gRPC Predict, ``float_val`` answers, 10 calls
at once) must report the model's own error rate on the images it sends."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.conformance.conftest import MNIST_SCRIPTS

NUM_TESTS = 100


def own_error_rate(model_dir, images: np.ndarray, labels: np.ndarray) -> float:
    """The exported model's error rate, called here through its ``predict_images`` signature."""
    loaded = tf.saved_model.load(str(model_dir))
    scores = loaded.signatures["predict_images"](images=tf.constant(images))["scores"].numpy()
    return float(np.mean(scores.argmax(axis=1) != labels))


def test_mnist_client_reports_the_models_error_rate(tf_server, tf_models):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    run = subprocess.run(
        [sys.executable, "mnist_client.py", f"--num_tests={NUM_TESTS}", "--concurrency=10",
         f"--server={tf_server.grpc_target}", f"--work_dir={tf_models['mnist_work']}"],
        cwd=MNIST_SCRIPTS, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    reported = re.search(r"Inference error rate: ([0-9.]+)%", run.stdout)
    assert reported is not None, run.stdout[-2000:]
    answered = run.stdout[:reported.start()].strip().splitlines()[-1]
    assert answered == "." * NUM_TESTS, answered[-2000:]  # a dot per answer; a failed call prints its error
    sys.path.insert(0, str(MNIST_SCRIPTS))
    try:
        import mnist_input_data
    finally:
        sys.path.remove(str(MNIST_SCRIPTS))
    test = mnist_input_data.read_data_sets(str(tf_models["mnist_work"])).test
    images, labels = test.images[:NUM_TESTS], test.labels[:NUM_TESTS]  # next_batch(1) takes them in order
    want = own_error_rate(tf_models["mnist"] / "1", images, labels)
    assert float(reported.group(1)) / 100 == pytest.approx(want, abs=1e-9)
