import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tfpilot.data.pipeline import make_pipeline
from tfpilot.data.source import Split
from tfpilot.data.splits import limit_stratified, stratified_split


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
