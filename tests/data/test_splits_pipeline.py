import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tfpilot.data.pipeline import make_pipeline
from tfpilot.data.source import Split
from tfpilot.data.splits import hash_split, limit_stratified, stratified_split, unit_hash


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(1, 40), min_size=2, max_size=6),
    val=st.floats(0.0, 0.4),
    test=st.floats(0.0, 0.4),
    seed=st.integers(0, 10),
)
def test_stratified_split_partitions_and_keeps_every_class_in_train(counts, val, test, seed):
    y = np.concatenate([np.full(c, k) for k, c in enumerate(counts)])
    parts = stratified_split(y, {"val": val, "test": test}, seed)
    joined = np.sort(np.concatenate(list(parts.values())))
    np.testing.assert_array_equal(joined, np.arange(len(y)))  # a partition
    assert set(np.unique(y[parts["train"]])) == set(range(len(counts)))
    again = stratified_split(y, {"val": val, "test": test}, seed)
    assert all(np.array_equal(parts[k], again[k]) for k in parts)


def test_limit_is_class_balanced():
    y = np.repeat(np.arange(4), 100)
    keep = limit_stratified(y, 40, seed=0)
    assert len(keep) == 40 and np.bincount(y[keep]).tolist() == [10, 10, 10, 10]


def test_pipeline_shuffles_reproducibly_and_one_hots():
    split = Split(y=np.arange(20) % 4, x=np.arange(20, dtype=np.uint8).reshape(20, 1, 1, 1))
    a = [b[0].numpy().ravel().tolist() for b in make_pipeline(split, 5, training=True, seed=1)]
    b = [b[0].numpy().ravel().tolist() for b in make_pipeline(split, 5, training=True, seed=1)]
    assert a == b and sorted(sum(a, [])) == list(range(20)) and sum(a, []) != list(range(20))
    x, y = next(iter(make_pipeline(split, 20, training=False, one_hot=4)))
    assert y.shape == (20, 4) and x.numpy().ravel().tolist() == list(range(20))


def _hashed_part(key, fractions, seed):
    """The part a key's hash alone picks (before the keep-one-in-train rule)."""
    u, acc = unit_hash(seed, key), 0.0
    for name, f in fractions.items():
        acc += f
        if u < acc:
            return name
    return "train"


def _parts_by_key(keys, y, fractions, seed):
    parts = hash_split(keys, np.asarray(y), fractions, seed)
    return {keys[i]: name for name, idx in parts.items() for i in idx}


@settings(max_examples=80, deadline=None)
@given(
    files=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 200)), min_size=1, max_size=80, unique=True),
    added=st.lists(st.tuples(st.integers(0, 4), st.integers(201, 400)), max_size=20, unique=True),
    removed=st.sets(st.integers(0, 79), max_size=20),
    val=st.floats(0.0, 0.45),
    test=st.floats(0.0, 0.45),
    seed=st.integers(-5, 5),
)
def test_adding_or_removing_files_never_moves_another_file(files, added, removed, val, test, seed):
    fractions = {"val": val, "test": test}
    before = [(f"c{c}/{i:04d}.png", c) for c, i in files]
    after = [f for j, f in enumerate(before) if j not in removed] + [(f"c{c}/{i:04d}.png", c) for c, i in added]
    a = _parts_by_key([k for k, _ in before], [c for _, c in before], fractions, seed)
    b = _parts_by_key([k for k, _ in after], [c for _, c in after], fractions, seed)
    assert sorted(a) == sorted(k for k, _ in before) and sorted(b) == sorted(k for k, _ in after)  # partitions

    def kept_in_train(parts):  # the one rule that overrides the hash: a class keeps one train file
        return {k for k, p in parts.items() if p == "train" and _hashed_part(k, fractions, seed) != "train"}

    overridden = kept_in_train(a) | kept_in_train(b)
    for key in set(a) & set(b) - overridden:
        assert a[key] == b[key] == _hashed_part(key, fractions, seed), key
    for parts, data in ((a, before), (b, after)):
        classes = {c for _, c in data}
        assert {c for k, c in data if parts[k] == "train"} == classes  # every class keeps a train file
        by_class = {c: [k for k, cc in data if cc == c] for c in classes}
        for keys in by_class.values():
            forced = [k for k in keys if k in kept_in_train(parts)]
            hashed_train = [k for k in keys if _hashed_part(k, fractions, seed) == "train"]
            assert len(forced) <= 1 and (not forced or not hashed_train)


def test_per_class_permutations_do_not_depend_on_other_classes():
    y = np.repeat([0, 1, 2], 30)
    grown = np.concatenate([np.repeat([0], 31), np.repeat([1, 2], 30)])  # one more class-0 example, first
    a = stratified_split(y, {"val": 0.2, "test": 0.1}, seed=7)
    b = stratified_split(grown, {"val": 0.2, "test": 0.1}, seed=7)
    for name in a:  # classes 1 and 2 (indices shifted by one) keep every example where it was
        assert a[name][a[name] >= 30].tolist() == (b[name][b[name] >= 31] - 1).tolist()
    assert {k: len(v) for k, v in a.items()} == {"train": 63, "val": 18, "test": 9}


def test_limit_by_key_is_exact_and_class_balanced():
    y = np.repeat(np.arange(3), 40)
    keys = [f"c{k}/{i}.png" for i, k in enumerate(y)]
    keep = limit_stratified(y, 30, seed=0, keys=keys)
    assert np.bincount(y[keep]).tolist() == [10, 10, 10]
    more = limit_stratified(np.append(y, 0), 30, seed=0, keys=[*keys, "c0/new.png"])
    assert np.bincount(np.append(y, 0)[more]).tolist() == [10, 10, 10]
    assert more[(more >= 40) & (more < 120)].tolist() == keep[keep >= 40].tolist()  # other classes: unchanged


def test_classifier_data_has_the_named_view_of_a_table():
    from tfpilot.config import DataConfig
    from tfpilot.data import prepare_data
    from tfpilot.data.registry import RunData

    data = prepare_data(DataConfig(dataset="digits", train_limit=100))
    assert isinstance(data, RunData) and data.features is None
    assert (data.spec.input_keys, data.spec.output_keys) == (["images"], ["label"])
    assert list(data.spec.outputs[0].classes) == data.class_names
    assert data.targets("train")["label"] is data.splits["train"].y
    assert data.model_args() == {"input_spec": data.input_spec, "num_classes": 10}
    # balanced over the one head's classes, as the named view gives them
    stream = data.train_stream(50, (0, 4), seed=1, balanced=True)
    labels = np.concatenate([y.numpy() for _, y in stream])
    assert np.bincount(labels, minlength=10).min() > 0.5 * len(labels) / 10
