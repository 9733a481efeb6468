"""The decode cache: a second load of the same image files decodes nothing and returns the same
arrays; any change to the files or the decode target makes a new entry; broken entries are
rebuilt; concurrent writers end with one valid entry."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tfpilot.config import DataConfig, load_config
from tfpilot.config.loader import dump_config
from tfpilot.data import decode_cache, folder, load_dataset
from tfpilot.testing import make_image_folder, write_image


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """Each test its own cache (xdist workers and other tests never see these entries)."""
    monkeypatch.setenv("TFPILOT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(decode_cache.ENV_BUDGET_GB, raising=False)


def _entries() -> list[str]:
    root = decode_cache.decoded_dir()
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def _no_decoding(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("decoded although the decode cache holds these files")

    monkeypatch.setattr(folder, "decode_images", refuse)


def _same(a, b):
    assert a.class_names == b.class_names and a.input_spec == b.input_spec and sorted(a.splits) == sorted(b.splits)
    for name in a.splits:
        sa, sb = a.splits[name], b.splits[name]
        np.testing.assert_array_equal(sa.y, sb.y)
        np.testing.assert_array_equal(sa.ids, sb.ids)
        if sa.x is None:
            assert sb.x is None
            np.testing.assert_array_equal(sa.paths, sb.paths)
        else:
            assert sb.x.dtype == np.uint8
            np.testing.assert_array_equal(sa.x, sb.x)


def test_the_second_load_reads_the_cache_and_decodes_nothing(tmp_path, monkeypatch, caplog):
    root = make_image_folder(tmp_path / "ds", per_class=5, size=12, splits=("train", "test"))
    cfg = DataConfig(dataset=str(root))
    with caplog.at_level(logging.DEBUG, logger="tfpilot"):
        first = load_dataset(cfg)
    assert first.report.decode_cache["status"] == "stored"
    key = first.report.decode_cache["key"]
    assert _entries() == [key] and key.startswith("ds-")
    assert f"decoded 30 images (cached for next time: {key})" in caplog.text
    caplog.clear()

    _no_decoding(monkeypatch)
    with caplog.at_level(logging.DEBUG, logger="tfpilot"):
        second = load_dataset(cfg)
    assert second.report.decode_cache == {"status": "hit", "key": key, "images": 30, "pixels": True}
    assert f"decoded images: 30 from cache ({key})" in caplog.text
    _same(first, second)
    assert second.report.to_dict()["decode_cache"]["status"] == "hit"  # in data_report.json


def test_touching_adding_or_removing_a_file_makes_a_new_entry(tmp_path, monkeypatch):
    root = make_image_folder(tmp_path / "ds", per_class=4, size=8)
    cfg = DataConfig(dataset=str(root))
    keys = [load_dataset(cfg).report.decode_cache["key"]]

    victim = root / "circle" / "0000.png"
    write_image(victim, np.full((8, 8, 3), 77, np.uint8))  # new content ...
    st = victim.stat()
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # ... and surely a new mtime
    changed = load_dataset(cfg)
    assert changed.report.decode_cache["status"] == "stored"
    keys.append(changed.report.decode_cache["key"])
    train = changed.splits["train"]
    assert (train.x[list(train.ids).index(str(victim))] == 77).all()  # the new pixels, not the cached ones

    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns + 2 * 10**9))  # touched only
    keys.append(load_dataset(cfg).report.decode_cache["key"])
    write_image(root / "square" / "new.png", np.zeros((8, 8, 3), np.uint8))
    keys.append(load_dataset(cfg).report.decode_cache["key"])
    (root / "triangle" / "0001.png").unlink()
    removed = load_dataset(cfg)
    keys.append(removed.report.decode_cache["key"])
    assert len(set(keys)) == 5 and sorted(keys) == _entries()
    assert removed.report.decode_cache["images"] == 12 - 1 + 1

    _no_decoding(monkeypatch)  # the latest state is cached
    _same(removed, load_dataset(cfg))


def test_another_image_size_or_colour_mode_is_another_entry(tmp_path, monkeypatch):
    root = make_image_folder(tmp_path / "ds", per_class=3, size=12)
    configs = [DataConfig(dataset=str(root)), DataConfig(dataset=str(root), image_size=(8, 8)),
               DataConfig(dataset=str(root), color_mode="grayscale"),
               DataConfig(dataset=str(root), image_size=(8, 8), color_mode="grayscale")]
    first = [load_dataset(c) for c in configs]
    assert [d.input_spec.shape for d in first] == [(12, 12, 3), (8, 8, 3), (12, 12, 1), (8, 8, 1)]
    assert [d.report.decode_cache["status"] for d in first] == ["stored"] * 4
    assert len(_entries()) == 4
    _no_decoding(monkeypatch)
    for c, d in zip(configs, first):
        again = load_dataset(c)
        assert again.report.decode_cache["status"] == "hit"
        _same(d, again)
    # keyed by the resolved target: the size and mode a run records (evaluate's explicit ones) hit its entry
    explicit = load_dataset(DataConfig(dataset=str(root), image_size=(12, 12), color_mode="rgb"))
    assert explicit.report.decode_cache["key"] == first[0].report.decode_cache["key"]
    _same(first[0], explicit)


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "garble the manifest", "delete the array"])
def test_a_corrupt_entry_is_rebuilt_with_a_log_line(tmp_path, caplog, damage):
    root = make_image_folder(tmp_path / "ds", per_class=4, size=8)
    cfg = DataConfig(dataset=str(root))
    first = load_dataset(cfg)
    entry = decode_cache.decoded_dir() / first.report.decode_cache["key"]
    array = entry / "pixels-train.npy"
    data = bytearray(array.read_bytes())
    if damage == "flip a byte":
        data[-1] ^= 0xFF
        array.write_bytes(bytes(data))
    elif damage == "truncate":
        array.write_bytes(bytes(data[: len(data) // 2]))
    elif damage == "garble the manifest":
        (entry / decode_cache.MANIFEST).write_text("{not json")
    else:
        array.unlink()
    with caplog.at_level(logging.DEBUG, logger="tfpilot"):
        again = load_dataset(cfg)
    assert f"decode cache entry {entry} is corrupt" in caplog.text and "decoding again" in caplog.text
    assert again.report.decode_cache["status"] == "stored"
    _same(first, again)
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="tfpilot"):
        third = load_dataset(cfg)  # the rebuilt entry is whole
    assert third.report.decode_cache["status"] == "hit" and "corrupt" not in caplog.text
    _same(first, third)


def test_bad_files_are_reported_again_from_the_cache_even_after_a_move(tmp_path, monkeypatch):
    root = make_image_folder(tmp_path / "ds", per_class=4, size=8, corrupt=1, non_image=1)
    cfg = DataConfig(dataset=str(root))
    first = load_dataset(cfg)
    reasons = {s.path: s.reason for s in first.report.skipped}
    assert len(reasons) == 6 and sum("corrupt or unreadable image" in r for r in reasons.values()) == 3
    assert any(str(root / "circle" / "corrupt_0.png") in r for r in reasons.values())  # PIL names the file

    _no_decoding(monkeypatch)
    second = load_dataset(cfg)
    assert second.report.decode_cache["status"] == "hit"
    assert [(s.path, s.reason) for s in second.report.skipped] == [(s.path, s.reason) for s in first.report.skipped]

    moved = tmp_path / "elsewhere" / "ds"
    shutil.copytree(root, moved)  # copy2: sizes and mtimes kept -> the same entry
    third = load_dataset(DataConfig(dataset=str(moved)))
    assert third.report.decode_cache == second.report.decode_cache
    expected = {p.replace(str(root), str(moved)): r.replace(str(root), str(moved)) for p, r in reasons.items()}
    assert {s.path: s.reason for s in third.report.skipped} == expected


def test_decode_cache_false_decodes_every_time_and_writes_nothing(tmp_path, monkeypatch, caplog):
    root = make_image_folder(tmp_path / "ds", per_class=3, size=8)
    cfg = load_config({"data": {"dataset": str(root)}}, overrides=["data.decode_cache=false"])
    assert cfg.data.decode_cache is False and "decode_cache: false" in dump_config(cfg)  # the run records it
    calls = []
    real = folder.decode_images
    monkeypatch.setattr(folder, "decode_images", lambda *a, **k: calls.append(1) or real(*a, **k))
    with caplog.at_level(logging.DEBUG, logger="tfpilot"):
        off = [load_dataset(cfg.data) for _ in range(2)]
    assert len(calls) == 2 and _entries() == []
    assert off[1].report.decode_cache == {"status": "off", "key": None, "images": 9, "pixels": True}
    assert "decoded 9 images (data.decode_cache is false: not cached)" in caplog.text
    on = load_dataset(DataConfig(dataset=str(root)))  # the default is on
    assert len(calls) == 3 and on.report.decode_cache["status"] == "stored"
    assert load_dataset(cfg.data).report.decode_cache["status"] == "off" and len(calls) == 4  # even with an entry
    with pytest.raises(ValueError, match="decode_cache"):
        DataConfig(dataset=str(root), decode_cache="sometimes")


def test_images_over_the_memory_limit_cache_only_which_files_are_readable(tmp_path, monkeypatch):
    root = make_image_folder(tmp_path / "ds", per_class=3, size=8, corrupt=1)
    cfg = DataConfig(dataset=str(root), cache="none")  # the pipeline decodes per epoch
    first = load_dataset(cfg)
    manifest = json.loads((decode_cache.decoded_dir() / first.report.decode_cache["key"] / "manifest.json").read_text())
    assert manifest["splits"]["train"]["pixels"] is None and len(manifest["splits"]["train"]["failed"]) == 3
    with monkeypatch.context() as m:
        _no_decoding(m)
        second = load_dataset(cfg)
    assert second.report.decode_cache == {"status": "hit", "key": first.report.decode_cache["key"], "images": 9,
                                          "pixels": False}
    assert second.splits["train"].x is None and len(second.report.skipped) == 3
    _same(first, second)
    with_pixels = load_dataset(DataConfig(dataset=str(root)))  # same key; wants the pixels: rebuilt with them
    assert with_pixels.report.decode_cache["status"] == "stored" and with_pixels.splits["train"].x.shape == (9, 8, 8, 3)


def test_csv_datasets_are_cached_too(tmp_path, monkeypatch):
    imgs = make_image_folder(tmp_path / "imgs", per_class=3, size=8, classes=("x", "y"))
    rows = ["path,label"] + [f"imgs/{p.parent.name}/{p.name},{p.parent.name}" for p in sorted(imgs.rglob("*.png"))]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    cfg = DataConfig(dataset=str(tmp_path / "labels.csv"))
    first = load_dataset(cfg)
    assert first.report.decode_cache["status"] == "stored"
    _no_decoding(monkeypatch)
    _same(first, load_dataset(cfg))


def _saver_script(cache: Path, start: float) -> str:
    return (
        "import os, time, numpy as np\n"
        f"os.environ['TFPILOT_CACHE_DIR'] = {str(cache)!r}\n"
        "from tfpilot.data import decode_cache as dc\n"
        "px = np.arange(300 * 64 * 64 * 3, dtype=np.uint64).astype(np.uint8).reshape(300, 64, 64, 3)\n"
        f"time.sleep(max(0.0, {start} - time.time()))\n"
        "print(dc.save('same-key', dc.EntryMeta((64, 64), 3, 1), {'train': dc.CachedSplit(301, [(5, 'bad')], px)}))\n"
    )


def test_two_processes_writing_the_same_key_leave_one_valid_entry(tmp_path):
    cache = tmp_path / "cache"
    start = time.time() + 3.0  # both import, then write at the same moment
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([sys.executable, "-c", _saver_script(cache, start)], stdout=subprocess.PIPE, text=True,
                              env=env) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0] and outs == ["True", "True"]
    assert _entries() == ["same-key"]  # no temporary folder left behind
    meta, splits = decode_cache.load("same-key", want_pixels=lambda size, channels: True)
    assert meta == decode_cache.EntryMeta((64, 64), 3, 1) and splits["train"].failed == [(5, "bad")]
    expected = np.arange(300 * 64 * 64 * 3, dtype=np.uint64).astype(np.uint8).reshape(300, 64, 64, 3)
    np.testing.assert_array_equal(splits["train"].pixels, expected)
    assert splits["train"].ok.tolist() == [i for i in range(301) if i != 5]


def test_two_threads_loading_the_same_folder_agree_and_leave_one_entry(tmp_path):
    root = make_image_folder(tmp_path / "ds", per_class=6, size=8)
    cfg = DataConfig(dataset=str(root))
    results = [None, None]

    def run(i):
        results[i] = load_dataset(cfg)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _same(results[0], results[1])
    assert len(_entries()) == 1 and load_dataset(cfg).report.decode_cache["status"] == "hit"


def test_least_recently_used_entries_go_first_over_the_budget(tmp_path, monkeypatch):
    root = make_image_folder(tmp_path / "ds", per_class=10, size=16)
    sizes = [(16, 16), (15, 15), (14, 14)]
    keys = [load_dataset(DataConfig(dataset=str(root), image_size=s)).report.decode_cache["key"] for s in sizes]
    for age, key in zip((300, 200, 100), keys):  # used 5, 3 and 1 minutes ago: keys[0] is the oldest
        t = time.time() - age
        os.utime(decode_cache.decoded_dir() / key / decode_cache.MANIFEST, (t, t))
    load_dataset(DataConfig(dataset=str(root), image_size=sizes[0]))  # a hit: now the most recent
    biggest = sum(f.stat().st_size for f in (decode_cache.decoded_dir() / keys[0]).iterdir())
    monkeypatch.setenv(decode_cache.ENV_BUDGET_GB, str(2 * biggest / 2**30))  # room for two entries, not three
    new = load_dataset(DataConfig(dataset=str(root), image_size=(13, 13))).report.decode_cache["key"]
    assert _entries() == sorted([keys[0], new])  # keys[1] and keys[2] were used least recently

    monkeypatch.setenv(decode_cache.ENV_BUDGET_GB, "0")
    unstored = load_dataset(DataConfig(dataset=str(root), image_size=(12, 12)))
    assert unstored.report.decode_cache["status"] == "not stored"
    assert decode_cache.clear() == 2 and _entries() == []
    monkeypatch.setenv(decode_cache.ENV_BUDGET_GB, "lots")
    with pytest.raises(ValueError, match=r"TFPILOT_DECODE_CACHE_GB='lots': expected the decode cache's size limit"):
        load_dataset(DataConfig(dataset=str(root)))


def test_split_json_is_the_same_from_the_cache_without_reading_the_files(tmp_path, monkeypatch):
    from tfpilot.data import manifest, prepare_data

    root = make_image_folder(tmp_path / "ds", per_class=6, size=8, splits=("train", "test"), corrupt=1)
    off = prepare_data(DataConfig(dataset=str(root), decode_cache=False))
    first = prepare_data(DataConfig(dataset=str(root)))

    def refuse(path):
        raise AssertionError(f"read {path} although the decode cache knows its digest")

    monkeypatch.setattr(manifest, "file_digest", refuse)
    _no_decoding(monkeypatch)
    hit = prepare_data(DataConfig(dataset=str(root)))
    assert hit.report.decode_cache["status"] == "hit"
    assert hit.manifest == first.manifest == off.manifest  # members, labels, content digests, fingerprints
    assert len(hit.manifest["digests"]["test"]) == 18
