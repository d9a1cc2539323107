"""Continuation token extraction/injection (spec §2.8)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hpcsoa.protocol._paging import (
    CONTINUATION_HEADER,
    continuation_token,
    with_continuation,
)


def test_header_name() -> None:
    assert CONTINUATION_HEADER == "x-ms-continuation-QueryId"


@pytest.mark.parametrize(
    "name", ["x-ms-continuation-QueryId", "x-ms-continuation-queryId", "X-MS-CONTINUATION-QUERYID"]
)
def test_token_found_case_insensitively(name: str) -> None:
    headers = {"Content-Type": "application/xml", name: "a1B2+c3/=="}
    assert continuation_token(headers) == "a1B2+c3/=="  # verbatim, opaque


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Content-Type": "application/xml"},
        {"x-ms-continuation-QueryId": ""},
        {"x-ms-continuation-QueryId": "   "},
        {"x-ms-continuation-CurrentObjectNumber": "10"},  # legacy header is a different thing
    ],
)
def test_last_page_has_no_token(headers: dict[str, str]) -> None:
    assert continuation_token(headers) is None


def test_with_continuation_appends_and_keeps_everything() -> None:
    query = [("Properties", "Name,Id,MemorySize"), ("RowsPerRead", "2"), ("api-version", "x")]
    assert with_continuation(query, "tok") == [*query, ("QueryId", "tok")]
    assert query[-1] == ("api-version", "x")  # input not mutated


def test_with_continuation_replaces_in_place_case_insensitively() -> None:
    query = [
        ("RowsPerRead", "2"),
        ("queryId", "old"),
        ("Render", "RestPropRender"),
        ("QUERYID", "x"),
    ]
    assert with_continuation(query, "new") == [
        ("RowsPerRead", "2"),
        ("QueryId", "new"),
        ("Render", "RestPropRender"),
    ]


def test_with_continuation_none_removes_token() -> None:
    query = [("RowsPerRead", "2"), ("QueryId", "old")]
    assert with_continuation(query, None) == [("RowsPerRead", "2")]
    assert with_continuation((), None) == []


def test_repeated_parameters_survive() -> None:
    # A parameter given twice (not QueryId) is the caller's business: keep both, in order.
    query = [("a", "1"), ("a", "2")]
    assert with_continuation(query, "t") == [("a", "1"), ("a", "2"), ("QueryId", "t")]


_names = st.sampled_from(["RowsPerRead", "Properties", "$filter", "QueryId", "queryid", "x"])


@given(
    st.lists(st.tuples(_names, st.text(max_size=5)), max_size=8), st.none() | st.text(max_size=8)
)
def test_with_continuation_properties(query: list[tuple[str, str]], token: str | None) -> None:
    out = with_continuation(query, token)
    others = [(k, v) for k, v in query if k.lower() != "queryid"]
    assert [(k, v) for k, v in out if k.lower() != "queryid"] == others
    tokens = [v for k, v in out if k.lower() == "queryid"]
    assert tokens == ([] if token is None else [token])
    # Idempotent: applying the same token again changes nothing.
    assert with_continuation(out, token) == out
