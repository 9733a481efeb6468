"""In process and fast: version policies, labels and lookups of the version manager (with real
SavedModels), TF Serving's config files parsed with its protos, and tensor conversions."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.serving.savedmodels import corrupt_version, tf2_two_signatures
from tfpilot.serving.errors import BadRequest, NotFound, Unavailable
from tfpilot.serving.model_config import (
    ConfigError,
    parse_model_server_config,
    read_batching_parameters,
    read_monitoring_config,
    to_proto,
)
from tfpilot.serving.settings import ModelConfig, ServeSettings
from tfpilot.serving.versions import ManagerOptions, ModelManager


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A base path with versions 1, 2, 5 (y = x @ (v * W)), a non-numeric folder and a file."""
    root = tmp_path_factory.mktemp("versions") / "model"
    for v in (1, 2, 5):
        tf2_two_signatures(root / str(v), scale=float(v))
    (root / "notes").mkdir()
    (root / "README").write_text("not a version")
    return root


def manager(base: Path, **config) -> ModelManager:
    from tfpilot.serving.core import servable_factory

    settings = ServeSettings(model_configs=[ModelConfig(name="m", base_path=base, **config)], freeze_gc=False)
    return ModelManager(settings.model_configs[0], servable_factory(settings, None), ManagerOptions(poll_s=0))


async def scale(m: ModelManager, version: int | None = None, label: str | None = None) -> float:
    record = m.resolve(version, label)
    with record.lease() as servable:
        out = await servable.run("serving_default", {"x": np.array([[1.0, 0.0]], np.float32)})
    return float(out["y"][0, 0])


@pytest.mark.parametrize("policy, expected", [
    ({}, [5]), ({"num_versions": 2}, [2, 5]), ({"policy": "all"}, [1, 2, 5]),
    ({"policy": "specific", "versions": (1, 2, 9)}, [1, 2]),
], ids=["latest", "latest-2", "all", "specific"])
def test_version_policies(versions: Path, policy: dict, expected: list[int]) -> None:
    async def main() -> None:
        m = manager(versions, **policy)
        await m.poll()
        assert m.available() == expected
        assert await scale(m) == float(expected[-1])  # no version asked: the latest available
        for v in expected:
            assert await scale(m, v) == float(v)
        await m.stop()
        assert m.available() == []

    asyncio.run(main())


def test_labels_and_lookup_errors(versions: Path) -> None:
    async def main() -> None:
        m = manager(versions, policy="all", labels={"stable": 1, "canary": 5, "gone": 3})
        assert m.loading
        with pytest.raises(Unavailable, match="still loading"):
            m.resolve()
        await m.poll()
        assert (await scale(m, label="stable"), await scale(m, label="canary")) == (1.0, 5.0)
        with pytest.raises(BadRequest, match="Unrecognized servable version label: stabel. Did you mean 'stable'"):
            m.resolve(label="stabel")
        with pytest.raises(BadRequest, match="cannot be supplied"):
            m.resolve(1, "stable")
        with pytest.raises(NotFound, match=r"Specific\(m, 3\).*serves version\(s\) 1, 2, 5"):
            m.resolve(label="gone")
        status = m.status_proto()
        assert [s.version for s in status.model_version_status] == [5, 2, 1]  # newest first, as TF Serving
        with pytest.raises(NotFound, match="Could not find version 4 of model m"):
            m.status_proto(4)
        await m.stop()

    asyncio.run(main())


def test_a_lease_holds_a_version_until_its_request_ends(versions: Path, tmp_path: Path) -> None:
    base = tmp_path / "m"
    shutil.copytree(versions / "1", base / "1")

    async def main() -> None:
        m = manager(base)
        await m.poll()
        old = m.resolve()
        with old.lease() as servable:
            shutil.copytree(versions / "2", base / "2")
            poll = asyncio.create_task(m.poll())
            while m.available() != [2]:
                await asyncio.sleep(0.01)
            assert old.state == "UNLOADING" and not poll.done()  # waiting for this request
            out = await servable.run("serving_default", {"x": np.array([[1.0, 0.0]], np.float32)})
            assert out["y"][0, 0] == 1.0  # the old version still answers the request that holds it
        await poll
        assert old.state == "END" and old.servable is None
        with pytest.raises(Unavailable):
            with old.lease():
                pass
        await m.stop()

    asyncio.run(main())


def test_a_lease_from_a_thread_during_a_switch_resolves_again_to_the_new_version(versions: Path,
                                                                                   tmp_path: Path) -> None:
    """gRPC's threads look a version up, then lease it: if the event loop started unloading it in
    between, the lease is refused and the request resolves again (it does not fail)."""
    from tfpilot.serving.core import ServerCore

    base = tmp_path / "m"
    shutil.copytree(versions / "1", base / "1")

    async def main() -> tuple[int, float]:
        m = manager(base)
        await m.poll()
        core = ServerCore(ServeSettings(model_configs=[m.config], freeze_gc=False))
        core.managers["m"] = m
        old = m.resolve()
        with old.lease():  # keeps version 1 in UNLOADING while version 2 comes in
            shutil.copytree(versions / "2", base / "2")
            poll = asyncio.create_task(m.poll())
            while m.available() != [2]:
                await asyncio.sleep(0.01)
            assert old.state == "UNLOADING"
            stale, fresh = iter([old]), core.resolve
            core.resolve = lambda *args: next(stale, None) or fresh(*args)  # the first lookup: from before

            def in_a_thread() -> tuple[int, float]:
                with core.lease("m") as servable:
                    out = servable.run_blocking("serving_default", {"x": np.array([[1.0, 0.0]], np.float32)})
                    return servable.version, float(out["y"][0, 0])

            answer = await asyncio.to_thread(in_a_thread)
        await poll
        await m.stop()
        return answer

    assert asyncio.run(main()) == (2, 2.0)  # version 2 answered: y = x @ (2 W)


def test_a_broken_version_is_retried_when_its_folder_changes(versions: Path, tmp_path: Path) -> None:
    base = tmp_path / "m"
    shutil.copytree(versions / "1", base / "1")
    corrupt_version(base / "2")

    async def main() -> None:
        m = manager(base)
        await m.poll()
        assert m.available() == [1] and m.records[2].error_code == "DATA_LOSS"
        await m.poll()
        assert m.records[2].state == "END"  # unchanged: not retried
        shutil.rmtree(base / "2")
        shutil.copytree(versions / "2", base / "2")
        await m.poll()
        assert m.available() == [2] and m.records[1].state == "END"
        await m.stop()

    asyncio.run(main())


def test_model_server_config_round_trip_and_errors(tmp_path: Path) -> None:
    text = '''model_config_list {
      config { name: "a" base_path: "/m/a" model_platform: "tensorflow"
               model_version_policy { specific { versions: 3 versions: 1 } }
               version_labels { key: "stable" value: 1 } version_labels { key: "canary" value: 3 } }
      config { name: "b" base_path: "/m/b" model_version_policy { all {} } }
    }'''
    a, b = parse_model_server_config(text)
    assert (a.name, a.policy, a.versions, a.labels) == ("a", "specific", (1, 3), {"stable": 1, "canary": 3})
    assert (b.policy, b.num_versions) == ("all", 1)
    from google.protobuf import text_format

    assert parse_model_server_config(text_format.MessageToString(to_proto([a, b]))) == [a, b]
    bad = [
        ("model_config_list { config { name: \"a\" } }", "needs a base_path"),
        ("model_config_list { config { name: \"a\" base_path: \"/x\" model_platform: \"pytorch\" } }", "pytorch"),
        ("model_config_list { config { name: \"a\" base_path: \"/x\" } config { name: \"a\" base_path: \"/y\" } }",
         "two models are named 'a'"),
        ("model_config_list { config { nme: \"a\" } }", "not a text-format ModelServerConfig"),
    ]
    for body, fragment in bad:
        with pytest.raises(ConfigError, match=fragment):
            parse_model_server_config(body)


def test_batching_and_monitoring_files(tmp_path: Path) -> None:
    path = tmp_path / "batching.config"
    path.write_text("max_batch_size { value: 16 }\nbatch_timeout_micros { value: 1500 }\n"
                    "max_enqueued_batches { value: 10 }\nnum_batch_threads { value: 2 }\n"
                    "allowed_batch_sizes: 4\nallowed_batch_sizes: 16\nthread_pool_name { value: \"pool\" }\n")
    found = read_batching_parameters(path)
    assert (found.max_batch, found.timeout_ms, found.max_enqueued_batches, found.threads,
            found.allowed_batch_sizes) == (16, 1.5, 10, 2, (4, 16))
    path.write_text("max_batch_size { value: 16 }\nallowed_batch_sizes: 4\nallowed_batch_sizes: 8\n")
    with pytest.raises(ConfigError, match="must equal max_batch_size"):
        read_batching_parameters(path)
    path.write_text("max_batch_size: 16\n")
    with pytest.raises(ConfigError, match="not a text-format BatchingParameters"):
        read_batching_parameters(path)
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text('prometheus_config { enable: true path: "/metrics/prom" }')
    assert read_monitoring_config(monitoring) == "/metrics/prom"
    monitoring.write_text("prometheus_config { enable: false }")
    assert read_monitoring_config(monitoring) is None


def test_tensor_conversions() -> None:
    from tfpilot.serving.kserve_tensors import from_binary, from_json, to_binary
    from tfpilot.serving.tensors import DTYPES, array_from_proto, array_to_json, array_to_proto, json_to_array

    for arr in (np.arange(6, dtype=np.int64).reshape(2, 3), np.array([[0.5, -1.25]], np.float32),
                np.array([True, False]), np.array([b"a", b"\xff"], dtype=object)):
        back = array_from_proto(array_to_proto(arr))
        assert back.dtype == arr.dtype and back.tolist() == arr.tolist()
        packed = array_to_proto(arr, tensor_content=True)  # what tf.make_tensor_proto sends: still taken
        assert array_from_proto(packed).tolist() == arr.tolist()
        kind = "BYTES" if arr.dtype == object else {"int64": "INT64", "float32": "FP32", "bool": "BOOL"}[arr.dtype.name]
        assert from_binary(to_binary(arr), kind, list(arr.shape)).tolist() == arr.tolist()
    half = array_to_proto(np.array([1.5, -2.0], np.float16))  # Tensor::AsProtoField: the bits of each half
    assert list(half.half_val) == np.array([1.5, -2.0], np.float16).view(np.uint16).tolist()
    assert not half.tensor_content and list(array_to_proto(np.array([7], np.uint8)).int_val) == [7]
    assert from_json([1, 2, 3, 4], "INT32", [2, 2]).tolist() == [[1, 2], [3, 4]]
    assert json_to_array([[1, 2]], DTYPES["DT_UINT8"], "x").dtype == np.uint8
    assert json_to_array(["a", {"b64": "YQ=="}], DTYPES["DT_STRING"], "x").tolist() == [b"a", b"a"]
    assert array_to_json(np.array([b"ok", b"\xff"], dtype=object)) == ["ok", {"b64": "/w=="}]
    for value, dtype, fragment in (([[1, 2], [3]], "DT_FLOAT", "ragged"), ([1.5], "DT_INT32", "integers"),
                                   ([300], "DT_UINT8", "0..255"), ([True], "DT_FLOAT", "booleans"),
                                   ([1], "DT_BOOL", "true/false"), ([["a"], "b"], "DT_STRING", "ragged")):
        with pytest.raises(BadRequest, match=fragment):
            json_to_array(value, DTYPES[dtype], "x")
