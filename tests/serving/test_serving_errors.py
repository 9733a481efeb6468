"""Every bad request gets a 4xx ``{"error": ...}`` that says what was wrong; the server stays up.

The server fixture runs with ``--max-instances 16 --max-body-mb 0.0625`` (64 KiB).
"""

from __future__ import annotations

import base64
import json
import struct
import zlib

import httpx
import numpy as np
import pytest

PREDICT = "/v1/models/shapes:predict"
GOOD = np.zeros((16, 16, 3), "uint8").tolist()


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares a huge size (only its header: what a decompression bomb looks like)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def assert_error(r: httpx.Response, status: int, *fragments: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}, body
    for fragment in fragments:
        assert fragment.lower() in body["error"].lower(), body["error"]


RAW_BODIES = [
    ("malformed json", b'{"instances": [1', "malformed JSON at line 1"),
    ("empty body", b"", "empty request body"),
    ("not utf-8", b'{"instances": ["\xff\xfe"]}', "not UTF-8"),
    ("a list, not an object", b"[1, 2, 3]", "must be a JSON object"),
    ("deeply nested", b"[" * 30_000 + b"]" * 30_000, "nested too deeply"),
]


@pytest.mark.parametrize("body, fragment", [b[1:] for b in RAW_BODIES], ids=[b[0] for b in RAW_BODIES])
def test_malformed_bodies(client: httpx.Client, body: bytes, fragment: str) -> None:
    assert_error(client.post(PREDICT, content=body), 400, fragment)


BAD_PAYLOADS = [
    ("typo in key", {"instance": [GOOD]}, "Did you mean 'instances'"),
    ("both forms", {"instances": [GOOD], "inputs": [GOOD]}, "not both"),
    ("instances not a list", {"instances": 3}, "must be a list"),
    ("no instances", {"instances": []}, "is empty"),
    ("bad signature", {"signature_name": "predict_images", "instances": [GOOD]}, "unknown signature_name"),
    ("wrong shape", {"instances": [np.zeros((8, 8, 3), int).tolist()]}, "wrong shape [8, 8, 3]", "16x16"),
    ("wrong channels", {"instances": [np.zeros((16, 16, 5), int).tolist()]}, "wrong shape [16, 16, 5]"),
    ("ragged rows", {"instances": [[[0, 0, 0]] * 16] * 15 + [[[0, 0, 0]] * 3]}, "wrong shape"),
    ("ragged lists", {"instances": [[[1, 2], [3]]]}, "ragged"),
    ("string for an image", {"instances": ["hello"]}, "wrong type", "b64"),
    ("number for an image", {"instances": [7]}, "wrong type"),
    ("booleans", {"instances": [np.zeros((16, 16, 3), bool).tolist()]}, "not booleans"),
    ("null pixels", {"instances": [[[None] * 3] * 16] * 1}, "wrong type"),
    ("out of range", {"instances": [np.full((16, 16, 3), 300).tolist()]}, "within 0..255", "300"),
    ("negative", {"instances": [np.full((16, 16, 3), -1).tolist()]}, "within 0..255"),
    ("NaN pixels", {"instances": [np.full((16, 16, 3), np.nan).tolist()]}, "finite"),
    ("scaled floats", {"instances": [np.full((16, 16, 3), 0.5).tolist()]}, "scaled to [0, 1]"),
    ("second instance bad", {"instances": [GOOD, np.full((16, 16, 3), 999).tolist()]}, "instance 1"),
    ("undecodable image", {"instances": [{"b64": b64(b"this is not an image")}]}, "not a decodable image"),
    ("truncated png", {"instances": [{"b64": b64(png_header(16, 16))}]}, "decodable image"),
    ("huge image", {"instances": [{"b64": b64(png_header(9000, 9000))}]}, "too large"),
    ("invalid base64", {"instances": [{"b64": "***not base64***"}]}, "not valid base64"),
    ("b64 not a string", {"instances": [{"b64": 12}]}, "must be a base64 string"),
    ("two named inputs", {"instances": [{"image": GOOD, "mask": GOOD}]}, "exactly one key"),
    ("named columns", {"inputs": {"image": [GOOD], "mask": [GOOD]}}, "exactly one key"),
    ("too many instances", {"instances": [[[[0, 0, 0]]]] * 17}, "too many instances: 17", "limit 16"),
]


@pytest.mark.parametrize("payload, fragments", [(p[1], p[2:]) for p in BAD_PAYLOADS], ids=[p[0] for p in BAD_PAYLOADS])
def test_bad_payloads(client: httpx.Client, payload: dict, fragments: tuple[str, ...]) -> None:
    body = json.dumps(payload)  # NaN stays NaN, as TF Serving's JSON allows
    assert_error(client.post(PREDICT, content=body), 400, *fragments)


def test_text_model_type_errors(client: httpx.Client) -> None:
    url = "/v1/models/sentiment:predict"
    assert_error(client.post(url, json={"instances": [3.5]}), 400, "text models take strings")
    assert_error(client.post(url, json={"instances": [{"b64": b64(b"\xff\xfe\x00")}]}), 400, "not UTF-8")


def test_classify_errors(client: httpx.Client) -> None:
    url = "/v1/models/shapes:classify"
    assert_error(client.post(url, json={"examples": [{"image": GOOD, "caption": "x"}]}), 400, "one feature")
    assert_error(client.post(url, json={"examples": "nope"}), 400, "non-empty list")
    assert_error(client.post(url, json={"examples": [{"image": GOOD}], "context": 3}), 400, "context")
    assert_error(client.post(url + "?top_k=0", json={"instances": [GOOD]}), 400, "top_k")
    assert_error(client.post(url + "?top_k=x", json={"instances": [GOOD]}), 400, "top_k")
    assert_error(client.post("/v1/models/shapes:regress", json={"examples": [{"x": 1}]}), 400, "classifiers")


def test_body_limit_413_by_content_length_and_while_streaming(client: httpx.Client) -> None:
    big = b'{"instances": [' + b"0," * 40_000 + b"0]}"
    assert_error(client.post(PREDICT, content=big), 413, "larger than the limit")

    def chunks():
        for _ in range(10):
            yield b" " * 10_000

    assert_error(client.post(PREDICT, content=chunks()), 413, "larger than the limit")


def test_not_found_and_method_errors(client: httpx.Client) -> None:
    assert_error(client.post("/v1/models/shapez:predict", json={"instances": [GOOD]}), 404,
                 "Servable not found", "Did you mean 'shapes'")
    assert_error(client.get("/v1/models/nothing"), 404, "Servable not found")
    assert_error(client.get("/v1/models/shapes/versions/2"), 404, "Could not find version 2 of model shapes")
    assert_error(client.post("/v1/models/shapes/versions/7:predict", json={"instances": [GOOD]}), 404,
                 "Specific(shapes, 7); model 'shapes' serves version(s) 1")
    assert_error(client.post("/v1/models/shapes/labels/stable:predict", json={"instances": [GOOD]}), 400,
                 "Unrecognized servable version label: stable")
    assert_error(client.get(PREDICT), 405, "takes POST")
    assert_error(client.get("/v1/models/shapes/versions/1:classify"), 405, "takes POST")
    assert_error(client.delete("/v1/models/shapes"), 405, "Method Not Allowed")
    assert_error(client.get("/no/such/route"), 404, "no such route")
    assert_error(client.post("/v1/models/shapes/predict-file"), 400, "files")


def test_server_is_still_up_and_counted_the_errors(client: httpx.Client) -> None:
    for _ in range(3):
        client.post(PREDICT, content=b"{oops")
    assert client.get("/readyz").status_code == 200
    ok = client.post(PREDICT, json={"instances": [GOOD]})
    assert ok.status_code == 200
    metrics = client.get("/metrics").text
    sample = 'tfpilot_http_requests_total{method="POST",route="/v1/models/{name}:predict",status="400"}'
    line = next(x for x in metrics.splitlines() if x.startswith(sample))
    assert float(line.split()[-1]) >= 3


def test_oversized_body_gets_413_even_when_the_client_writes_it_all_first(server) -> None:
    """urllib sends the whole 20 MB body before reading: it must still read the 413 and its
    JSON error (the server drains the body instead of closing on unread bytes)."""
    import urllib.error
    import urllib.request

    body = b'{"instances": [' + b"0," * (10 * 2**20) + b"0]}"  # ~20 MB
    request = urllib.request.Request(f"{server.url}{PREDICT}", data=body,
                                     headers={"Content-Type": "application/json"}, method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=60)
    assert caught.value.code == 413
    error = json.loads(caught.value.read())
    assert set(error) == {"error"} and "larger than the limit" in error["error"]
    assert httpx.get(f"{server.url}/readyz").status_code == 200  # and the server is fine
