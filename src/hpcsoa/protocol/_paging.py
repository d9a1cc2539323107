"""Continuation of list operations: token extraction and injection (spec §2.8).

Get Job List, Get Task List and Get Node List page with an opaque token. While more rows
remain, the response carries ``x-ms-continuation-QueryId``; the next request repeats **all**
original query parameters and adds ``QueryId=<token>``. The last page has no header.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

__all__ = [
    "CONTINUATION_HEADER",
    "CONTINUATION_QUERY_PARAM",
    "LEGACY_CONTINUATION_HEADER",
    "continuation_token",
    "with_continuation",
]

CONTINUATION_HEADER: Final = "x-ms-continuation-QueryId"
CONTINUATION_QUERY_PARAM: Final = "QueryId"
# Pre-SP3 mechanism (deprecated, §2.8): echoed as query parameter `CurrentObjectNumber`.
LEGACY_CONTINUATION_HEADER: Final = "x-ms-continuation-CurrentObjectNumber"


def continuation_token(headers: Mapping[str, str]) -> str | None:
    """The continuation token of a list response, or ``None`` on the last page.

    The header name is matched case-insensitively (the docs spell it both
    ``...-QueryId`` and ``...-queryId``). The value is opaque and returned verbatim; an empty
    value counts as absent, because an empty ``QueryId`` would restart the query.
    """
    wanted = CONTINUATION_HEADER.lower()
    for name, value in headers.items():
        if name.lower() == wanted:
            return value if value.strip() else None
    return None


def with_continuation(query: Sequence[tuple[str, str]], token: str | None) -> list[tuple[str, str]]:
    """``query`` with its ``QueryId`` set to ``token`` (removed when ``token`` is ``None``).

    Every other parameter is kept, in order (§2.8: the next request repeats all original
    parameters). An existing ``QueryId`` (matched case-insensitively, §2.2) is replaced in
    place; further duplicates are dropped. Otherwise the token is appended.
    """
    wanted = CONTINUATION_QUERY_PARAM.lower()
    out: list[tuple[str, str]] = []
    placed = False
    for name, value in query:
        if name.lower() != wanted:
            out.append((name, value))
        elif token is not None and not placed:
            out.append((CONTINUATION_QUERY_PARAM, token))
            placed = True
    if token is not None and not placed:
        out.append((CONTINUATION_QUERY_PARAM, token))
    return out
