"""A re-export that fails or is refused leaves the earlier, working artifact exactly as it was."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tfpilot.export import ExportError, GateError, export


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_refused_int8_re_export_keeps_the_earlier_artifact(image_run, tmp_path):
    out = tmp_path / "export"
    first = export(image_run, ["tflite-int8"], out_dir=out)
    assert first.checks["tflite-int8"]["passed"]
    before = _digests(out / "tflite-int8")
    assert "model.tflite" in before
    with pytest.raises(GateError) as info:  # an impossible gate: accuracy must rise 1000 points
        export(image_run, ["tflite-int8"], out_dir=out, max_drop=-1000.0)
    assert "earlier export" in str(info.value) and "is kept" in str(info.value)
    assert _digests(out / "tflite-int8") == before
    assert [p.name for p in out.iterdir()] == ["tflite-int8"]  # no temporary folder is left behind


def test_a_failed_re_export_keeps_the_earlier_artifact(image_run, tmp_path, monkeypatch):
    from tfpilot.export.formats import EXPORTERS

    out = tmp_path / "export"
    export(image_run, ["tflite"], out_dir=out)
    before = _digests(out / "tflite")

    def refuses(source, into):
        (Path(into) / "model.tflite").write_bytes(b"half a model")
        raise ValueError("the converter refused the model")

    monkeypatch.setattr(EXPORTERS, "get", lambda name: refuses)
    with pytest.raises(ExportError, match="refused"):
        export(image_run, ["tflite"], out_dir=out)
    assert _digests(out / "tflite") == before
    assert [p.name for p in out.iterdir()] == ["tflite"]


def test_a_passing_re_export_replaces_the_artifact(image_run, tmp_path):
    out = tmp_path / "export"
    export(image_run, ["keras"], out_dir=out)
    (out / "keras" / "stale.txt").write_text("from the earlier export")
    result = export(image_run, ["keras"], out_dir=out)
    assert result.artifacts[0].path.parent == out / "keras" and result.artifacts[0].path.is_file()
    assert not (out / "keras" / "stale.txt").exists()
    assert sorted(p.name for p in out.iterdir()) == ["keras"]


def test_verify_skips_the_folder_of_an_export_killed_before_its_swap(tmp_path):
    from tfpilot.export.verify import find_artifacts

    for name in ("tflite", ".tflite.new-abc123"):
        (tmp_path / "export" / name).mkdir(parents=True)
        (tmp_path / "export" / name / "bundle.json").write_text("{}")
    assert [p.name for p in find_artifacts(tmp_path)] == ["tflite"]
