"""Small pieces, in process: answers built off the event loop, the decoder, the runner."""

from __future__ import annotations

import asyncio
import json
import threading

import numpy as np
import pytest

from tfpilot.serving.decode import InstanceDecoder, parse_json, request_instances
from tfpilot.serving.errors import BadRequest
from tfpilot.serving.lookup import INLINE_ANSWER_NUMBERS, json_answer, off_loop
from tfpilot.spec import InputSpec


def test_large_answers_are_built_in_a_thread_and_equal_small_ones() -> None:
    threads: list[str] = []

    def content(n: int):
        def make() -> dict:
            threads.append(threading.current_thread().name)
            return {"predictions": [[0.25, 0.75]] * n}
        return make

    small = asyncio.run(json_answer(content(2), 4))
    big = asyncio.run(json_answer(content(INLINE_ANSWER_NUMBERS), 2 * INLINE_ANSWER_NUMBERS))
    assert json.loads(small.body) == {"predictions": [[0.25, 0.75]] * 2}
    assert json.loads(big.body)["predictions"][-1] == [0.25, 0.75]
    assert big.media_type == "application/json"
    assert threads[0] == threading.main_thread().name and threads[1] != threading.main_thread().name


def test_off_loop_only_when_heavy() -> None:
    name = lambda: threading.current_thread().name  # noqa: E731
    assert asyncio.run(off_loop(name, heavy=False)) == threading.main_thread().name
    assert asyncio.run(off_loop(name, heavy=True)) != threading.main_thread().name


def test_decoder_rows_columns_and_encoded_images() -> None:
    seen: list[bytes] = []

    def fake_decode(data: bytes) -> np.ndarray:  # stands in for the training decoder
        seen.append(data)
        return np.full((2, 2, 1), 9, np.uint8)

    decoder = InstanceDecoder(InputSpec.image(2, 2, 1), decode_image=fake_decode, max_instances=3)
    png = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x02\x00\x00\x00\x02\x08\x00\x00\x00\x00W\xdd"
           b"R\xf8\x00\x00\x00\x0bIDATx\x9cc\xe0\x00\x02\x00\x00\x0c\x00\x03\x9d\xef\xa8\xc6\x00\x00\x00\x00IEND"
           b"\xaeB`\x82")
    import base64

    raw, form = request_instances(parse_json(json.dumps(
        {"instances": [[[1, 2], [3, 4]], {"image": {"b64": base64.b64encode(png).decode()}}]}).encode()))
    assert form == "row" and decoder.is_slow(raw)
    batch = decoder.decode(raw)
    assert batch.shape == (2, 2, 2, 1) and batch.dtype == np.uint8
    assert batch[0, :, :, 0].tolist() == [[1, 2], [3, 4]] and (batch[1] == 9).all() and seen == [png]
    raw, form = request_instances({"inputs": {"pixels": [[[0.0, 255.0], [3.0, 4.0]]]}})
    assert form == "column" and decoder.decode(raw)[0, 0, 1, 0] == 255
    with pytest.raises(BadRequest, match="too many instances: 4"):
        decoder.decode([[[0, 0], [0, 0]]] * 4)


def test_text_decoder() -> None:
    decoder = InstanceDecoder(InputSpec.text())
    batch = decoder.decode(["good", ["one string in a list"], {"b64": "aGk="}])
    assert batch.dtype == object and batch.tolist() == ["good", "one string in a list", "hi"]
    texts, names = decoder.decode_files([("a.txt", b"\xef\xbb\xbfline one\n\nline two\n")], per_line=True)
    assert texts.tolist() == ["line one", "line two"] and names == ["a.txt:1", "a.txt:2"]


def test_runner_pads_to_bucket_sizes_and_returns_only_real_rows() -> None:
    from tfpilot.serving.runner import Runner, buckets

    assert buckets(32) == (1, 2, 4, 8, 16, 32) and buckets(1) == (1,) and buckets(12) == (1, 2, 4, 8, 12)
    seen: list[int] = []

    def model(batch: np.ndarray) -> np.ndarray:
        seen.append(len(batch))
        return np.stack([batch[:, 0], 1 - batch[:, 0]], axis=1)

    runner = Runner(model, example=np.array([0.5]), kind="compiled", sizes=buckets(8), max_batch=8)
    out = runner(np.array([[0.1], [0.2], [0.3]]))
    assert seen == [4] and out.shape == (3, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, 0], [0.1, 0.2, 0.3], rtol=1e-6)
    runner(np.zeros((20, 1)))  # beyond the buckets: as it is
    assert seen[-1] == 20
    seen.clear()
    runner.warm_up()
    assert seen == [1, 2, 4, 8]
    plain = Runner(model, example=np.array([0.5]), kind="predictor", max_batch=8)
    plain(np.zeros((3, 1)))
    plain.warm_up()
    assert seen[-3:] == [3, 1, 8]


def test_an_image_pillow_reads_but_tensorflow_cannot_gets_a_clean_400() -> None:
    """A TIFF opens in PIL (so it passes the size check) but TensorFlow cannot decode it: the
    400 names the problem without TensorFlow's ``{{function_node ...}}`` / ``[Op:...]`` text."""
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (4, 4), 7).save(buf, format="TIFF")
    decoder = InstanceDecoder(InputSpec.image(4, 4, 1))
    with pytest.raises(BadRequest) as err:
        decoder.decode([{"b64": base64.b64encode(buf.getvalue()).decode()}])
    message = str(err.value)
    assert "instance 0: not a decodable image (" in message and "JPEG" in message
    assert "{{" not in message and "[Op:" not in message and "function_node" not in message
