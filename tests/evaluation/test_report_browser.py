"""The report in a real browser: headless Debian chromium driven by Playwright.

Every section is present and visible, every image decodes (natural width > 0), and the
page requests nothing but itself and inline data; the calibration section shows both reliability
diagrams. Full-page screenshots are saved. A table run's report with its leaderboard is looked at
in ``tests/tables/test_table_report_browser.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tfpilot.evaluation.report import SECTIONS

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium() -> str:
    path = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
    if path is None:
        pytest.fail("Debian's chromium is not installed: run `make browser` (apt-get install chromium)")
    return path


def test_report_renders_offline_in_chromium(report_html: Path, tmp_path: Path):
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    blocked: list[str] = []

    def route(r):
        url = r.request.url
        if url.startswith(("data:", "file:")):
            r.continue_()
        else:
            blocked.append(url)
            r.abort()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda req: requests.append(req.url))
            page.route("**/*", route)
            page.goto(report_html.resolve().as_uri(), wait_until="load")
            for anchor, title in SECTIONS:
                heading = page.locator(f"section#{anchor} > h2")
                assert heading.count() == 1, f"section {anchor!r} missing"
                assert heading.inner_text() == title and heading.is_visible()
            diagrams = page.locator("section#calibration .diagram img")
            shown = [(diagrams.nth(i).get_attribute("alt"), diagrams.nth(i).is_visible(),
                      diagrams.nth(i).evaluate("i => i.naturalWidth")) for i in range(diagrams.count())]
            images = page.evaluate(
                "Array.from(document.images).map(i => ({src: i.src.slice(0, 22), complete: i.complete,"
                " width: i.naturalWidth, height: i.naturalHeight}))")
            nav = page.locator("nav a").count()
            screenshot = tmp_path / "report.png"
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()

    assert [(alt.split(", ")[1].split(" (")[0], visible, width > 0) for alt, visible, width in shown] == [
        ("before calibration", True, True), ("after calibration", True, True)]
    assert len(images) >= 20
    broken = [i for i in images if not (i["complete"] and i["width"] > 0 and i["height"] > 0)]
    assert not broken, f"images that did not load: {broken}"
    assert all(i["src"] == "data:image/png;base64," for i in images)
    assert nav == len(SECTIONS)
    assert not blocked, f"the report tried to fetch {blocked}"
    assert requests and all(u.startswith(("data:", "file:")) for u in requests), requests
    assert screenshot.stat().st_size > 50_000
