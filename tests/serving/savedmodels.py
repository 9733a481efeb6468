"""SavedModels the serving tests build: a TF1 graph with predict/classify/regress signatures (as
TF Serving's own ``half_plus_two`` test model has), a TF2 ``tf.Module`` with two signatures,
a corrupt version, and TF Serving warm-up files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

TF1_CLASSES = ("low", "high")


def tf1_half_plus_two(path: Path) -> Path:
    """y = 0.5 * x + 2 three ways: ``serving_default`` (x float [-1, 1] -> y), ``classify_x_to_y``
    (serialized tf.Examples with feature x and optional bias -> classes low/high, scores) and
    ``regress_x_to_y`` (the same examples -> outputs = 0.5 * x + bias + 2)."""
    import tensorflow as tf

    tf1 = tf.compat.v1
    sm = tf1.saved_model
    graph = tf.Graph()
    with graph.as_default():
        serialized = tf1.placeholder(tf.string, [None], name="tf_example")
        features = tf1.parse_example(serialized, {
            "x": tf1.FixedLenFeature([1], tf.float32),
            "bias": tf1.FixedLenFeature([1], tf.float32, default_value=[0.0]),
        })
        a, b = tf1.Variable(0.5, name="a"), tf1.Variable(2.0, name="b")
        y = tf.add(a * features["x"] + features["bias"], b, name="y")
        p = tf.sigmoid(y - 2.5)
        scores = tf.concat([1 - p, p], axis=1, name="scores")
        classes = tf.tile(tf.constant([list(TF1_CLASSES)]), [tf.shape(y)[0], 1], name="classes")
        x = tf1.placeholder(tf.float32, [None, 1], name="x")
        y_raw = tf.add(a * x, b, name="y_raw")
        with tf1.Session(graph=graph) as sess:
            sess.run(tf1.global_variables_initializer())
            builder = sm.Builder(str(path))
            builder.add_meta_graph_and_variables(sess, [sm.SERVING], signature_def_map={
                "serving_default": sm.predict_signature_def({"x": x}, {"y": y_raw}),
                "classify_x_to_y": sm.classification_signature_def(serialized, classes, scores),
                "regress_x_to_y": sm.regression_signature_def(serialized, y),
            })
            builder.save()
    return path


def tf1_expected(x: np.ndarray, bias: np.ndarray | float = 0.0) -> np.ndarray:
    """What ``tf1_half_plus_two`` computes."""
    return 0.5 * np.asarray(x, np.float32) + np.float32(bias) + 2.0


def tf2_two_signatures(path: Path, scale: float = 1.0) -> Path:
    """A ``tf.Module``: ``serving_default`` (x float [-1, 2] -> y = x @ (scale * W)) and ``words``
    (text string [-1], n int32 [-1] -> length int32 = len(text) * n, upper_bytes string)."""
    import tensorflow as tf

    class TwoSignatures(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = tf.Variable([[1.0, 2.0], [3.0, 4.0]]) * scale

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
        def matmul(self, x: Any) -> dict[str, Any]:
            return {"y": tf.matmul(x, self.w)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text"),
                                      tf.TensorSpec([None], tf.int32, name="n")])
        def words(self, text: Any, n: Any) -> dict[str, Any]:
            return {"length": tf.strings.length(text) * n, "upper_bytes": tf.strings.upper(text)}

    module = TwoSignatures()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.matmul, "words": module.words})
    return path


def tf2_weights(scale: float = 1.0) -> np.ndarray:
    return np.array([[1.0, 2.0], [3.0, 4.0]], np.float32) * scale


def corrupt_version(path: Path) -> Path:
    """A version folder whose saved_model.pb is not a SavedModel."""
    path.mkdir(parents=True)
    (path / "saved_model.pb").write_bytes(b"this is not a protocol buffer \xff\xfe" * 10)
    return path


def predict_warmup(path: Path, inputs: dict[str, np.ndarray], count: int = 2) -> Path:
    """A TF Serving warm-up file (``assets.extra/tf_serving_warmup_requests``) of ``count`` predict logs."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    from tfpilot.serving.warmup import write_warmup_file

    logs = []
    for _ in range(count):
        request = predict_pb2.PredictRequest()
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
        logs.append(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request)))
    return write_warmup_file(path, logs)


def example_proto(**features: Any) -> Any:
    """A ``tf.train.Example`` with float features."""
    from tensorflow.core.example import example_pb2

    example = example_pb2.Example()
    for key, value in features.items():
        example.features.feature[key].float_list.value.extend(np.atleast_1d(value).astype(float).tolist())
    return example
