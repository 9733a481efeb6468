"""``relative_paths``: its one-slice fast path gives exactly what abspath + relpath give."""

from __future__ import annotations

import os

from hypothesis import example, given
from hypothesis import strategies as st

from tfpilot.data.paths import relative_paths

# components that exercise normalisation: ".", "..", empty (a doubled "/"), hidden names
COMPONENT = st.sampled_from(["a", "b", "cat", ".", "..", "", ".hidden", "..x", "x.", "1.jpg", ".jpg"])


def _reference(path: str, root: str) -> str:
    return os.path.relpath(os.path.abspath(path), os.path.abspath(root))


@given(st.lists(COMPONENT, min_size=1, max_size=6), st.sampled_from(["/data", "/data/", "/data/set", "/"]),
       st.booleans(), st.booleans())
@example(["", "a"], "/", True, False)  # "//a": abspath keeps the leading "//", relpath does not
def test_relative_paths_match_abspath_relpath(parts, root, under_root, trailing_slash):
    base = root if under_root else "/elsewhere"
    path = base.rstrip("/") + "/" + "/".join(parts) + ("/" if trailing_slash else "")
    assert relative_paths([path], root) == [_reference(path, root)]


def test_relative_paths_of_scanned_and_relative_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "images"
    got = relative_paths([str(root / "cat" / "1.jpg"), "images/dog/2.jpg", root / "x" / ".." / "3.jpg",
                          str(tmp_path / "outside.jpg")], root)
    assert got == ["cat/1.jpg", "dog/2.jpg", "3.jpg", "../outside.jpg"]
