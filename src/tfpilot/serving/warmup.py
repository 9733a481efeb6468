"""Warm-up as TF Serving does it: replay ``assets.extra/tf_serving_warmup_requests`` before serving.

The file is a TFRecord of ``tensorflow.serving.PredictionLog`` protos (predict, classify,
regress or multi-inference logs, each with its request). Every record is sent through the
version's real request path -- the micro-batcher included -- once, before the version
takes traffic; a failing record fails the load, as in TF Serving. At most 1,000 records.

Example:
    >>> from tfpilot.serving.warmup import warmup_file
    >>> warmup_file(Path("models/half_plus_two/123"))  # doctest: +SKIP
    PosixPath('models/half_plus_two/123/assets.extra/tf_serving_warmup_requests')
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from tfpilot.serving import protocol
from tfpilot.serving.servable import Servable
from tfpilot.serving.signatures import ModelLoadError

log = logging.getLogger("tfpilot.serving")

WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_RECORDS = 1000


def warmup_file(version_dir: Path) -> Path | None:
    """The warm-up file of a version folder, or None."""
    path = version_dir / WARMUP_FILE
    return path if path.is_file() else None


def read_warmup_logs(path: Path) -> list[Any]:
    """The ``PredictionLog`` records of a warm-up file (at most :data:`MAX_RECORDS`)."""
    import tensorflow as tf
    from google.protobuf.message import DecodeError
    from tensorflow_serving.apis import prediction_log_pb2

    logs = []
    try:
        for i, record in enumerate(tf.data.TFRecordDataset(str(path)).as_numpy_iterator()):
            if i >= MAX_RECORDS:
                raise ModelLoadError(f"{path}: more than {MAX_RECORDS} warm-up records", "INVALID_ARGUMENT")
            logs.append(prediction_log_pb2.PredictionLog.FromString(record))
    except DecodeError as exc:
        raise ModelLoadError(f"{path}: record {len(logs)} is not a PredictionLog ({exc})", "DATA_LOSS") from None
    except tf.errors.DataLossError as exc:
        raise ModelLoadError(f"{path}: not a TFRecord file ({exc.message})", "DATA_LOSS") from None
    return logs


async def replay(servable: Servable, logs: list[Any]) -> int:
    """Send every record's request to ``servable`` (started); the number sent."""
    for i, entry in enumerate(logs):
        kind = entry.WhichOneof("log_type")
        if kind == "predict_log":
            await protocol.predict(servable, entry.predict_log.request)
        elif kind == "classify_log":
            await protocol.classify(servable, entry.classify_log.request)
        elif kind == "regress_log":
            await protocol.regress(servable, entry.regress_log.request)
        elif kind == "multi_inference_log":
            await protocol.multi_inference(servable, entry.multi_inference_log.request)
        else:
            raise ModelLoadError(f"warm-up record {i}: unsupported log type {kind!r} (predict, classify, "
                                 "regress and multi_inference logs are replayed)", "UNIMPLEMENTED")
    return len(logs)


def write_warmup_file(version_dir: Path, logs: list[Any]) -> Path:
    """Write ``logs`` (``PredictionLog`` protos) as the version's warm-up file, as TF Serving reads it."""
    import tensorflow as tf

    path = version_dir / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for entry in logs:
            writer.write(entry.SerializeToString())
    return path
