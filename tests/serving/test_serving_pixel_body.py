"""The fast path for uint8 pixel bodies gives exactly the general path's batch, or steps aside."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfpilot.serving.decode import InstanceDecoder, parse_json, request_instances
from tfpilot.serving.errors import BadRequest
from tfpilot.serving.pixel_body import PixelBody
from tfpilot.spec import InputSpec


def general(body: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    raw, _ = request_instances(parse_json(body))
    return InstanceDecoder(InputSpec.image(*shape)).decode(raw)


@st.composite
def pixel_bodies(draw: st.DrawFn) -> tuple[bytes, tuple[int, int, int], np.ndarray]:
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.sampled_from([1, 3])))
    n = draw(st.integers(1, 5))
    batch = np.array(draw(st.lists(st.integers(0, 255), min_size=n * int(np.prod(shape)),
                                   max_size=n * int(np.prod(shape)))), dtype=np.uint8).reshape((n, *shape))
    instances = batch[..., 0] if shape[2] == 1 and draw(st.booleans()) else batch  # (H, W) grayscale too
    indent = draw(st.sampled_from([None, 0, 2]))
    separators = draw(st.sampled_from([(",", ":"), (", ", ": "), (" ,", " : ")]))
    text = json.dumps({"instances": instances.tolist()}, indent=indent, separators=separators)
    return text.encode(), shape, batch


@given(pixel_bodies())
@settings(max_examples=200, deadline=None)
def test_the_fast_path_reads_every_layout_of_uint8_pixels_as_the_general_path(case) -> None:
    body, shape, batch = case
    fast = PixelBody(shape).parse(body)
    assert fast is not None
    assert fast.dtype == np.uint8 and fast.shape == batch.shape
    np.testing.assert_array_equal(fast, batch)
    np.testing.assert_array_equal(fast, general(body, shape))


@given(pixel_bodies(), st.data())
@settings(max_examples=300, deadline=None)
def test_a_mutated_body_is_read_as_the_general_path_reads_it_or_left_to_it(case, data) -> None:
    """Whatever one edit does to a body, the fast path never accepts what the general path
    refuses, and never reads it differently."""
    body, shape, _ = case
    pos = data.draw(st.integers(0, len(body) - 1))
    edit = data.draw(st.sampled_from([b"", b"[", b"]", b",", b" ", b"1", b"9 9", b"-", b".5", b"256", b"a", b"00"]))
    mutated = body[:pos] + edit + body[pos + data.draw(st.integers(0, 2)):]
    fast = PixelBody(shape).parse(mutated)
    try:
        expected = general(mutated, shape)
    except BadRequest:
        assert fast is None, mutated
        return
    if fast is not None:
        np.testing.assert_array_equal(fast, expected)


@pytest.mark.parametrize("body", [
    b'{"instances": [[[[1], [2]]]], "signature_name": "serving_default"}',  # another key
    b'{"instances": [[[[1], [-2]]]]}',  # negative
    b'{"instances": [[[[1], [2.0]]]]}',  # float
    b'{"instances": [[[[1], [256]]]]}',  # over 255
    b'{"instances": [[[[1], [2]], [[3]]]]}',  # ragged
    b'{"instances": [[[[1], [2]]]3]}',  # a number after a bracket
    b'{"instances": [[[1[], [2]]]]}',  # a number outside its list: same skeleton, same flat numbers
    b'{"instances": [[[1 [], [2]]]]}',  # ... with whitespace before the bracket
    b'{"instances": [[[[1], []]2]]}',  # ... after its list's bracket
    b'{"instances": [[[[1], [] ]\n2]]}',  # ... with whitespace after the bracket
    b'{"instances": [[[[1 2], [3]]]]}',  # two numbers, no comma
    b'{"instances": []}',  # no instances
    b'{"inputs": [[[[1], [2]]]]}',  # columnar form
    b'{"instances": [[[[01], [2]]]]}',  # leading zero: not JSON
    b'{"instances": [[[[1], [2]]]]',  # truncated
])
def test_anything_but_plain_uint8_rows_is_left_to_the_general_path(body: bytes) -> None:
    assert PixelBody((1, 2, 1)).parse(body) is None


def test_the_decoder_counts_fast_path_instances_against_the_limit() -> None:
    decoder = InstanceDecoder(InputSpec.image(1, 1, 1), max_instances=2)
    assert decoder.pixel_body(b'{"instances": [[[[1]]], [[[2]]]]}').tolist() == [[[[1]]], [[[2]]]]
    with pytest.raises(BadRequest, match="too many instances: 3"):
        decoder.pixel_body(b'{"instances": [[[[1]]], [[[2]]], [[[3]]]]}')
    assert InstanceDecoder(InputSpec.text()).pixel_body(b'{"instances": [[[[1]]]]}') is None
