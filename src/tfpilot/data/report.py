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

    def skip(self, path: str | Path, reason: str) -> None:
        self.skipped.append(SkippedFile(str(path), reason))

    def note(self, message: str) -> None:
        self.notes.append(message)
        log.warning(message)

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
