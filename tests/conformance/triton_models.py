"""Triton's example models as SavedModels, and a ``tfpilot serve`` process serving them.

Triton's Python example clients (``src/python/examples`` of triton-inference-server/client)
talk to three models of Triton's own QA repository; these are the same models, built with
TensorFlow as Triton's ``qa/common/gen_qa_models.py`` builds its ``savedmodel`` ones:

* ``simple``: INPUT0, INPUT1 int32 ``[-1, 16]`` -> OUTPUT0 = INPUT0 + INPUT1,
  OUTPUT1 = INPUT0 - INPUT1;
* ``simple_string``: the same on BYTES tensors whose elements are decimal integers;
* ``simple_identity``: INPUT0 BYTES ``[-1, -1]`` -> OUTPUT0, the same bytes.

``simple`` serves one version (1), as Triton's does. ``simple_dyn`` is a copy of it that the
model repository tests unload, load and give new versions.

The session fixtures ``triton_repository`` and ``triton_server`` (one server for every
conformance module; ``tests/conformance/conftest.py`` imports them) serve the four models with
REST on ``triton_server.port`` and gRPC on ``triton_server.grpc_port``.

Example:
    >>> root = build_repository(tmp_path)  # doctest: +SKIP
    >>> server = start_triton_server(root, tmp_path).wait_ready()  # doctest: +SKIP
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serving.conftest import ServerProcess

MODELS = ("simple", "simple_string", "simple_identity", "simple_dyn")


def simple(path: Path, offset: int = 0) -> Path:
    """Triton's ``simple`` add/sub model (``offset`` added to the sum)."""
    import tensorflow as tf

    spec = tf.TensorSpec([None, 16], tf.int32)

    class Simple(tf.Module):
        @tf.function(input_signature=[spec, spec])
        def serve(self, INPUT0, INPUT1):  # noqa: N803 -- Triton's tensor names
            return {"OUTPUT0": INPUT0 + INPUT1 + offset, "OUTPUT1": INPUT0 - INPUT1}

    module = Simple()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


def simple_string(path: Path) -> Path:
    """Triton's ``simple_string``: BYTES decimal integers in, sum and difference as BYTES out."""
    import tensorflow as tf

    spec = tf.TensorSpec([None, 16], tf.string)

    class SimpleString(tf.Module):
        @tf.function(input_signature=[spec, spec])
        def serve(self, INPUT0, INPUT1):  # noqa: N803
            a = tf.strings.to_number(INPUT0, tf.int32)
            b = tf.strings.to_number(INPUT1, tf.int32)
            return {"OUTPUT0": tf.strings.as_string(a + b), "OUTPUT1": tf.strings.as_string(a - b)}

    module = SimpleString()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


def simple_identity(path: Path) -> Path:
    """Triton's ``simple_identity``: one BYTES tensor back unchanged."""
    import tensorflow as tf

    class SimpleIdentity(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.string)])
        def serve(self, INPUT0):  # noqa: N803
            return {"OUTPUT0": tf.identity(INPUT0)}

    module = SimpleIdentity()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


def build_repository(root: Path) -> Path:
    """A model repository as Triton's: ``root/<model>/<version>/`` SavedModels."""
    simple(root / "simple" / "1")
    shutil.copytree(root / "simple" / "1", root / "simple_dyn" / "1")
    simple_string(root / "simple_string" / "1")
    simple_identity(root / "simple_identity" / "1")
    return root


def model_config(root: Path, names: tuple[str, ...] = MODELS) -> str:
    """A TF Serving ``--model_config_file`` serving ``names`` (the latest version of each)."""
    entries = [f"config {{\n  name: '{name}'\n  base_path: '{root / name}'\n"
               "  model_platform: 'tensorflow'\n}"
               for name in names]
    return "model_config_list {\n" + "\n".join(entries) + "\n}\n"


def start_triton_server(root: Path, log_dir: Path) -> ServerProcess:
    """``tfpilot serve`` on the repository (load/unload allowed), REST on ``server.port``, gRPC on
    ``server.grpc_port``."""
    config = log_dir / "models.config"
    config.write_text(model_config(root))
    args = ["--model_config_file", str(config), "--file_system_poll_wait_seconds", "0",
            "--model-control-mode", "explicit"]
    return ServerProcess(args, log_dir, tf_serving=True)


@pytest.fixture(scope="session")
def triton_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four models, built once per session."""
    return build_repository(tmp_path_factory.mktemp("triton-models"))


@pytest.fixture(scope="session")
def triton_server(triton_repository: Path,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One ``tfpilot serve`` on the four models (paths polled on demand), stopped at the end."""
    server = start_triton_server(triton_repository, tmp_path_factory.mktemp("triton-serve"))
    try:
        yield server.wait_ready(timeout=300)  # generous: a busy machine starts TensorFlow slowly
    finally:
        server.stop()
