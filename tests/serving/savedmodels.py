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


def half_plus_n(path: Path, b: float = 2.0, c: float = 3.0) -> Path:
    """TF Serving's test model ``half_plus_two`` (``b=2``; ``half_plus_three``: ``b=3``), built as its
    ``saved_model_half_plus_two.py`` builds the TF1 one: a ``SavedModelBuilder`` graph that parses
    serialized tf.Examples (features ``x`` and ``x2``, default 0) with five signatures --
    ``serving_default`` (predict ``x:0`` [-1, 1] -> ``y:0`` = 0.5 x + b), ``regress_x_to_y``
    (-> y), ``regress_x_to_y2`` (-> 0.5 x + c), ``regress_x2_to_y3`` (``x2:0`` -> 0.5 x2 + c) and
    ``classify_x_to_y`` (scores only: y) -- and an asset file."""
    import tensorflow as tf

    tf1 = tf.compat.v1
    sm = tf1.saved_model
    graph = tf.Graph()
    with graph.as_default(), tf1.Session(graph=graph) as sess:
        a, vb, vc = tf1.Variable(0.5, name="a"), tf1.Variable(b, name="b"), tf1.Variable(c, name="c")
        serialized = tf1.placeholder(tf.string, name="tf_example", shape=[None])
        parsed = tf1.parse_example(serialized, {
            "x": tf1.FixedLenFeature([1], dtype=tf.float32),
            "x2": tf1.FixedLenFeature([1], dtype=tf.float32, default_value=[0.0]),
        })
        x = tf.identity(parsed["x"], name="x")
        y = tf.identity(tf.add(tf.multiply(a, x), vb), name="y")
        y2 = tf.identity(tf.add(tf.multiply(a, x), vc), name="y2")
        x2 = tf.identity(parsed["x2"], name="x2")
        a2, c2 = tf1.Variable(0.5, name="a2"), tf1.Variable(c, name="c2")
        y3 = tf.identity(tf.add(tf.multiply(a2, x2), c2), name="y3")
        asset_dir = path.parent / f".{path.name}-assets"
        asset_dir.mkdir(parents=True, exist_ok=True)
        (asset_dir / "foo.txt").write_text("asset-file-contents")
        asset = tf.constant(str(asset_dir / "foo.txt"))
        tf1.add_to_collection(tf1.GraphKeys.ASSET_FILEPATHS, asset)
        filename = tf1.Variable("foo.txt", name="filename_tensor", trainable=False, collections=[])
        sess.run(tf1.global_variables_initializer())
        builder = sm.Builder(str(path))
        builder.add_meta_graph_and_variables(
            sess, [sm.SERVING], signature_def_map={
                "regress_x_to_y": sm.regression_signature_def(serialized, y),
                "regress_x_to_y2": sm.regression_signature_def(serialized, y2),
                "regress_x2_to_y3": sm.build_signature_def({"inputs": sm.build_tensor_info(x2)},
                                                           {"outputs": sm.build_tensor_info(y3)},
                                                           sm.REGRESS_METHOD_NAME),
                "classify_x_to_y": sm.build_signature_def({"inputs": sm.build_tensor_info(serialized)},
                                                          {"scores": sm.build_tensor_info(y)},
                                                          sm.CLASSIFY_METHOD_NAME),
                "serving_default": sm.predict_signature_def({"x": x}, {"y": y}),
            },
            assets_collection=tf1.get_collection(tf1.GraphKeys.ASSET_FILEPATHS),
            main_op=tf.group(filename.assign("foo.txt")))
        builder.save()
    return path


#: The element types of :func:`tf1_strings_and_dtypes`' ``dtypes`` signature, by output name.
DTYPE_OUTPUTS = ("float", "double", "int8", "uint8", "int16", "uint16", "int32", "int64", "uint32",
                 "uint64", "bool", "half", "bfloat16")


def tf1_strings_and_dtypes(path: Path) -> Path:
    """A TF1 graph with two signatures: ``serving_default`` (``text`` string [-1] -> ``upper``
    string and ``length`` int32: the text's length in bytes) and ``dtypes`` (``x`` float [-1] -> x
    cast to each type of :data:`DTYPE_OUTPUTS`, named after it)."""
    import tensorflow as tf

    tf1 = tf.compat.v1
    sm = tf1.saved_model
    graph = tf.Graph()
    with graph.as_default(), tf1.Session(graph=graph) as sess:
        text = tf1.placeholder(tf.string, [None], name="text")
        upper, length = tf.strings.upper(text), tf.strings.length(text)
        x = tf1.placeholder(tf.float32, [None], name="x")
        casts = {name: tf.cast(x, getattr(tf, name if name not in ("float", "double", "half") else
                                           {"float": "float32", "double": "float64", "half": "float16"}[name]))
                 for name in DTYPE_OUTPUTS}
        builder = sm.Builder(str(path))
        builder.add_meta_graph_and_variables(sess, [sm.SERVING], signature_def_map={
            "serving_default": sm.predict_signature_def({"text": text}, {"upper": upper, "length": length}),
            "dtypes": sm.predict_signature_def({"x": x}, casts),
        })
        builder.save()
    return path
