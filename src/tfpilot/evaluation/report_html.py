"""Tiny HTML building blocks for the self-contained report (escaped text, tables, embedded images).

Everything the report shows goes through :func:`esc`, and every picture is embedded as a
``data:image/png;base64`` URI, so the page opens offline and fetches nothing.

Example:
    >>> from tfpilot.evaluation.report_html import table
    >>> table(["class", "f1"], [["<cat>", 0.5]])  # doctest: +NORMALIZE_WHITESPACE
    '<div class="scroll"><table><thead><tr><th>class</th><th>f1</th></tr></thead><tbody><tr><td>&lt;cat&gt;</td><td
    class="num">0.5000</td></tr></tbody></table></div>'
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def esc(value: Any) -> str:
    """HTML-escaped text of ``value``."""
    return html.escape(str(value), quote=True)


def fmt(value: Any, digits: int = 4) -> str:
    """Numbers formatted for a table cell (floats to ``digits`` places, ints with separators)."""
    if isinstance(value, bool) or value is None:
        return esc("" if value is None else value)
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.{digits}f}"
    return esc(value)


def number(value: Any) -> str:
    """A figure or a data value as a reader writes it: integers as integers (``3065``, with
    thousands separators from 10,000: ``1,035,000``), large values to the unit with separators
    (``184,745``), others to 4 significant digits (``12.35``, ``0.7233``); NaN as "missing".

    Example:
        >>> [number(v) for v in (3065.0, 1035000.0, 184744.9042, 0.72331, 12.3456, float("nan"), 7)]
        ['3065', '1,035,000', '184,745', '0.7233', '12.35', 'missing', '7']
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return esc("" if value is None else value)
    v = float(value)
    if np.isnan(v):
        return "missing"
    if np.isinf(v):
        return esc(v)
    if v.is_integer():
        return f"{int(v):,}" if abs(v) >= 10_000 else str(int(v))
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.4g}" if abs(v) >= 1 else f"{v:.4f}"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], css: str = "", raw: bool = False,
          formatter: Callable[[Any], str] = fmt) -> str:
    """An HTML table inside a box that scrolls sideways when the table is wider than its section;
    numbers are right-aligned and written by ``formatter``. ``raw=True`` trusts string cells as HTML."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            numeric = isinstance(cell, (int, float, np.integer, np.floating)) and not isinstance(cell, bool)
            text = cell if raw and isinstance(cell, str) else formatter(cell)
            cells.append(f'<td class="num">{text}</td>' if numeric else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cls = f' class="{esc(css)}"' if css else ""
    return (f'<div class="scroll"><table{cls}><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody>'
            "</table></div>")


def key_values(pairs: Sequence[tuple[str, Any]], formatter: Callable[[Any], str] = fmt) -> str:
    """A two-column table of labelled values (values already HTML when they are strings; numbers
    written by ``formatter``)."""
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{v if isinstance(v, str) else formatter(v)}</td></tr>"
                   for k, v in pairs)
    return f'<table class="kv"><tbody>{rows}</tbody></table>'


def png_uri(data: bytes) -> str:
    """A ``data:`` URI for PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def img(data: bytes, alt: str, css: str = "", width: int | None = None) -> str:
    """An ``<img>`` with the PNG embedded."""
    cls = f' class="{esc(css)}"' if css else ""
    w = f' width="{int(width)}"' if width else ""
    return f'<img src="{png_uri(data)}" alt="{esc(alt)}"{cls}{w}>'


def array_png(image: np.ndarray) -> bytes:
    """PNG bytes of a uint8 image (H, W), (H, W, 1) or (H, W, 3)."""
    from PIL import Image

    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    buf = io.BytesIO()
    Image.fromarray(arr.astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>'


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


STYLE = """
:root { --fg:#111827; --muted:#6b7280; --line:#e5e7eb; --bg:#f9fafb; --accent:#2563eb; }
* { box-sizing: border-box; }
body { margin:0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color:var(--fg); background:var(--bg); line-height:1.45; font-size:15px; }
header { background:#111827; color:white; padding:18px 32px; }
header h1 { margin:0; font-size:22px; }
header p { margin:4px 0 0; color:#d1d5db; font-size:13px; }
nav { position:sticky; top:0; z-index:2; background:white; border-bottom:1px solid var(--line); padding:8px 32px; }
nav a { color:var(--accent); text-decoration:none; margin-right:16px; font-size:13px; white-space:nowrap; }
main { max-width:1240px; margin:0 auto; padding:8px 32px 48px; }
section { background:white; border:1px solid var(--line); border-radius:10px; padding:18px 22px; margin:18px 0; }
h2 { margin:0 0 12px; font-size:19px; }
h3 { margin:18px 0 8px; font-size:15px; }
table { border-collapse:collapse; margin:8px 0; font-size:13px; }
th, td { padding:4px 10px; border-bottom:1px solid var(--line); text-align:left; vertical-align:top; }
thead th { background:#f3f4f6; }
td.num { text-align:right; font-variant-numeric: tabular-nums; }
table.kv th { color:var(--muted); font-weight:500; width:190px; }
tr.avg td { font-weight:600; background:#f9fafb; }
.tiles { display:flex; flex-wrap:wrap; gap:12px; margin:6px 0 14px; }
.tile { border:1px solid var(--line); border-radius:8px; padding:10px 14px; min-width:140px; }
.tile .v { font-size:22px; font-weight:600; }
.tile .k { color:var(--muted); font-size:12px; }
img.plot { max-width:100%; height:auto; display:block; margin:6px 0; }
.gallery { display:grid; grid-template-columns:repeat(auto-fill, minmax(250px, 1fr)); gap:12px; }
.gallery.text { grid-template-columns:repeat(auto-fill, minmax(420px, 1fr)); }
.card { border:1px solid var(--line); border-radius:8px; padding:8px; background:white; }
.card .pics { display:flex; gap:6px; }
.card .pics img { width:112px; height:112px; image-rendering:pixelated; border-radius:4px; background:#000; }
.card .cap { font-size:12px; margin-top:6px; }
.card .cap b.bad { color:#dc2626; } .card .cap b.good { color:#16a34a; }
.card .id { color:var(--muted); font-size:11px; word-break:break-all; }
.card .review { max-height:15em; overflow:auto; font-size:13px; border-top:1px solid var(--line); margin-top:6px;
                padding-top:6px; }
.w { border-radius:3px; padding:0 1px; }
.legend span { padding:1px 6px; border-radius:3px; font-size:12px; }
pre { background:#f3f4f6; padding:12px; border-radius:6px; overflow:auto; font-size:12px; max-height:520px; }
p.note { color:var(--muted); font-style:italic; }
.cols { display:flex; flex-wrap:wrap; gap:24px; align-items:flex-start; }
.cols > div { min-width:0; max-width:100%; }
.cols > div.diagram { flex:1 1 380px; max-width:560px; }
.scroll { max-width:100%; overflow-x:auto; }
table.kv td { overflow-wrap:anywhere; }
table.rows td, table.rows th { white-space:nowrap; } table.rows td.text { white-space:normal; min-width:14em; }
table.figures th:nth-child(n+3) { text-align:right; }
table.rows img { width:48px; height:48px; image-rendering:pixelated; border-radius:3px; }
section { min-width:0; }
details summary { cursor:pointer; color:var(--accent); font-size:13px; margin-top:6px; }
"""


def page(title: str, subtitle: str, nav: Sequence[tuple[str, str]], sections: Sequence[str]) -> str:
    """The whole HTML document: inline CSS, no scripts, no external resources."""
    links = "".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t in nav)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header><nav>{links}</nav>"
        f"<main>{''.join(sections)}</main></body></html>\n"
    )
