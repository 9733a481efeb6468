"""The friendlier routes over HTTP: model list, file uploads, web page assets, OpenAPI docs."""

from __future__ import annotations

import httpx


def test_model_list(client: httpx.Client) -> None:
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert set(models) == {"shapes", "sentiment"}
    assert models["shapes"] == {"name": "shapes", "version": "1", "versions": ["1"], "state": "AVAILABLE",
                                "error": "", "kind": "image", "input_shape": [16, 16, 3], "num_classes": 3,
                                "backend": "keras", "signatures": ["serving_default"]}
    assert models["sentiment"]["kind"] == "text"


def test_predict_file_images_top_k(client: httpx.Client, predictor, shape_images, png) -> None:
    files = [("files", (f"img{i}.png", png(img), "image/png")) for i, img in enumerate(shape_images[:3])]
    r = client.post("/v1/models/shapes/predict-file?top_k=2", files=files)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "shapes"
    expected = predictor.predict(shape_images[:3], top_k=2)
    assert [p["file"] for p in body["predictions"]] == ["img0.png", "img1.png", "img2.png"]
    for got, want in zip(body["predictions"], expected):
        assert len(got["top_k"]) == 2
        assert got["top_k"][0]["score"] >= got["top_k"][1]["score"]
        assert abs(got["score"] - want["score"]) < 2e-3
        assert got["label"] == got["top_k"][0]["label"]


def test_predict_file_jpeg_and_grayscale_are_converted(client: httpx.Client, shape_images) -> None:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(shape_images[0]).convert("L").resize((40, 40)).save(buf, format="JPEG")
    r = client.post("/v1/models/shapes/predict-file", files={"files": ("gray.jpg", buf.getvalue(), "image/jpeg")})
    assert r.status_code == 200, r.text
    assert len(r.json()["predictions"][0]["top_k"]) == 3  # top_k 5 is clipped to the 3 classes


def test_predict_file_text(client: httpx.Client) -> None:
    content = "A wonderful, superb film: the best I loved!\n\nThe worst, most boring plot: awful and dull.\n".encode()
    whole = client.post("/v1/models/sentiment/predict-file", files={"files": ("review.txt", content)})
    assert whole.status_code == 200
    assert [p["file"] for p in whole.json()["predictions"]] == ["review.txt"]
    per_line = client.post("/v1/models/sentiment/predict-file?lines=true", files={"files": ("r.txt", content)})
    preds = per_line.json()["predictions"]
    assert [(p["file"], p["label"]) for p in preds] == [("r.txt:1", "pos"), ("r.txt:2", "neg")]


def test_predict_file_errors(client: httpx.Client, shape_images, png) -> None:
    r = client.post("/v1/models/shapes/predict-file", files={"files": ("notes.txt", b"not an image")})
    assert r.status_code == 400 and "notes.txt: not a decodable image" in r.json()["error"]
    r = client.post("/v1/models/shapes/predict-file", data={"other": "x"})
    assert r.status_code == 400 and "files" in r.json()["error"]
    r = client.post("/v1/models/sentiment/predict-file", files={"files": ("bin.txt", b"\xff\xfe\xfa")})
    assert r.status_code == 400 and "not UTF-8" in r.json()["error"]
    r = client.post("/v1/models/sentiment/predict-file?lines=true", files={"files": ("empty.txt", b"  \n")})
    assert r.status_code == 400 and "empty" in r.json()["error"]
    many = [("files", (f"{i}.png", png(shape_images[0]), "image/png")) for i in range(17)]
    r = client.post("/v1/models/shapes/predict-file", files=many)
    assert r.status_code == 400 and "too many instances" in r.json()["error"]
    r = client.post("/v1/models/shapes/predict-file?top_k=0", files={"files": ("a.png", png(shape_images[0]))})
    assert r.status_code == 400 and "top_k" in r.json()["error"]
    r = client.post("/v1/models/nope/predict-file", files={"files": ("a.png", png(shape_images[0]))})
    assert r.status_code == 404


def test_web_page_and_local_assets(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/static/app.js" in page.text and "/static/app.css" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from a CDN
    for asset, kind in (("/static/app.js", "javascript"), ("/static/app.css", "text/css")):
        r = client.get(asset)
        assert r.status_code == 200 and kind in r.headers["content-type"]
        assert "https://" not in r.text
    assert client.get("/static/missing.js").status_code == 404


def test_openapi_docs(client: httpx.Client) -> None:
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in ("/v1/models/{name}", "/v1/models/{name}/metadata", "/v1/models/{name}:predict",
                 "/v1/models/{name}:classify", "/v1/models/{name}:regress", "/v1/models/{name}/predict-file",
                 "/v1/models", "/v1/models/{name}/labels/{label}:predict", "/v1/models/{name}/versions/{version}",
                 "/v2/health/ready", "/v2/models/{name}/infer", "/healthz", "/readyz", "/metrics",
                 "/monitoring/prometheus/metrics"):
        assert path in paths, path
    body = paths["/v1/models/{name}:predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"instances", "inputs", "signature_name"} <= set(body["properties"])
    classify = paths["/v1/models/{name}:classify"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "examples" in classify["properties"]
