"""The web page in a real browser (Debian's chromium driven by Playwright): upload an image,
read the predicted label; drop an image; type a text, read its label."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"  # `make browser` installs it
#: Drops a file (base64 bytes, name) on the page's drop zone, as a user's drag and drop does.
DROP = """([b64, name]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, {type: "image/png"}));
  const drop = new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true});
  document.getElementById("drop").dispatchEvent(drop);
}"""
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_upload_an_image_and_read_the_label(server, client: httpx.Client, shape_images, png, tmp_path: Path) -> None:
    image = tmp_path / "shape.png"
    image.write_bytes(png(shape_images[1]))
    expected = client.post("/v1/models/shapes/predict-file",
                           files={"files": ("shape.png", image.read_bytes())}).json()["predictions"][0]
    dropped_expected = client.post("/v1/models/shapes/predict-file", files={"files": (
        "dropped.png", png(shape_images[2]))}).json()["predictions"][0]["label"]

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 800})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(server.url + "/")
            page.wait_for_selector("#model option[value=shapes]", state="attached")
            page.select_option("#model", "shapes")
            # Nothing where the image goes until there is one: no broken-image placeholder.
            assert not page.is_visible("#preview") and page.get_attribute("#preview", "src") is None
            page.set_input_files("#file", str(image))
            page.wait_for_selector("#preview:not([hidden])")
            assert page.evaluate("document.getElementById('preview').naturalWidth") == 16
            page.wait_for_selector("#prediction:not([hidden])", timeout=30_000)
            label = page.text_content("#top-label")
            bars = page.locator("#bars li")
            assert bars.count() == 3
            first_bar = bars.nth(0).text_content()
            page.screenshot(path=str(tmp_path / "web-page.png"), full_page=True)

            with page.expect_response(lambda r: "predict-file" in r.url) as dropped:
                page.evaluate(DROP, [base64.b64encode(png(shape_images[2])).decode(), "dropped.png"])
            assert dropped.value.ok
            page.wait_for_selector("#prediction:not([hidden])", timeout=30_000)
            dropped_label = page.text_content("#top-label")

            page.select_option("#model", "sentiment")
            page.fill("#text", "A wonderful, superb film: the best I loved!")
            page.click("#text-go")
            page.wait_for_selector("#prediction:not([hidden])", timeout=30_000)
            text_label = page.text_content("#top-label")
        finally:
            browser.close()

    assert label == expected["label"]
    assert first_bar.startswith(expected["label"])
    assert dropped_label == dropped_expected
    assert text_label == "pos"
    assert not errors
    assert all(url.startswith(server.url) or url.startswith("blob:") for url in requests)  # nothing external
    assert (tmp_path / "web-page.png").stat().st_size > 1000
