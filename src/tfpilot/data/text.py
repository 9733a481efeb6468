"""Text datasets: IMDB, CSV/TSV/JSONL tables and folders of text files.

A text split is ``Split(y=..., x=<object array of str>)`` with ``InputSpec.text()``: the
raw strings go to the model, whose ``TextEncoder`` layer tokenises them.

Layouts:
    * built-in ``imdb``: Stanford's ``aclImdb_v1.tar.gz`` or an extracted ``aclImdb/``.
    * a table: ``.csv``, ``.tsv``, ``.jsonl`` (or ``.json``, a list of objects); with no
      telling extension the format is sniffed from the content. Text and label columns are
      guessed (``text``/``review``/``sentence``..., ``label``/``sentiment``/``category``...)
      or set with ``data.text_column`` / ``data.label_column``.
    * a folder ``ROOT/<class>/*.txt`` or ``ROOT/{train,test[,val]}/<class>/*.txt`` (or an
      archive of one).

Bad rows never stop a run: empty texts and rows without a label are dropped, bytes that
are not UTF-8 are replaced with U+FFFD, and ``data_report.json`` counts each.

Example:
    >>> import tempfile, pathlib
    >>> from tfpilot.config import DataConfig
    >>> from tfpilot.data import load_dataset
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "reviews.csv"
    >>> _ = path.write_text("review,sentiment\\ngreat film,pos\\ndull plot,neg\\n")
    >>> ds = load_dataset(DataConfig(dataset=str(path)))
    >>> ds.class_names, list(ds.splits["train"].x)
    (['neg', 'pos'], ['great film', 'dull plot'])
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import tarfile
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot.config.schema import DataConfig
from tfpilot.data.folder import PATH_COLUMNS, SPLIT_DIRS, unwrap_root
from tfpilot.data.images import is_image_file
from tfpilot.data.paths import DatasetNotFoundError, extract_archive, find_data_file, is_archive, not_found_message
from tfpilot.data.registry import FORMATS, DataFormat, register_dataset
from tfpilot.data.report import DataReport
from tfpilot.data.source import RawDataset, Split
from tfpilot.errors import NotFoundError, UserError
from tfpilot.spec import InputSpec

log = logging.getLogger(__name__)

#: Column names guessed for the text and the label (first match wins, case-insensitive).
TEXT_COLUMNS = ("text", "review", "sentence", "content", "body", "document", "comment", "message", "tweet")
LABEL_COLUMNS = ("label", "sentiment", "category", "class", "target", "labels", "y")
#: Extensions that name a table format.
TABLE_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}
#: Files read as documents in a text folder (others are reported as skipped).
TEXT_FILE_EXTENSIONS = frozenset({".txt", ".text", ""})
#: Extensions that are never a text table, even with sniffing.
_NOT_TABLES = frozenset({".npz", ".npy", ".pkl", ".pickle", ".gz", ".zip", ".tar", ".tgz", ".keras", ".h5"})

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
_SNIFF_BYTES = 64 * 1024


@dataclass
class TextStats:
    """Counts of the problems met while reading texts (reported in ``data_report.json``)."""

    bad_bytes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def report_to(self, report: DataReport) -> None:
        for note in self.notes:
            report.note(note)
        if self.bad_bytes:
            more = len(self.bad_bytes) - 10
            shown = ", ".join(self.bad_bytes[:10]) + (f" (+{more} more)" if more > 0 else "")
            report.note(
                f"{len(self.bad_bytes)} text(s) held bytes that are not UTF-8; they were kept with "
                f"those bytes replaced by U+FFFD: {shown}"
            )


def decode_bytes(data: bytes) -> tuple[str, bool]:
    """UTF-8 text (a BOM is dropped) and whether undecodable bytes had to be replaced."""
    try:
        return data.decode("utf-8-sig"), False
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace").lstrip("\ufeff"), True


def _repair(cell: str) -> tuple[str, bool]:
    """Undo ``surrogateescape`` decoding: replace undecodable bytes with U+FFFD."""
    try:
        cell.encode("utf-8")
        return cell, False
    except UnicodeEncodeError:
        return cell.encode("utf-8", "surrogateescape").decode("utf-8", "replace"), True


# -- what the texts are like ------------------------------------------------------------------
#: Scripts written without spaces between words, by their Unicode blocks (Han: the CJK
#: ideographs; Japanese: the kana, beside Han).
UNSPACED_SCRIPTS: dict[str, str] = {
    "Chinese": "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f",
    "Japanese": "\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f",
    "Thai": "\u0e00-\u0e7f",
    "Lao": "\u0e80-\u0eff",
    "Khmer": "\u1780-\u17ff",
    "Myanmar": "\u1000-\u109f",
}
_SCRIPT_RE = {name: re.compile(f"[{chars}]") for name, chars in UNSPACED_SCRIPTS.items()}
#: Share of a corpus' letters in scripts written without spaces above which its texts are
#: tokenised by characters (mixed text -- Chinese with English brand names -- is still mostly Han).
UNSPACED_SHARE = 0.3


@dataclass(frozen=True)
class TextProfile:
    """What a corpus of texts is like: the measures the default text model is chosen by.

    Attributes:
        texts: texts in the corpus (all of them, not just the sample measured).
        median_chars: median length in characters.
        median_words: median count of space-separated words.
        unspaced_share: share of the letters that belong to a script written without spaces
            between words (Chinese, Japanese, Thai, Lao, Khmer, Myanmar).
        script: the most common of those scripts ("Chinese", "Japanese", ...; Han with kana is
            Japanese), or "spaced" below :data:`UNSPACED_SHARE`.
    """

    texts: int
    median_chars: float
    median_words: float
    unspaced_share: float
    script: str

    @property
    def tokenize(self) -> str:
        """"chars" for a script written without spaces, else "words"."""
        return "words" if self.script == "spaced" else "chars"

    def describe(self) -> str:
        """One line of the measures, for logs and the reasons of chosen defaults.

        Example:
            >>> TextProfile(7766, 97.0, 3.0, 0.97, "Chinese").describe()
            '7,766 texts, median 97 characters / 3 words, 97% of letters Chinese'
        """
        script = "in scripts written without spaces" if self.script == "spaced" else self.script
        return (f"{self.texts:,} texts, median {self.median_chars:.0f} characters / {self.median_words:.0f} words, "
                f"{self.unspaced_share:.0%} of letters {script}")


def profile_texts(texts: Sequence[str], sample: int = 2000, chars: int = 2000) -> TextProfile:
    """Measure a corpus (an evenly spaced sample of at most ``sample`` texts, the first
    ``chars`` characters of each for the script): length and script.

    Args:
        texts: the texts (str or bytes).
        sample: texts measured at most.
        chars: characters of each text looked at for the script.

    Example:
        >>> profile_texts(["酒店很好，房间干净", "服务太差了"]).script
        'Chinese'
        >>> profile_texts(["ホテルはきれいでした", "部屋が狭い"]).script
        'Japanese'
        >>> profile_texts(["a fine film", "dull"]).tokenize
        'words'
    """
    n = len(texts)
    if n == 0:
        raise UserError("no texts to measure: the training split is empty")
    picked = np.unique(np.linspace(0, n - 1, min(n, sample)).astype(np.int64))
    lengths, words, letters = [], [], 0
    per_script = dict.fromkeys(UNSPACED_SCRIPTS, 0)
    for i in picked:
        t = texts[int(i)]
        t = t.decode("utf-8", "replace") if isinstance(t, bytes) else str(t)
        lengths.append(len(t))
        words.append(len(t.split()))
        head = t[:chars]
        letters += sum(c.isalpha() for c in head)
        for name, pattern in _SCRIPT_RE.items():
            per_script[name] += len(pattern.findall(head))
    unspaced = sum(per_script.values())
    share = unspaced / letters if letters else 0.0
    script = "spaced"
    if share >= UNSPACED_SHARE:
        kana = per_script["Japanese"]
        script = "Japanese" if kana >= 0.1 * unspaced else max(per_script, key=per_script.__getitem__)
    return TextProfile(n, float(np.median(lengths)), float(np.median(words)), round(min(share, 1.0), 4), script)


# -- labels -------------------------------------------------------------------------------
def encode_labels(raw: Sequence[Any]) -> tuple[np.ndarray, list[str]]:
    """Labels (strings or integers) -> ``(ids, class_names)``.

    Integer labels (``1``, ``"1"``, ``1.0``) sort numerically and are named by their
    value; any other labels sort as strings.

    Example:
        >>> encode_labels(["10", "2", "2"])
        (array([1, 0, 0]), ['2', '10'])
    """
    def as_int(v: Any) -> int | None:
        if isinstance(v, bool):
            return None
        if isinstance(v, int):
            return v
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, str):
            s = v.strip()
            if s.lstrip("-").isdigit():
                return int(s)
        return None

    ints = [as_int(v) for v in raw]
    if raw and all(i is not None for i in ints):
        values = sorted(set(ints))  # type: ignore[type-var]
        names = [str(v) for v in values]
        index = {v: k for k, v in enumerate(values)}
        return np.array([index[i] for i in ints], dtype=np.int64), names
    keys = [str(v).strip() for v in raw]
    names = sorted(set(keys))
    index = {v: k for k, v in enumerate(names)}
    return np.array([index[k] for k in keys], dtype=np.int64), names


def text_dataset(
    name: str,
    splits_raw: dict[str, tuple[list[str], list[Any], list[str]]],
    report: DataReport,
    source: str,
    class_names: list[str] | None = None,
) -> RawDataset:
    """Assemble a text :class:`RawDataset` from ``split -> (texts, labels, ids)``.

    Args:
        name: the dataset's name.
        splits_raw: per split, the texts, their raw labels and stable ids.
        report: the data report (receives the source and any note).
        source: where the data came from.
        class_names: the classes in order (default: from :func:`encode_labels` over all splits).
    """
    all_labels = [lab for _, labels, _ in splits_raw.values() for lab in labels]
    if class_names is None:
        ids_all, class_names = encode_labels(all_labels)
    else:
        index = {c: i for i, c in enumerate(class_names)}
        ids_all = np.array([index[str(v)] for v in all_labels], dtype=np.int64)
    splits: dict[str, Split] = {}
    start = 0
    for split_name, (texts, labels, ids) in splits_raw.items():
        n = len(texts)
        if n == 0:
            continue
        x = np.empty(n, dtype=object)
        x[:] = texts
        splits[split_name] = Split(y=ids_all[start : start + n], x=x, ids=np.array(ids, dtype=object))
        start += n
    if "train" not in splits:
        raise UserError(f"{source}: no usable training text (see the skipped rows in data_report.json)")
    if len(class_names) < 2:
        raise UserError(
            f"{source}: found {len(class_names)} label value(s) ({', '.join(class_names) or 'none'}); "
            "a classifier needs at least 2. Is data.label_column the right column?"
        )
    report.source = source
    report.warn_skipped()
    return RawDataset(name, list(class_names), InputSpec.text(), splits, report)


# -- tables (CSV / TSV / JSONL / JSON) ------------------------------------------------------
def _read_head(path: Path, n: int = _SNIFF_BYTES) -> bytes:
    with path.open("rb") as f:
        return f.read(n)


def sniff_table_format(path: Path, head: bytes | None = None) -> str | None:
    """"csv", "tsv", "jsonl" or "json" from the extension, else from the content; None if neither."""
    fmt = TABLE_EXTENSIONS.get(path.suffix.lower())
    if fmt:
        return fmt
    head = _read_head(path) if head is None else head
    if not head.strip() or b"\x00" in head:
        return None
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if text.startswith("{"):
        return "jsonl"
    if text.startswith("["):
        return "json"
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",\t;|")
        return "tsv" if dialect.delimiter == "\t" else "csv"
    except csv.Error:
        first = text.splitlines()[0] if text else ""
        return "tsv" if "\t" in first else ("csv" if "," in first else None)


def _looks_like_image_csv(rows: list[list[str]]) -> bool:
    """A CSV whose path column (or first cell) names image files belongs to ``image_csv``."""
    if not rows:
        return False
    header = [c.strip().lower() for c in rows[0]]
    body = rows[1:3]
    if any(is_image_file(c.strip()) for r in rows[:3] for c in r[:1]):
        return True
    cols = [i for i, c in enumerate(header) if c in PATH_COLUMNS]
    if cols and not any(c in TEXT_COLUMNS for c in header):
        return True
    return any(i < len(r) and is_image_file(r[i].strip()) for r in body for i in cols)


def is_text_table(path: Path) -> bool:
    """``detect`` of the ``text_table`` format: a CSV/TSV/JSON(L) file that is not an image CSV."""
    if not path.is_file() or path.suffix.lower() in _NOT_TABLES or is_image_file(path) or is_archive(path):
        return False
    head = _read_head(path)
    fmt = sniff_table_format(path, head)
    if fmt is None:
        return False
    if fmt in ("csv", "tsv"):
        text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
        lines = text.splitlines()[:4]
        rows = list(csv.reader(lines, delimiter="\t" if fmt == "tsv" else _delimiter(text)))
        return not _looks_like_image_csv(rows)
    return True


def _delimiter(sample: str) -> str:
    """The delimiter of a CSV sample: the sniffed one if the first line has it, else the one
    of , ; | the first line has most of (default ,)."""
    first = sample.split("\n", 1)[0]
    try:
        sniffed = csv.Sniffer().sniff(sample[:8192], delimiters=",;|").delimiter
        if sniffed in first:
            return sniffed
    except csv.Error:
        pass
    best = max(",;|", key=first.count)
    return best if first.count(best) else ","


@dataclass
class Table:
    """Rows read from a table file: column names, and per row its cells and location."""

    columns: list[str]
    rows: list[dict[str, Any]]
    where: list[str]
    has_header: bool = True


def _norm(name: Any) -> str:
    return str(name).strip().lower()


_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?%?")
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)+")


def _is_number(cell: str) -> bool:
    return bool(_NUMBER.fullmatch(cell.strip().replace(",", "")))


def _header_evidence(cell: str, values: list[str], names: frozenset[str]) -> int:
    """How strongly one cell of the first row says "column name" (> 0) or "data" (< 0),
    judged against the other rows' non-empty ``values`` of its column."""
    c = cell.strip()
    if not c:
        return 0  # a blank header cell (e.g. pandas' index column) and a missing value look alike
    counts = Counter(v.strip() for v in values)
    n = len(values)
    if c in counts and (counts[c] >= 2 or len(counts) <= 2 or 2 * len(counts) <= n + 1):
        return -3  # one of the values that recur in this column (with the first row's): data
    score = 0
    if _norm(c) in names:
        score += 3
    if n:
        numeric = sum(_is_number(v) for v in values) / n
        if numeric >= 0.9:
            score += -1 if _is_number(c) else 2  # a word atop a numeric column names it
        elif numeric <= 0.1 and _is_number(c):
            score -= 1  # column names are rarely numbers
    if _IDENTIFIER.fullmatch(c) and not any(_IDENTIFIER.fullmatch(v.strip()) for v in values):
        score += 1  # snake_case (comment_text) atop cells that are not
    recurring = sum(k for k in counts.values() if k >= 2)
    if n >= 4 and recurring >= 0.75 * n and len(counts) <= n // 2:
        score += 2 if n >= 20 else 1  # a new value atop a column of a few recurring ones (labels)
    elif n >= 2:
        lengths = sorted(len(v.strip()) for v in values)
        if lengths[0] == lengths[-1]:  # fixed-width values (ids, codes, dates)
            score += -1 if len(c) == lengths[0] else 1
        elif len(c) < lengths[0] and 3 * len(c) <= lengths[len(lengths) // 2]:
            score += 1  # far shorter than every cell of a free-text column
    return score


def guess_header(records: Sequence[Sequence[str]], names: Iterable[str] = ()) -> bool:
    """Whether the first of ``records`` names the columns.

    Each cell of the first row is compared with the rest of its column: a cell that is one
    of the column's recurring values, or of the same kind (a number atop numbers, a text of
    the same length as the others), says "data"; a known column name (``TEXT_COLUMNS``,
    ``LABEL_COLUMNS`` or ``names``), a word atop numbers, a new value atop a column of a few
    recurring labels, or a cell far shorter than every text below it says "header". The
    first row is a header when the evidence, summed over its cells, says so.

    Example:
        >>> guess_header([["label", "text"], ["ham", "Go until jurong point"], ["spam", "Free entry"]])
        True
        >>> guess_header([["ham", "Go until jurong point"], ["ham", "Ok lar"], ["spam", "Free entry"]])
        False
    """
    if not records:
        return False
    known = frozenset(_norm(c) for c in (*TEXT_COLUMNS, *LABEL_COLUMNS, *names))
    first, body = records[0], records[1:2001]
    if not body:
        return any(_norm(c) in known for c in first)
    total = 0
    for j, cell in enumerate(first):
        values = [r[j] for r in body if j < len(r) and r[j].strip()]
        total += _header_evidence(cell, values, known)
    return total > 0


def _parse_records(text: str, delimiter: str, quoting: int) -> list[list[str]]:
    """The records of a delimited text (a csv.Error names the line it stopped at)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
    records = []
    try:
        for rec in reader:
            records.append(rec)
    except csv.Error as exc:
        raise csv.Error(f"line {reader.line_num}: {exc}") from None
    return records


def read_delimited(path: Path, fmt: str, cfg: DataConfig, stats: TextStats) -> Table:
    """Read a CSV/TSV table; undecodable bytes are replaced (and counted), never fatal."""
    raw = path.read_bytes()
    text = raw.decode("utf-8", errors="surrogateescape").lstrip("\ufeff")
    delimiter = "\t" if fmt == "tsv" else _delimiter(text)
    limit = csv.field_size_limit(2**31 - 1)  # long documents are fine (the default stops at 128 KiB)
    try:
        records = _parse_records(text, delimiter, csv.QUOTE_MINIMAL)
        if any("\n" in c or "\r" in c for r in records for c in r):
            # A cell spans lines: a quoted multi-line text, or a stray quote (`"Hi` in a TSV of
            # messages) that swallowed the rows after it. Without quoting, a file whose every
            # line has the same number of cells is the second kind: read it line by line.
            plain = _parse_records(text, delimiter, csv.QUOTE_NONE)
            widths = {len(r) for r in plain if any(c.strip() for c in r)}
            if len(widths) == 1 and min(widths) >= 2:
                stats.notes.append(f"{path.name}: a quote character opens a cell without closing it; read one "
                                   "row per line, with quotes kept as text")
                records = plain
    except csv.Error as exc:
        raise UserError(f"{path}: not valid {fmt.upper()} ({exc}); check the quoting, "
                        "or set data.text_format") from None
    finally:
        csv.field_size_limit(limit)
    while records and not any(c.strip() for c in records[-1]):
        records.pop()
    if not records:
        raise UserError(f"{path} is empty: expected a header (e.g. text,label) and one row per example")
    if cfg.header is not None:
        header = cfg.header
    else:
        header = guess_header(records, [c for c in (cfg.text_column, cfg.label_column) if isinstance(c, str)])
    width = max(len(r) for r in records)
    if header:
        columns = [c.strip() or str(i) for i, c in enumerate(records[0])]
        columns += [str(i) for i in range(len(columns), width)]
        body, first_line = records[1:], 2
    else:
        columns, body, first_line = [str(i) for i in range(width)], records, 1
    rows, where = [], []
    for lineno, rec in enumerate(body, start=first_line):  # row ids (split.json): file:N, N counting records
        if not any(c.strip() for c in rec):
            continue
        repaired = []
        bad = False
        for cell in rec:
            cell, was_bad = _repair(cell)
            bad |= was_bad
            repaired.append(cell)
        if bad:
            stats.bad_bytes.append(f"{path.name}:{lineno}")
        rows.append(dict(zip(columns, repaired)))
        where.append(f"{path}:{lineno}")
    return Table(columns, rows, where, has_header=header)


def read_json_records(path: Path, fmt: str, report: DataReport, stats: TextStats) -> Table:
    """Read JSON Lines (one object per line) or a JSON list of objects."""
    raw = path.read_bytes()
    if fmt == "json":
        text, bad = decode_bytes(raw)
        if bad:
            stats.bad_bytes.append(path.name)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}: not valid JSON ({exc}); expected a list of objects, or use JSON Lines") from None
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            data = data["data"]
        if not isinstance(data, list):
            raise UserError(f"{path}: expected a JSON list of objects like {{\"text\": ..., \"label\": ...}}")
        items = [(f"{path}[{i}]", obj) for i, obj in enumerate(data)]
    else:
        items = []
        for lineno, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            text, bad = decode_bytes(line)
            if bad:
                stats.bad_bytes.append(f"{path.name}:{lineno}")
            try:
                items.append((f"{path}:{lineno}", json.loads(text)))
            except json.JSONDecodeError as exc:
                report.skip(f"{path}:{lineno}", f"not valid JSON ({exc.msg})")
    columns: dict[str, None] = {}
    rows, where = [], []
    for loc, obj in items:
        if not isinstance(obj, dict):
            report.skip(loc, f"expected a JSON object, got {type(obj).__name__}")
            continue
        columns.update(dict.fromkeys(obj))
        rows.append(obj)
        where.append(loc)
    if not rows:
        raise UserError(f"{path}: no JSON objects found; expected one object per line like "
                        '{"text": ..., "label": ...}')
    return Table(list(columns), rows, where)


def _resolve_column(table: Table, wanted: str | int | None, guesses: Sequence[str], role: str, key: str,
                    path: Path) -> str:
    """The column named (or indexed) by ``wanted``, else the first of ``guesses``; ``key`` is
    the setting that chooses it, named in the error message (``data.text_column``, ``--column``)."""
    cols = table.columns
    if wanted is not None:
        if isinstance(wanted, int) or (isinstance(wanted, str) and wanted.isdigit() and not table.has_header):
            i = int(wanted)
            if 0 <= i < len(cols):
                return cols[i]
        elif wanted in cols:
            return wanted
        else:
            match = [c for c in cols if _norm(c) == _norm(wanted)]
            if match:
                return match[0]
        raise UserError(
            f"{path}: no column {wanted!r} for the {role} ({key}). Columns found: "
            f"{', '.join(map(repr, cols))}. Set {key} to one of them."
        )
    by_norm = {_norm(c): c for c in reversed(cols)}
    for g in guesses:
        if g in by_norm:
            return by_norm[g]
    raise UserError(
        f"{path}: cannot tell which column holds the {role}. Columns found: {', '.join(map(repr, cols))}. "
        f"Name it one of {', '.join(guesses[:4])}, ... or set {key}."
    )


def _guess_headerless(table: Table) -> tuple[str, str]:
    """Without a header: the text is the column with the longest cells; the label, the one
    of the others with the fewest distinct values."""
    if len(table.columns) < 2:
        raise UserError("a text table needs at least two columns (text and label)")
    sample = table.rows[:2000]

    def mean_len(c: str) -> float:
        return float(np.mean([len(str(r.get(c) or "")) for r in sample]))

    text = max(table.columns, key=mean_len)
    others = [c for c in table.columns if c != text]
    label = min(reversed(others), key=lambda c: len({str(r.get(c)) for r in sample}))
    return text, label


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip()) or (isinstance(v, float) and np.isnan(v))


def load_text_table(path: str | Path, cfg: DataConfig, report: DataReport) -> RawDataset:
    """Load a CSV/TSV/JSONL/JSON table of texts and labels (see the module docstring)."""
    path = Path(path)
    fmt = cfg.text_format if cfg.text_format != "auto" else sniff_table_format(path)
    if fmt is None:
        raise UserError(
            f"{path}: cannot tell the file format from its content; name it .csv, .tsv or .jsonl, "
            "or set data.text_format"
        )
    stats = TextStats()
    if fmt in ("csv", "tsv"):
        table = read_delimited(path, fmt, cfg, stats)
    else:
        table = read_json_records(path, fmt, report, stats)
    if not table.has_header and cfg.text_column is None and cfg.label_column is None:
        text_col, label_col = _guess_headerless(table)
        report.note(f"{path.name} has no header: using column {text_col} as the text and {label_col} as the label")
    elif (cfg.text_column is None and cfg.label_column is None and len(table.columns) == 2
          and not any(_norm(c) in (*TEXT_COLUMNS, *LABEL_COLUMNS) for c in table.columns)):
        # Two columns with names that say nothing (Kaggle's spam.csv: v1,v2): tell them apart
        # by content, as without a header. With more columns, guessing the label could pick
        # the wrong one silently, so that stays an error that lists the columns.
        text_col, label_col = _guess_headerless(table)
        report.note(f"{path.name}: using column {text_col!r} as the text and {label_col!r} as the label "
                    "(by content; set data.text_column / data.label_column to choose)")
    else:
        text_col = _resolve_column(table, cfg.text_column, TEXT_COLUMNS, "text", "data.text_column", path)
        label_col = _resolve_column(table, cfg.label_column, LABEL_COLUMNS, "label", "data.label_column", path)
    if text_col == label_col:
        raise UserError(f"{path}: the text and the label are both column {text_col!r}; set data.text_column "
                        "and data.label_column to two different columns")
    texts, labels, ids = [], [], []
    for row, loc in zip(table.rows, table.where):
        text, label = row.get(text_col), row.get(label_col)
        if _is_missing(label):
            report.skip(loc, f"missing label (column {label_col!r})")
            continue
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        if not text.strip():
            report.skip(loc, f"empty text (column {text_col!r})")
            continue
        texts.append(text)
        labels.append(label)
        ids.append(loc.rsplit("/", 1)[-1])
    stats.report_to(report)
    log.debug("read %d text(s) from %s: text column %r, label column %r", len(texts), path.name, text_col, label_col)
    return text_dataset(path.stem, {"train": (texts, labels, ids)}, report, str(path))


def read_text_inputs(path: str | Path, column: str | int | None = None) -> tuple[list[str], list[str]]:
    """Texts to predict on, from a file: a table's text column (``.csv``, ``.tsv``,
    ``.jsonl``, ``.json``; ``column`` or a guessed one), else one text per non-empty line.

    Returns:
        ``(texts, where)``: the texts and ``file:line`` for each.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "new.txt"
        >>> _ = p.write_text("loved it\\n\\nhated it\\n")
        >>> read_text_inputs(p)
        (['loved it', 'hated it'], ['new.txt:1', 'new.txt:3'])
    """
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"{path} does not exist")
    fmt = TABLE_EXTENSIONS.get(path.suffix.lower())
    stats = TextStats()
    if fmt is None:
        text, _ = decode_bytes(path.read_bytes())
        pairs = [(line, f"{path.name}:{i}") for i, line in enumerate(text.splitlines(), start=1) if line.strip()]
    else:
        cfg = DataConfig(dataset=str(path), text_column=column)
        report = DataReport()
        table = read_delimited(path, fmt, cfg, stats) if fmt in ("csv", "tsv") else read_json_records(
            path, fmt, report, stats)
        if not table.has_header and column is None:
            col = table.columns[0] if len(table.columns) == 1 else _guess_headerless(table)[0]
        else:
            col = _resolve_column(table, column, TEXT_COLUMNS, "text", "--column", path)
        pairs = [(str(r.get(col) or ""), w.rsplit("/", 1)[-1]) for r, w in zip(table.rows, table.where)]
        pairs = [(t, w) for t, w in pairs if t.strip()]
    if not pairs:
        raise UserError(f"{path}: no text found (expected one text per line, or a table with a text column)")
    return [t for t, _ in pairs], [w for _, w in pairs]


# -- folders of text files -------------------------------------------------------------------
def _is_doc(p: Path) -> bool:
    return p.suffix.lower() in TEXT_FILE_EXTENSIONS


def _archive_members(path: Path, limit: int = 64) -> list[str]:
    """Names of the first ``limit`` regular files in a zip/tar archive (cheap: stops early)."""
    names: list[str] = []
    try:
        if path.name.lower().endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if not n.endswith("/")][:limit]
        else:
            with tarfile.open(path) as tf_:
                for member in tf_:
                    if member.isfile():
                        names.append(member.name)
                        if len(names) >= limit:
                            break
    except (OSError, tarfile.TarError, zipfile.BadZipFile):
        return []
    return names


def _looks_textual(names: Iterable[str]) -> bool:
    names = [n for n in names if not any(part.startswith(".") for part in Path(n).parts)]
    docs = [n for n in names if Path(n).suffix.lower() in (".txt", ".text")]
    return bool(docs) and not any(is_image_file(n) for n in names) and len(docs) * 2 >= len(names)


def is_text_folder(path: Path) -> bool:
    """``detect`` of the ``text_folder`` format: class folders (or an archive) of ``.txt`` files."""
    if path.is_file() and is_archive(path):
        return _looks_textual(_archive_members(path))
    if not path.is_dir():
        return False
    names: list[str] = []
    for p in path.rglob("*"):
        if p.is_file():
            names.append(str(p.relative_to(path)))
            if len(names) >= 64:
                break
    return _looks_textual(names)


def read_text_files(files: Sequence[Path], report: DataReport, stats: TextStats) -> tuple[list[str], list[int]]:
    """Read documents; returns the texts and the indices of ``files`` they came from."""
    texts, kept = [], []
    for i, p in enumerate(files):
        try:
            text, bad = decode_bytes(p.read_bytes())
        except OSError as exc:
            report.skip(p, f"unreadable ({exc.strerror or exc})")
            continue
        if bad:
            stats.bad_bytes.append(str(p))
        if not text.strip():
            report.skip(p, "empty text")
            continue
        texts.append(text)
        kept.append(i)
    return texts, kept


def _scan_docs(root: Path, report: DataReport, classes: Sequence[str] | None = None) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    dirs = [root / c for c in classes] if classes else sorted(
        p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for d in dirs:
        if not d.is_dir():
            raise NotFoundError(f"{d} does not exist: expected a folder of .txt files for class {d.name!r}")
        files = []
        for p in sorted(d.rglob("*")):
            if not p.is_file() or any(part.startswith(".") for part in p.relative_to(d).parts):
                continue
            if _is_doc(p):
                files.append(p)
            else:
                report.skip(p, f"not a text file (extension {p.suffix!r}; expected .txt)")
        out[d.name] = files
    return out


def load_text_folder(path: str | Path, cfg: DataConfig, report: DataReport,
                     classes: Sequence[str] | None = None, name: str | None = None) -> RawDataset:
    """Load ``ROOT/<class>/*.txt`` or ``ROOT/{train,test[,val]}/<class>/*.txt`` (or an archive).

    Args:
        path: the folder, or a ``.tar.gz``/``.zip`` of one (extracted once into the cache).
        cfg: the data config.
        report: receives skipped files and notes.
        classes: only these class folders, in this order (default: every sub-folder, sorted).
        name: the dataset's name (default: the folder's).
    """
    path = Path(path).expanduser()
    root = unwrap_root(extract_archive(path) if is_archive(path) else path)
    top = {d.name.lower(): d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")}
    split_dirs = {SPLIT_DIRS[k]: d for k, d in top.items() if k in SPLIT_DIRS}
    per_split = ({s: _scan_docs(d, report, classes) for s, d in split_dirs.items()} if "train" in split_dirs
                 else {"train": _scan_docs(root, report, classes)})
    names = list(classes) if classes else sorted({c for cl in per_split.values() for c in cl})
    stats = TextStats()
    raw: dict[str, tuple[list[str], list[Any], list[str]]] = {}
    for split, by_class in per_split.items():
        files = [f for c in names for f in by_class.get(c, [])]
        labels = [c for c in names for _ in by_class.get(c, [])]
        texts, kept = read_text_files(files, report, stats)
        raw[split] = (texts, [labels[i] for i in kept], [str(files[i].relative_to(root)) for i in kept])
    stats.report_to(report)
    if not any(raw[s][0] for s in raw):
        raise UserError(f"{root}: no .txt files found; expected ROOT/<class>/<file>.txt or "
                        "ROOT/train/<class>/<file>.txt")
    present = sorted({lab for _, labels, _ in raw.values() for lab in labels}, key=names.index)
    if len(present) < len(names):
        empty = [c for c in names if c not in present]
        report.empty_classes.extend(empty)
        report.note(f"class folder(s) with no readable text dropped: {', '.join(empty)}")
    return text_dataset(name or root.name, raw, report, str(path), class_names=present)


# -- IMDB -------------------------------------------------------------------------------------
@register_dataset("imdb", task="text",
                  description="IMDB movie reviews (Stanford aclImdb), raw text, 25k/25k, pos/neg")
def imdb(cfg: DataConfig, report: DataReport) -> RawDataset:
    """The Large Movie Review Dataset: ``aclImdb/{train,test}/{neg,pos}/*.txt``.

    Looked up as ``aclImdb/`` or ``aclImdb_v1.tar.gz`` in the data directories; when
    absent, downloaded from Stanford (as Keras' text-classification example does).
    """
    candidates = ["aclImdb", "aclImdb_v1.tar.gz"]
    path = find_data_file(candidates, cfg.data_dir)
    if path is None:
        import keras

        log.info("imdb not found locally; downloading %s", IMDB_URL)
        try:
            path = Path(keras.utils.get_file("aclImdb_v1.tar.gz", IMDB_URL))
        except Exception as exc:
            msg = not_found_message("imdb", candidates, cfg.data_dir)
            msg = msg.replace("Keras' download", "the download from Stanford")
            raise DatasetNotFoundError(f"{msg}\n(download error: {exc})") from None
    if path.is_file():
        root = extract_archive(path) / "aclImdb"
    else:
        root = path
    if not (root / "train").is_dir():
        raise DatasetNotFoundError(f"{path}: expected Stanford's layout aclImdb/{{train,test}}/{{neg,pos}}/*.txt")
    split_dirs = {"train": root / "train", "test": root / "test"}
    stats = TextStats()
    raw: dict[str, tuple[list[str], list[Any], list[str]]] = {}
    for split, d in split_dirs.items():
        if not d.is_dir():
            continue
        by_class = _scan_docs(d, report, classes=("neg", "pos"))
        files = [f for c in ("neg", "pos") for f in by_class[c]]
        labels = [c for c in ("neg", "pos") for _ in by_class[c]]
        texts, kept = read_text_files(files, report, stats)
        raw[split] = (texts, [labels[i] for i in kept], [str(files[i].relative_to(root)) for i in kept])
    stats.report_to(report)
    return text_dataset("imdb", raw, report, str(path), class_names=["neg", "pos"])


FORMATS.add("text_table", DataFormat(is_text_table, load_text_table, priority=5),
            description="CSV/TSV/JSONL of text,label rows (columns guessed or set)")
FORMATS.add("text_folder", DataFormat(is_text_folder, load_text_folder, priority=40),
            description="ROOT/<class>/*.txt or ROOT/{train,test,val}/<class>/*.txt, or an archive of one")
