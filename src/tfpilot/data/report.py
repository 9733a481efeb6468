"""The data report: what was read, what was skipped and why, and the class balance."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class SkippedFile:
    path: str
    reason: str


@dataclass
class DataReport:
    """Collected while a dataset loads; saved as ``data_report.json`` in the run directory."""

    dataset: str = ""
    source: str = ""
    skipped: list[SkippedFile] = field(default_factory=list)
    empty_classes: list[str] = field(default_factory=list)
    split_sizes: dict[str, int] = field(default_factory=dict)
    class_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: Image files: ``{"status": "hit" | "stored" | "not stored" | "off", "key", "images"}``
    #: (:mod:`tfpilot.data.decode_cache`); empty for other data.
    decode_cache: dict[str, Any] = field(default_factory=dict)

    def skip(self, path: str | Path, reason: str) -> None:
        self.skipped.append(SkippedFile(str(path), reason))

    def note(self, message: str) -> None:
        self.notes.append(message)
        log.warning(message)

    def decoded(self, images: int, status: str, key: str | None = None, pixels: bool = True) -> None:
        """Record (and log) where the decoded images came from.

        Args:
            images: how many files decoded.
            status: ``"hit"`` (read from the decode cache), ``"stored"`` (decoded, cached for
                next time), ``"not stored"`` (decoded, the cache could not keep them) or
                ``"off"`` (decoded, ``data.decode_cache`` is false).
            key: the cache entry.
            pixels: the images themselves were decoded or cached (else only which files are
                readable: the pipeline decodes them per epoch).

        Example:
            >>> r = DataReport()
            >>> r.decoded(3, "hit", "shapes-0123")
            >>> r.decode_cache
            {'status': 'hit', 'key': 'shapes-0123', 'images': 3, 'pixels': True}
            >>> r.decode_cache_line()
            'decoded images: 3 from cache (shapes-0123)'
        """
        self.decode_cache = {"status": status, "key": key, "images": images, "pixels": pixels}
        log.debug("%s", self.decode_cache_line())

    def decode_cache_line(self) -> str:
        """Where the decoded images came from, in words ('' for data that is not image files):
        ``decoded images: N from cache (KEY)`` or ``decoded N images (cached for next time: KEY)``.
        The trainer logs it with the data preparation time (a DEBUG log line here, so the JSON
        that commands print stays clean on a combined output).

        Example:
            >>> r = DataReport()
            >>> r.decoded(3, "stored", "shapes-0123")
            >>> r.decode_cache_line()
            'decoded 3 images (cached for next time: shapes-0123)'
        """
        c = self.decode_cache
        if not c:
            return ""
        images, key = c["images"], c["key"]
        what = ("decoded images" if c.get("pixels", True)
                else "readable images (decoded per epoch: over data.cache_max_gb)")
        if c["status"] == "hit":
            return f"{what}: {images} from cache ({key})"
        if c["status"] == "stored":
            return f"decoded {images} images (cached for next time: {key})"
        if c["status"] == "off":
            return f"decoded {images} images (data.decode_cache is false: not cached)"
        return (f"decoded {images} images (not cached: $TFPILOT_DECODE_CACHE_GB is 0, or the cache could not "
                "be written)")

    def warn_skipped(self) -> None:
        if self.skipped:
            shown = "; ".join(f"{s.path}: {s.reason}" for s in self.skipped[:5])
            more = f" (+{len(self.skipped) - 5} more)" if len(self.skipped) > 5 else ""
            log.warning("skipped %d unreadable file(s): %s%s", len(self.skipped), shown, more)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["num_skipped"] = len(self.skipped)
        return d

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        return path
