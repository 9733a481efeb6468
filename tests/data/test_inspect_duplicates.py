"""The duplicate search of ``tfpilot inspect``: multi-index hashing finds every pair within the
distance (checked against all pairs), MinHash LSH finds texts changed in case, punctuation or a
word, and exact groups come from digests."""

from __future__ import annotations

import numpy as np

from tfpilot.data.inspect.columns import column_stats, single_column_leakage
from tfpilot.data.inspect.duplicates import exact_groups, near_pairs, normalise_text, text_near_pairs


def _brute(h: np.ndarray, t: int) -> set[tuple[int, int]]:
    d = np.bitwise_count(h[:, None] ^ h[None, :])
    i, j = np.nonzero(np.triu(d <= t, 1))
    return set(zip(i.tolist(), j.tolist()))


def test_near_pairs_equal_the_all_pairs_answer() -> None:
    rng = np.random.default_rng(0)
    h = rng.integers(0, 2**63, size=400, dtype=np.uint64)
    # plant copies with 0..6 bits flipped
    copies = []
    for k in range(60):
        bits = rng.choice(64, size=k % 7, replace=False)
        flip = np.uint64(sum(1 << int(b) for b in bits))
        copies.append(h[k] ^ flip)
    h = np.concatenate([h, np.array(copies, np.uint64)])
    for t in (2, 4, 6):
        found = near_pairs(h, t)
        assert set(map(tuple, found[:, :2].tolist())) == _brute(h, t)
        assert (found[:, 2] <= t).all() and (found[:, 0] < found[:, 1]).all()
    assert len(near_pairs(h, 6)) >= 60  # every planted copy


def test_near_pairs_of_a_crowded_chunk_value_are_compared_in_blocks() -> None:
    h = np.zeros(50, np.uint64)  # all equal: one bucket of 50 in every chunk
    h[10] = np.uint64(0b111)
    found = near_pairs(h, 2, max_bucket=7)
    assert len(found) == 49 * 48 // 2  # pairs among the 49 zeros; the 3-bit one is too far
    assert 10 not in found[:, :2]


def test_exact_groups_skip_missing_files() -> None:
    assert exact_groups(["x", "missing", "y", "x", "missing", "x"]) == [[0, 3, 5]]


def test_texts_changed_in_case_punctuation_or_a_word_are_near() -> None:
    base = "the striker scored a late goal and the team won the league after a long season of matches"
    texts = [base, base.upper().replace(" ", ",  ", 3) + "!!", base.replace("late", "very"),
             "an oven baked flour and butter recipe with garlic sauce for the whole family on a cold winter night"]
    assert normalise_text(texts[1]) == base
    pairs = {(i, j) for i, j, _ in text_near_pairs(texts)}
    assert pairs == {(0, 1), (0, 2), (1, 2)}


def test_column_stats_and_leakage() -> None:
    import pandas as pd

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    frame = pd.DataFrame({"user": [f"u{i}" for i in range(200)], "const": "x", "copy": np.where(y, "yes", "no"),
                          "noise": rng.normal(size=200), "gappy": np.where(np.arange(200) % 10 == 0, np.nan, 1.0)})
    stats = {c["name"]: c for c in column_stats(frame)}
    assert stats["user"]["id_like"] and not stats["noise"]["id_like"]
    assert stats["const"]["constant"] and not stats["copy"]["constant"]
    assert stats["gappy"]["missing"] == 20 and stats["gappy"]["missing_rows"][:2] == [1, 11]
    kinds = {"copy": "category", "noise": "number", "user": "category"}
    tr, te = np.arange(150), np.arange(150, 200)
    cols = {k: frame[k].to_numpy() for k in kinds}
    found = {e["column"]: e for e in single_column_leakage({k: v[tr] for k, v in cols.items()},
                                                            {k: v[te] for k, v in cols.items()}, kinds,
                                                            y[tr], y[te], classify=True)}
    assert found["copy"]["leak"] and found["copy"]["score"] == 1.0
    assert not found["noise"]["leak"] and not found["user"]["leak"]


def test_batched_phash_is_imagehash_phash(tmp_path) -> None:
    import imagehash
    from PIL import Image

    from tfpilot.data.inspect.hashing import array_phashes, hash_image_files

    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, size=(s, s + 3, 3), dtype=np.uint8) for s in (8, 17, 32, 45)]
    paths = []
    for k, a in enumerate(images):
        paths.append(tmp_path / f"{k}.png")
        Image.fromarray(a).save(paths[-1])
    (tmp_path / "bad.png").write_bytes(b"not a png")
    expected = [int(str(imagehash.phash(Image.fromarray(a))), 16) for a in images]
    infos = hash_image_files([*map(str, paths), str(tmp_path / "bad.png")], workers=1)
    assert [x.phash for x in infos[:4]] == expected
    assert infos[4].error.startswith("not a decodable image") and infos[4].phash == 0
    assert (infos[1].width, infos[1].height, infos[1].mode) == (20, 17, "RGB")
    assert array_phashes(np.stack([images[2]])).tolist() == [expected[2]]
    pooled = hash_image_files([*map(str, paths), str(tmp_path / "bad.png")], workers=2, chunk=2)  # 3 tasks, 2 processes
    assert pooled == infos
