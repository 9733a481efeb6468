"""The report in a real browser: headless Debian chromium driven by Playwright.

Every section is present and visible, every image decodes (natural width > 0), and the
page requests nothing but itself and inline data; the calibration section shows both reliability
diagrams. A table run's report (a slice of melbourne-housing.csv) fits the page width: its
figures table and its widest table, the worst rows, stay inside their sections. Full-page
screenshots are saved.
"""

from __future__ import annotations

import re
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


@pytest.fixture(scope="module")
def melbourne_report(tmp_path_factory: pytest.TempPathFactory, shared_datasets: Path) -> Path:
    """The report of a quick run on every 17th of melbourne-housing.csv's 13,580 sales (800 rows,
    20 columns -> Price); 2 folds (not auto's 5) still give the leaderboard its cv_ columns."""
    import tfpilot

    root = tmp_path_factory.mktemp("melbourne")
    header, *lines = (shared_datasets / "melbourne-housing.csv").read_text(encoding="utf-8").splitlines()
    (root / "melbourne.csv").write_text("\n".join([header, *lines[::17]]) + "\n", encoding="utf-8")
    cfg = {"data": {"dataset": str(root / "melbourne.csv")}, "features": {"outputs": ["Price"]},
           "train": {"epochs": 2, "cv_folds": 2, "callbacks": {"tensorboard": False, "progress": "none"}},
           "output": {"run_dir": str(root / "run")}}
    return tfpilot.train(cfg, report=True).file("report.html")


def test_a_table_report_fits_the_page_width(melbourne_report: Path, tmp_path: Path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(melbourne_report.resolve().as_uri(), wait_until="load")
            page_width = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")

            def box(selector: str) -> dict:
                return page.locator(selector).first.evaluate(
                    "e => ({right: e.getBoundingClientRect().right, scroll: e.scrollWidth, client: e.clientWidth,"
                    " section: e.closest('section').getBoundingClientRect().right, text: e.innerText})")

            summary = box("section#summary table.figures")
            board = box("section#leaderboard table.figures")
            rows = box("section#head-Price .scroll:has(table.rows)")
            page.screenshot(path=str(tmp_path / "melbourne.png"), full_page=True)
        finally:
            browser.close()
    assert page_width[0] <= page_width[1], f"the page is {page_width[0]} px wide in a {page_width[1]} px window"
    assert summary["right"] <= summary["section"] and rows["right"] <= rows["section"]
    assert board["right"] <= board["section"] and "cv_rmse" in board["text"] and "ensemble_refit" in board["text"]
    assert rows["scroll"] > rows["client"]  # 20 columns: the worst rows scroll inside their section
    assert re.search(r"\d{3},\d{3}", summary["text"]) and not re.search(r"\d{5}\.\d", summary["text"])
    postcodes = re.findall(r"\b3\d{3}(?:\.\d+)?\b", rows["text"])
    assert postcodes and all("." not in p for p in postcodes)  # integers print as integers
