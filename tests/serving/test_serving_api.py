"""TF Serving's REST API over HTTP, against a real ``tfpilot serve`` process."""

from __future__ import annotations

import base64
import json

import httpx
import numpy as np
import pytest

CLASSES = ("circle", "square", "triangle")  # as in conftest.py
TEXT_CLASSES = ("neg", "pos")  # the text run: tfpilot's ngram_mlp on a tiny corpus
#: The tiny run trains with mixed_bfloat16 on CPUs that support it: the server's compiled
#: graph and the eager in-process call then differ in the 4th decimal.
ATOL = 2e-3


def assert_same_probs(got, want) -> None:
    got, want = np.asarray(got), np.asarray(want)
    np.testing.assert_allclose(got, want, atol=ATOL)
    top2 = np.sort(want, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 2 * ATOL  # rows whose best class is not a near tie
    np.testing.assert_array_equal(got.argmax(axis=1)[clear], want.argmax(axis=1)[clear])


def test_status_follows_tf_serving(client: httpx.Client) -> None:
    r = client.get("/v1/models/shapes")
    assert r.status_code == 200
    assert r.json() == {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    assert client.get("/v1/models/shapes/versions/1").json() == r.json()


def test_metadata_has_signature_input_spec_and_classes(client: httpx.Client) -> None:
    meta = client.get("/v1/models/shapes/metadata").json()
    assert meta["model_spec"] == {"name": "shapes", "signature_name": "", "version": "1"}
    sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    (name, tensor), = sig["inputs"].items()
    assert tensor["dtype"] == "DT_UINT8"
    assert [d["size"] for d in tensor["tensor_shape"]["dim"]] == ["-1", "16", "16", "3"]
    assert [d["size"] for d in sig["outputs"]["output_0"]["tensor_shape"]["dim"]] == ["-1", "3"]
    assert meta["metadata"]["input_spec"] == {"kind": "image", "shape": [16, 16, 3], "dtype": "uint8"}
    assert meta["metadata"]["class_names"] == list(CLASSES)
    assert client.get("/v1/models/shapes/versions/1/metadata").json() == meta
    text = client.get("/v1/models/sentiment/metadata").json()["metadata"]
    assert text["input_spec"]["kind"] == "text"
    assert text["signature_def"]["signature_def"]["serving_default"]["inputs"]["text"]["dtype"] == "DT_STRING"


def test_predict_rows_match_the_in_process_predictor(client: httpx.Client, predictor, shape_images) -> None:
    r = client.post("/v1/models/shapes:predict", json={"instances": shape_images.tolist()})
    assert r.status_code == 200, r.text
    got = np.array(r.json()["predictions"])
    assert_same_probs(got, predictor.predict_proba(shape_images))
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)


def test_predict_columns_answer_outputs(client: httpx.Client, predictor, shape_images) -> None:
    rows = client.post("/v1/models/shapes:predict", json={"instances": shape_images.tolist()}).json()
    cols = client.post("/v1/models/shapes:predict", json={"inputs": shape_images.tolist()})
    named = client.post("/v1/models/shapes:predict", json={"inputs": {"image": shape_images.tolist()}})
    assert cols.status_code == named.status_code == 200
    np.testing.assert_allclose(cols.json()["outputs"], rows["predictions"], atol=1e-6)
    np.testing.assert_allclose(named.json()["outputs"], rows["predictions"], atol=1e-6)


def test_b64_images_are_decoded_like_training(client: httpx.Client, predictor, shape_images, png) -> None:
    instances = [{"b64": base64.b64encode(png(img)).decode()} for img in shape_images[:2]]
    r = client.post("/v1/models/shapes:predict", json={"instances": instances})
    assert r.status_code == 200, r.text
    assert_same_probs(r.json()["predictions"], predictor.predict_proba(shape_images[:2]))


def test_grayscale_lists_and_named_row_instances(client: httpx.Client, shape_images) -> None:
    # Named inputs in row form ({"<input>": tensor}) and float pixels are accepted.
    inst = [{"image": shape_images[0].astype(float).tolist()}]
    r = client.post("/v1/models/shapes:predict", json={"instances": inst})
    plain = client.post("/v1/models/shapes:predict", json={"instances": [shape_images[0].tolist()]})
    assert r.status_code == 200
    assert r.json() == plain.json()


def test_tf_serving_documented_body_sent_verbatim(client: httpx.Client, predictor, shape_images, png) -> None:
    """The body exactly as TF Serving's REST docs write it (signature_name, b64 objects, and
    curl's default form Content-Type), for predict and classify."""
    b64 = base64.b64encode(png(shape_images[0])).decode()
    predict_body = '{\n  "signature_name": "serving_default",\n  "instances": [ { "b64": "%s" } ]\n}' % b64
    r = client.post("/v1/models/shapes:predict", content=predict_body,
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.text
    assert_same_probs(r.json()["predictions"], predictor.predict_proba(shape_images[:1]))

    classify_body = ('{\n  "signature_name": "tensorflow/serving/classify",\n  "examples": [\n'
                     '    { "image": { "b64": "%s" } }\n  ]\n}' % b64)
    r = client.post("/v1/models/shapes:classify", content=classify_body)
    assert r.status_code == 200, r.text
    (pairs,) = r.json()["result"]
    assert [label for label, _ in pairs][0] == predictor.predict(shape_images[:1])[0]["label"]


def test_classify_answers_class_names_with_scores(client: httpx.Client, predictor, shape_images) -> None:
    r = client.post("/v1/models/shapes:classify", json={"instances": shape_images.tolist()})
    assert r.status_code == 200
    result = r.json()["result"]
    probs = predictor.predict_proba(shape_images)
    for pairs, p in zip(result, probs):
        assert sorted(label for label, _ in pairs) == sorted(CLASSES)
        scores = [s for _, s in pairs]
        assert scores == sorted(scores, reverse=True)
        assert pairs[0][0] == CLASSES[int(np.argmax(p))]
        assert pairs[0][1] == pytest.approx(float(p.max()), abs=ATOL)
    top1 = client.post("/v1/models/shapes/versions/1:classify?top_k=1", json={"inputs": shape_images.tolist()})
    assert [len(pairs) for pairs in top1.json()["result"]] == [1] * len(shape_images)


def test_text_model_takes_strings(client: httpx.Client) -> None:
    r = client.post("/v1/models/sentiment:predict",
                    json={"instances": ["A wonderful, superb film: the best I loved!",
                                  "The worst and most boring plot, awful and dull.",
                                  {"text": "brilliant, superb, the best"}]})
    assert r.status_code == 200, r.text
    probs = np.array(r.json()["predictions"])
    assert probs.shape == (3, 2)
    assert list(probs.argmax(axis=1)) == [1, 0, 1]
    c = client.post("/v1/models/sentiment:classify",
                    json={"examples": [{"text": "worst, awful and dull"}], "signature_name": "serving_default"}).json()
    assert c["result"][0][0][0] == TEXT_CLASSES[0]
    b64 = base64.b64encode("wonderful, superb, loved it".encode()).decode()
    r = client.post("/v1/models/sentiment:predict", json={"inputs": [{"b64": b64}]})
    assert np.argmax(r.json()["outputs"][0]) == 1


def test_version_routes_predict(client: httpx.Client, shape_images) -> None:
    a = client.post("/v1/models/shapes/versions/1:predict", json={"instances": shape_images[:1].tolist()})
    b = client.post("/v1/models/shapes:predict", json={"instances": shape_images[:1].tolist()})
    assert a.status_code == 200 and a.json() == b.json()


def test_concurrent_requests_are_answered_correctly(server, predictor, shape_images) -> None:
    """Each of many concurrent requests gets its own instances' answer back (batching never mixes them)."""
    import asyncio

    expected = predictor.predict_proba(shape_images)

    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as ac:
            return await asyncio.gather(*(
                ac.post("/v1/models/shapes:predict", json={"instances": shape_images[[i % 4] * (1 + i % 3)].tolist()})
                for i in range(24)))

    for i, r in enumerate(asyncio.run(main())):
        assert r.status_code == 200
        got = np.array(r.json()["predictions"])
        assert got.shape[0] == 1 + i % 3
        assert_same_probs(got, expected[[i % 4] * (1 + i % 3)])


def test_json_responses_have_json_content_type(client: httpx.Client, shape_images) -> None:
    r = client.post("/v1/models/shapes:predict", json={"instances": shape_images[:1].tolist()})
    assert r.headers["content-type"].startswith("application/json")
    json.loads(r.text)
