"""``inspect.html``: the page of ``tfpilot inspect``, self-contained like ``report.html``.

Histograms are tables with inline bars; duplicates and label issues are cards with the
examples' thumbnails (PNG, base64 inline) or texts. Only the first ``shown`` findings of each
kind are drawn; ``inspect.json`` lists them all.

Example:
    >>> from tfpilot.evaluation.inspect_page import bars
    >>> "width:100%" in bars({"32x32": 10, "16x16": 5})
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot.evaluation.report_html import array_png, esc, fmt, img, key_values, note, page, section, table

EXTRA_STYLE = """<style>
.bar { display:inline-block; height:10px; background:#2563eb; border-radius:2px; }
.pair .pics img { width:96px; height:96px; }
.pair .txt { font-size:12px; max-height:9em; overflow:auto; border-top:1px solid #e5e7eb; margin-top:4px; }
.warn { color:#b45309; font-weight:600; }
</style>"""


def bars(hist: Mapping[str, int], label: str = "value") -> str:
    """A histogram as a table with one inline bar per row."""
    top = max(hist.values(), default=0) or 1
    rows = [[k, v, f'<span class="bar" style="width:{100 * v / top:.0f}%;min-width:1px"></span>']
            for k, v in hist.items()]
    return table([label, "count", ""], rows, raw=True)


class Thumbs:
    """Thumbnails or text snippets of the flat listing's examples (:class:`~tfpilot.data.inspect.examples.Examples`)."""

    def __init__(self, flat: Any, size: int = 96) -> None:
        self.flat, self.size = flat, size

    def picture(self, i: int) -> str:
        """An ``<img>`` of example ``i`` ('' for texts and rows)."""
        flat = self.flat
        try:
            if flat.kind == "image":
                from PIL import Image

                with Image.open(flat.paths[i]) as im:
                    im = im.convert("RGB")
                    im.thumbnail((self.size, self.size))
                    return img(array_png(np.asarray(im)), str(flat.ids[i]))
            if flat.kind == "array":
                return img(array_png(flat.pixels[i]), str(flat.ids[i]))
        except OSError as exc:
            return f"<i>unreadable: {esc(exc)}</i>"
        return ""

    def text(self, i: int, chars: int = 400) -> str:
        """The start of example ``i``'s text (a row: its cells) ('' for images)."""
        flat = self.flat
        if flat.kind == "text":
            t = str(flat.texts[i])
        elif flat.kind == "table":
            t = "; ".join(f"{k}={str(v[i])[:60]}" for k, v in flat.columns.items())
        else:
            return ""
        return f'<div class="txt">{esc(t[:chars])}{"…" if len(t) > chars else ""}</div>'

    def card(self, positions: Sequence[int], caption: str) -> str:
        """A card of the examples at ``positions`` side by side, with ``caption`` (HTML) and their ids."""
        pics = "".join(self.picture(i) for i in positions)
        texts = "".join(self.text(i) for i in positions)
        ids = "<br>".join(f"{esc(self.flat.split[i])}: {esc(self.flat.ids[i])}" for i in positions)
        return (f'<div class="card pair"><div class="pics">{pics}</div>{texts}<div class="cap">{caption}</div>'
                f'<div class="id">{ids}</div></div>')


def _label(ref: Mapping[str, Any]) -> str:
    return esc(ref.get("label"))


def duplicates_section(found: Mapping[str, Any], thumbs: Thumbs, shown: int) -> str:
    """Counts, the leak table, then the first ``shown`` pairs of each kind (cross-split first) as cards."""
    d = found["duplicates"]
    parts = [key_values([("exact duplicate pairs", d["exact"]["count"]),
                         ("  of them across splits", d["exact"]["cross_split"]),
                         ("near-duplicate pairs", d["near"]["count"]),
                         ("  of them across splits", d["near"]["cross_split"]),
                         ("settings", esc(d["settings"]))])]
    leak_rows = [[s, v["examples"], v["with_duplicate_in_earlier_split"], f"{100 * v['fraction']:.2f}%", v["exact"],
                  v["near_only"]] for s, v in d["leaks"].items()]
    if leak_rows:
        parts.append("<h3>Leaks: evaluation examples with a copy in an earlier split</h3>")
        parts.append(table(["split", "examples", "with a duplicate", "fraction", "exact", "near only"], leak_rows))
    for kind in ("exact", "near"):
        pairs = sorted(d[kind]["pairs"], key=lambda p: (not p["cross_split"], p.get("distance", 0),
                                                       -p.get("similarity", 1)))
        if not pairs:
            continue
        parts.append(f"<h3>{kind.capitalize()} duplicates (cross-split first; {min(shown, len(pairs))} of "
                     f"{d[kind]['count']} shown)</h3>")
        cards = []
        for p in pairs[:shown]:
            how = f"distance {p['distance']}" if "distance" in p else (
                f"Jaccard {p['similarity']:.2f}" if "similarity" in p else "same content")
            cross = '<span class="warn">cross-split</span> ' if p["cross_split"] else ""
            labels = (f' <span class="warn">labels differ: {_label(p["a"])} / {_label(p["b"])}</span>'
                      if p["labels_differ"] else f" label {_label(p['a'])}")
            cards.append(thumbs.card([p["i"], p["j"]], f"{cross}{esc(p['what'])}, {esc(how)};{labels}"))
        parts.append(f'<div class="gallery">{"".join(cards)}</div>')
    return section("duplicates", "Duplicates", "".join(parts))


def label_section(found: Mapping[str, Any], thumbs: Thumbs, shown: int) -> str:
    """The label issues, most suspicious first, with given and suggested label ('' when not searched)."""
    li = found.get("label_issues")
    if not li:
        return ""
    if "skipped" in li:
        return section("labels", "Label issues", note(li["skipped"]))
    warning = f'<p class="warn">{esc(li["warning"])}</p>' if li.get("warning") else ""
    head = warning + key_values([("issues found", li["count"]), ("examples checked", li["examples"]),
                       ("method", esc(li["method"])), ("held-out accuracy per fold", esc(li["fold_accuracy"])),
                       ("out-of-sample accuracy", li["out_of_sample_accuracy"]),
                       ("seconds", li["seconds"])])
    cards = [thumbs.card([e["i"]], f"given <b class=\"bad\">{esc(e['given'])}</b>, suggested "
                                   f"<b class=\"good\">{esc(e['suggested'])}</b> "
                                   f"(p(given) {e['p_given']:.3f}, p(suggested) {e['p_suggested']:.3f})")
             for e in li["issues"][:shown]]
    return section("labels", "Label issues", head + f'<div class="gallery">{"".join(cards)}</div>')


def counts_section(found: Mapping[str, Any]) -> str:
    """Examples per class and split, and each split's imbalance."""
    c = found["counts"]
    parts = [key_values([("kind", found["kind"]), ("examples", found["examples"]),
                         ("splits", esc(found["split_sizes"]))])]
    if c["per_split"]:
        splits = list(c["per_split"])
        rows = [[cls, *[c["per_split"][s][cls] for s in splits]] for cls in found["classes"]]
        parts.append(table(["class", *splits], rows))
        parts.append(table(["split", "imbalance (largest / smallest)", "largest", "smallest", "classes missing"],
                           [[s, v["ratio"], v["largest"], v["smallest"], ", ".join(v["missing_classes"])]
                            for s, v in c["imbalance"].items()]))
    return section("counts", "Counts", "".join(parts))


def files_section(found: Mapping[str, Any]) -> str:
    """Unreadable files, image histograms (sizes, modes, aspect ratios, formats) and text lengths."""
    parts = []
    unread = found["unreadable"]
    parts.append(f"<h3>Unreadable files ({len(unread)})</h3>")
    if unread:
        parts.append(table(["file", "reason"], [[u["id"], u["reason"]] for u in unread[:200]]))
    images = found.get("images")
    if images:
        for name, info in (images.items() if "sizes" not in images else [("", images)]):
            parts.append(f"<h3>Images {esc(name)}</h3><div class=\"cols\">"
                         f"<div>{bars(info['sizes'], 'size (WxH)')}</div><div>{bars(info['modes'], 'mode')}</div>"
                         f"<div>{bars(info['aspect_ratios'], 'aspect ratio (W/H)')}</div>"
                         f"<div>{bars(info['formats'], 'format')}</div></div>")
    texts = found.get("texts")
    if texts:
        for name, info in (texts.items() if "words" not in texts else [("", texts)]):
            parts.append(f"<h3>Text lengths {esc(name)}</h3>{bars(info['words'], 'words')}"
                         f"{key_values([('characters', esc(info['chars'])), ('empty texts', len(info['empty']))])}")
            if info["empty"]:
                parts.append(table(["split", "id"], [[e["split"], e["id"]] for e in info["empty"][:100]]))
    return section("files", "Files and texts", "".join(parts))


def columns_section(found: Mapping[str, Any]) -> str:
    """A table's columns and their single-column leakage scores ('' for other data)."""
    cols = found.get("columns")
    if not cols:
        return ""
    rows = [[c["name"], c["role"], c["type"], c["dtype"], c["missing"], c["distinct"],
             "yes" if c["constant"] else "", "yes" if c["id_like"] else ""] for c in cols["columns"]]
    leak = [[e["column"], e["metric"], e["score"], e["baseline"], "LEAK" if e["leak"] else ""]
            for e in cols["single_column_leakage"]]
    body = (table(["column", "role", "type", "dtype", "missing", "distinct", "constant", "id-like"], rows)
            + f"<h3>Target leakage by one column (target {esc(cols['target'])}, fitted on train, scored on val+test)</h3>"
            + table(["column", "metric", "score", "majority baseline", ""], leak))
    return section("columns", "Table columns", body)


def write_page(found: Mapping[str, Any], flat: Any, path: str | Path, shown: int = 60) -> Path:
    """Write ``inspect.html`` for ``found`` (:func:`tfpilot.api.inspect`'s findings).

    Args:
        found: the findings (as in ``inspect.json``).
        flat: the flat listing the findings' ``i``/``j`` index.
        path: the file to write.
        shown: findings drawn per kind.
    """
    thumbs = Thumbs(flat)
    sections = [counts_section(found), files_section(found), columns_section(found),
                duplicates_section(found, thumbs, shown), label_section(found, thumbs, shown)]
    nav = [(a, t) for a, t in [("counts", "Counts"), ("files", "Files"), ("columns", "Columns"),
                               ("duplicates", "Duplicates"), ("labels", "Label issues")]
           if f'id="{a}"' in "".join(sections)]
    html = page(f"tfpilot inspect: {found.get('dataset', '')}", f"{fmt(found['examples'])} examples, "
                f"{len(found.get('classes', []))} classes", nav, [s for s in sections if s])
    html = html.replace("</head>", EXTRA_STYLE + "</head>", 1)
    path = Path(path)
    path.write_text(html, encoding="utf-8")
    return path
