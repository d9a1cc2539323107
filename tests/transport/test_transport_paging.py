"""AsyncPager: items, pages, resume from a token, single iteration, errors carry the token."""

from __future__ import annotations

import pytest

import hpcsoa

PAGES = {None: ("t1", [1, 2]), "t1": ("t2", [3]), "t2": (None, [4, 5])}


def make_pager(fail_at: str | None = "never") -> tuple[hpcsoa.AsyncPager[int], list[str | None]]:
    asked: list[str | None] = []

    async def fetch(token: str | None) -> tuple[str | None, list[int]]:
        asked.append(token)
        if token == fail_at:
            raise hpcsoa.ServiceUnavailable("busy", status=503)
        return PAGES[token]

    return hpcsoa.AsyncPager(fetch), asked


async def test_items_in_order_lazily() -> None:
    pager, asked = make_pager()
    assert [x async for x in pager] == [1, 2, 3, 4, 5]
    assert asked == [None, "t1", "t2"]
    assert pager.continuation_token is None
    assert pager.pages_fetched == 3
    assert "done" in repr(pager)


async def test_by_page_and_resume_from_token() -> None:
    pager, _ = make_pager()
    assert [p async for p in pager.by_page()] == [[1, 2], [3], [4, 5]]
    resumed, asked = make_pager()
    assert [p async for p in resumed.by_page(continuation_token="t1")] == [[3], [4, 5]]
    assert asked == ["t1", "t2"]


async def test_second_iteration_is_refused() -> None:
    pager, _ = make_pager()
    assert await pager.to_list() == [1, 2, 3, 4, 5]
    with pytest.raises(hpcsoa.StreamConsumed, match="already iterated"):
        async for _ in pager:
            pass
    with pytest.raises(hpcsoa.StreamConsumed):
        pager.by_page()


async def test_by_page_while_iterating_items_is_refused() -> None:
    pager, _ = make_pager()
    it = aiter(pager)
    assert await anext(it) == 1
    with pytest.raises(hpcsoa.PagerAlreadyStarted):
        pager.by_page()


async def test_page_error_carries_the_continuation_token() -> None:
    pager, _ = make_pager(fail_at="t1")
    seen: list[int] = []

    async def consume() -> None:
        async for x in pager:
            seen.append(x)

    with pytest.raises(hpcsoa.ServiceUnavailable) as info:
        await consume()
    assert seen == [1, 2]
    assert info.value.continuation_token == "t1"  # type: ignore[attr-defined]
    resumed, _ = make_pager()
    assert [p async for p in resumed.by_page(info.value.continuation_token)] == [[3], [4, 5]]  # type: ignore[attr-defined]


async def test_to_list_limit() -> None:
    pager, asked = make_pager()
    assert await pager.to_list(limit=3) == [1, 2, 3]
    assert asked == [None, "t1"]
