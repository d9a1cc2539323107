"""Bulk encoding of generic requests: ``encode_generic_request_list`` must agree exactly with
the per-record ``encode_generic_request`` (same bytes, same errors, naming the first bad
item)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpcsoa._exceptions import EncodeError
from hpcsoa.protocol._generic import (
    encode_generic_request,
    encode_generic_request_list,
)
from hpcsoa.protocol._models import (
    GENERIC_REPLY_ACTION,
)

# Text a generic field can carry: no U+FFFF, no NUL, no lone surrogate.
_field = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\uffff\x00"), max_size=12
)
_action = st.sampled_from([GENERIC_REPLY_ACTION, "http://hpc.microsoft.com/Fault/x", "é"])


# --- encoder ----------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_field, _field), max_size=20))
def test_request_list_equals_per_record_encoding(pairs: list[tuple[str, str]]) -> None:
    inputs = [p[0] for p in pairs]
    keys = [p[1] for p in pairs]
    assert encode_generic_request_list(inputs, keys) == b"".join(
        map(encode_generic_request, inputs, keys)
    )


@pytest.mark.parametrize(
    ("inputs", "keys", "where"),
    [
        (["a", "b\uffffc", "d"], ["1", "2", "3"], "item 1: input contains U+FFFF (index 1)"),
        (["a", "b", "c"], ["1", "2", "x\x00"], "item 2: user_data contains NUL (index 1)"),
        (["\ud800"], ["1"], "item 0: input contains a lone surrogate (index 0)"),
        (["a\x00b\uffff", "c"], ["1\uffff", "2"], "item 0: input contains U+FFFF (index 3)"),
    ],
)
def test_request_list_names_the_bad_item(inputs: list[str], keys: list[str], where: str) -> None:
    with pytest.raises(EncodeError) as info:
        encode_generic_request_list(inputs, keys)
    assert str(info.value).startswith(where)
    # The same complaint as the per-record encoder makes about that item.
    index = int(where.split()[1].rstrip(":"))
    with pytest.raises(EncodeError) as single:
        encode_generic_request(inputs[index], keys[index])
    assert str(info.value) == f"item {index}: {single.value}"


def test_request_list_compensating_counts_still_rejected() -> None:
    # One record without a separator and one with two: the totals alone would match.
    with pytest.raises(EncodeError, match="item 1: input contains U"):
        encode_generic_request_list(["a", "b\uffff", "c"], ["1", "2", "3"])
    with pytest.raises(EncodeError, match="item 0: input contains NUL"):
        encode_generic_request_list(["a\x00", "b"], ["1", "2"])


def test_request_list_type_and_length_errors() -> None:
    with pytest.raises(TypeError, match="item 1: input must be str, not int"):
        encode_generic_request_list(["a", 5], ["1", "2"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="item 0: user_data must be str, not bytes"):
        encode_generic_request_list(["a"], [b"1"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="2 inputs but 1 user data"):
        encode_generic_request_list(["a", "b"], ["1"])
    assert encode_generic_request_list([], []) == b""


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=6), st.text(max_size=6)), max_size=8))
def test_request_list_same_error_as_per_record(pairs: list[tuple[str, str]]) -> None:
    """Any text (separators, NULs, surrogates included): same bytes or the first bad item's
    error, exactly as the per-record encoder reports it."""
    inputs = [p[0] for p in pairs]
    keys = [p[1] for p in pairs]
    expected: bytes | str
    try:
        expected = b"".join(map(encode_generic_request, inputs, keys))
    except EncodeError:
        for index, (value, key) in enumerate(pairs):
            try:
                encode_generic_request(value, key)
            except EncodeError as exc:
                expected = f"item {index}: {exc}"
                break
    if isinstance(expected, bytes):
        assert encode_generic_request_list(inputs, keys) == expected
    else:
        with pytest.raises(EncodeError) as info:
            encode_generic_request_list(inputs, keys)
        assert str(info.value) == expected
