"""A melbourne-housing table report with its leaderboard, looked at in a real browser (issue 26).

A leaderboard run (``model.name: auto``) on 800 of melbourne-housing.csv's sales (-> Price), with
2 folds of train + val (the leaderboard's ``cv_`` columns) and a refit (its ``ensemble_refit``
row), writes its report; headless Debian chromium renders it through Playwright in a desktop and a
laptop window. The summary's figures table, the leaderboard and the worst rows must fit the page
width (no element wider or further right than the window, nothing pushing the page sideways:
wide tables scroll inside their own section); figures have thousands separators and integers
(postcodes) print as integers. Full-page screenshots go to ``$OUT`` when set (else the test's tmp
folder).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: desktop and laptop windows (CSS px)
VIEWPORTS = [(1280, 900), (1024, 768)]
#: Two of the fast preset's candidates (its five give the leaderboard more rows, not more columns).
CANDIDATES = {"ydf_gbt": {}, "linear": {}}


def _chromium() -> str:
    path = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
    if path is None:
        pytest.fail("Debian's chromium is not installed: run `make browser` (apt-get install chromium)")
    return path


@pytest.fixture(scope="module")
def melbourne_report(tmp_path_factory: pytest.TempPathFactory, shared_datasets: Path) -> Path:
    """The report of a leaderboard on every 17th of melbourne-housing.csv's 13,580 sales (800 rows,
    20 columns -> Price); 2 folds (not auto's 5) still give the leaderboard its cv_ columns."""
    import tfpilot

    root = tmp_path_factory.mktemp("melbourne-board")
    header, *lines = (shared_datasets / "melbourne-housing.csv").read_text(encoding="utf-8").splitlines()
    (root / "melbourne.csv").write_text("\n".join([header, *lines[::17]]) + "\n", encoding="utf-8")
    cfg = {"data": {"dataset": str(root / "melbourne.csv")}, "features": {"outputs": ["Price"]},
           "train": {"epochs": 2, "cv_folds": 2, "candidates": CANDIDATES,
                     "callbacks": {"tensorboard": False, "progress": "none"}},
           "output": {"run_dir": str(root / "run")}}
    run = tfpilot.train(cfg, report=True)
    assert (run.path / "leaderboard.csv").is_file()
    return run.file("report.html")


def _measure(page, selector: str) -> dict:
    """Where an element ends, how wide it and its section are, and its text."""
    loc = page.locator(selector).first
    assert loc.count() == 1, f"{selector} is not in the report"
    return loc.evaluate(
        "e => { const r = e.getBoundingClientRect(), s = e.closest('section').getBoundingClientRect();"
        " return {left: r.left, right: r.right, width: r.width, section_right: s.right,"
        " scroll: e.scrollWidth, client: e.clientWidth, text: e.innerText}; }")


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=lambda v: f"{v[0]}px")
def test_summary_leaderboard_and_worst_rows_fit_the_page_width(melbourne_report: Path, viewport: tuple[int, int],
                                                                tmp_path: Path):
    from playwright.sync_api import sync_playwright

    width, height = viewport
    shots = Path(os.environ["OUT"]) if os.environ.get("OUT") else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    shot = shots / f"melbourne-report-{width}px.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(melbourne_report.resolve().as_uri(), wait_until="load")
            page_width = page.evaluate("({scroll: document.documentElement.scrollWidth,"
                                       " client: document.documentElement.clientWidth, inner: window.innerWidth})")
            boxes = {"summary": _measure(page, "section#summary table.figures"),
                     "leaderboard": _measure(page, "section#leaderboard table"),
                     "worst rows": _measure(page, "section#head-Price .scroll:has(table.rows)")}
            nav = page.locator("nav a").all_inner_texts()
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()

    assert page_width["scroll"] <= page_width["client"], (
        f"the page is {page_width['scroll']} px wide in a {page_width['client']} px window")
    for name, box in boxes.items():
        assert box["width"] <= page_width["inner"] and box["left"] >= 0, f"{name}: {box['width']} px wide"
        assert box["right"] <= min(box["section_right"], page_width["client"]), (
            f"{name} ends at {box['right']} px, its section at {box['section_right']} px, the window at "
            f"{page_width['client']} px")
    assert boxes["worst rows"]["scroll"] > boxes["worst rows"]["client"]  # 20 columns scroll inside their section
    board = boxes["leaderboard"]["text"]
    assert "Leaderboard" in nav and "ensemble_refit" in board and "cv_rmse" in board
    assert re.search(r"\b\d{3},\d{3}\b", board) and not re.search(r"\d{6}\.\d", board)  # 255,433, not 255433.1187
    summary = boxes["summary"]["text"]
    assert re.search(r"\d{3},\d{3}", summary) and not re.search(r"\d{5}\.\d", summary)
    postcodes = re.findall(r"\b3\d{3}(?:\.\d+)?\b", boxes["worst rows"]["text"])
    assert postcodes and all("." not in p for p in postcodes)  # integers print as integers
    assert shot.stat().st_size > 30_000
