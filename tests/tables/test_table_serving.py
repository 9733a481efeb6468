"""``tfpilot serve`` on a table run, in a real uvicorn process: TF Serving's row format with named
inputs ({"b64"} images, strings), the columnar format, each head answered by name."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.tables.conftest import serving
from tfpilot.training.distribute import free_ports


@pytest.fixture(scope="module")
def server(table_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_ports(1)[0]
    log = tmp_path_factory.mktemp("table-serve") / "serve.log"
    with serving(str(table_run), "--name", "shop", port=port, log=log, timeout=120) as url:
        yield url


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def test_row_format_with_named_inputs_answers_every_head_by_name(server, table_run, table_csv):
    import tfpilot

    rows = pd.read_csv(table_csv).head(3)
    instances = [{"photo": {"b64": _b64(table_csv.parent / p)}, "title": t} for p, t in zip(rows.photo, rows.title)]
    r = httpx.post(f"{server}/v1/models/shop:predict", json={"instances": instances}, timeout=60)
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert [sorted(p) for p in preds] == [["kind", "kind_label", "price"]] * 3
    expected = tfpilot.load(table_run).predict_raw(rows, base_dir=table_csv.parent)
    np.testing.assert_allclose([p["kind"] for p in preds], expected["kind"], atol=1e-5)
    np.testing.assert_allclose([p["price"] for p in preds], expected["price"], rtol=1e-5)
    classes = ["ant", "bee", "cat"]
    assert [p["kind_label"] for p in preds] == [classes[i] for i in expected["kind"].argmax(1)]


def test_columnar_format_answers_outputs_by_name(server, table_csv):
    photo = {"b64": _b64(table_csv.parent / "images" / "0001.png")}
    body = {"inputs": {"photo": [photo, photo], "title": ["red old bee new", "blue cat"]}}
    r = httpx.post(f"{server}/v1/models/shop:predict", json=body, timeout=60)
    assert r.status_code == 200, r.text
    out = r.json()["outputs"]
    assert set(out) == {"kind", "kind_label", "price"}
    assert np.asarray(out["kind"]).shape == (2, 3) and len(out["price"]) == 2


def test_a_missing_input_is_a_400_that_names_the_inputs(server):
    r = httpx.post(f"{server}/v1/models/shop:predict", json={"instances": [{"title": "x"}]}, timeout=60)
    assert r.status_code == 400
    assert "photo" in r.json()["error"]


def test_metadata_describes_named_inputs_and_outputs(server):
    meta = httpx.get(f"{server}/v1/models/shop/metadata", timeout=30).json()["metadata"]
    sig = meta["signature_def"]["signature_def"]["serving_default"]
    assert set(sig["inputs"]) == {"photo", "title"} and sig["inputs"]["photo"]["dtype"] == "DT_STRING"
    assert set(sig["outputs"]) == {"kind", "kind_label", "price"}
    assert meta["input_spec"]["kind"] == "table"


def test_the_web_page_has_a_form_field_per_input(server, table_csv, tmp_path):
    from playwright.sync_api import sync_playwright

    image = table_csv.parent / "images" / "0002.png"
    title = "green old bee fresh"
    expected = httpx.post(f"{server}/v1/models/shop:predict", timeout=60, json={
        "instances": [{"photo": {"b64": _b64(image)}, "title": title}]}).json()["predictions"][0]
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args, headless=True)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server + "/")
            page.wait_for_selector("#model option[value=shop]", state="attached")
            page.select_option("#model", "shop")
            page.wait_for_selector("#table-input:not([hidden])", timeout=30_000)
            assert page.locator("#table-fields .table-field").count() == 2
            page.set_input_files("#col-photo", str(image))
            page.fill("#col-title", title)
            page.click("#table-go")
            page.wait_for_function("document.querySelectorAll('#table-result li').length == 2", timeout=30_000)
            lines = page.locator("#table-result li").all_text_contents()
            assert errors == []
        finally:
            browser.close()
    assert lines[0].startswith(f"kind: {expected['kind_label']} (")
    assert lines[1].startswith("price: ")
    assert float(lines[1].split(": ")[1]) == pytest.approx(expected["price"], rel=1e-3)


def test_encoded_files_and_pixels_answer_alike_and_a_path_is_never_read(table_run, table_csv):
    """The one servable over named inputs: ``serving_default`` (encoded files) and ``serving_pixels``
    (uint8 pixels) give the same heads; a string sent as an image is not opened as a server-side path."""
    import asyncio

    import tfpilot
    from tfpilot.serving.errors import BadRequest
    from tfpilot.serving.servable import BatchOptions, PredictorServable

    servable = PredictorServable("shop", 1, table_run, BatchOptions())
    servable.load()
    assert sorted(servable.signatures) == ["serving_default", "serving_pixels"]
    assert not servable.legacy_rest and not servable.is_tfpilot and servable.extras()["task"] == "table"
    rows = pd.read_csv(table_csv).head(3)
    titles = np.array(list(rows.title), dtype=object)
    files = np.array([(table_csv.parent / p).read_bytes() for p in rows.photo], dtype=object)
    pixels = tfpilot.load(table_run).prepare(rows, base_dir=table_csv.parent)["photo"]
    path = np.array([str(table_csv.parent / rows.photo[0])], dtype=object)

    async def answers():
        await servable.start()
        try:
            encoded = await servable.run("serving_default", {"photo": files, "title": titles})
            raw = await servable.run("serving_pixels", {"photo": pixels, "title": titles})
            with pytest.raises(BadRequest, match="instance 0, input 'photo': not a decodable image"):
                await servable.run("serving_default", {"photo": path, "title": titles[:1]})
            return encoded, raw
        finally:
            await servable.stop()

    encoded, raw = asyncio.run(answers())
    np.testing.assert_allclose(encoded["kind"], raw["kind"], atol=1e-6)
    np.testing.assert_allclose(encoded["price"], raw["price"], rtol=1e-5)
    assert list(encoded["kind_label"]) == list(raw["kind_label"])
