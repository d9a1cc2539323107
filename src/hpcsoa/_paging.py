"""``AsyncPager[T]``: items of a paged list operation, or its pages (azure-core style, STYLE §7).

A pager is built from one coroutine, ``fetch(token) -> (next_token, items)``: ``token`` is
``None`` for the first page and the previous page's continuation token after that; a
``next_token`` of ``None`` ends the listing. ``async for item in pager`` gives items;
``pager.by_page(continuation_token=...)`` gives lists and can resume a listing from a saved
token. A pager is iterated once: a second iteration raises :class:`~hpcsoa.StreamConsumed`,
and ``by_page()`` on a pager already being iterated raises
:class:`~hpcsoa.PagerAlreadyStarted`. An error while fetching a page carries the token that
page was requested with as ``continuation_token``, so the caller can resume there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Generic, TypeVar

from ._exceptions import PagerAlreadyStarted, StreamConsumed

__all__ = ["AsyncPager", "FetchPage"]

T = TypeVar("T")

FetchPage = Callable[[str | None], Awaitable[tuple[str | None, list[T]]]]

_NOT_STARTED = 0
_ITEMS = 1
_PAGES = 2
_DONE = 3


class AsyncPager(Generic[T]):
    """Lazily fetched pages of a list operation.

    Args:
        fetch: ``fetch(token) -> (next_token, items)``; see the module docstring.
        continuation_token: start from this token instead of the first page.

    Attributes:
        continuation_token: the token of the next page to fetch (``None`` once the listing
            is complete, or before it started from the beginning).
        pages_fetched: number of pages fetched so far.
    """

    def __init__(self, fetch: FetchPage[T], *, continuation_token: str | None = None) -> None:
        self._fetch = fetch
        self.continuation_token = continuation_token
        self.pages_fetched = 0
        self._state = _NOT_STARTED
        self._items: AsyncIterator[T] | None = None

    def _claim(self, mode: int) -> None:
        if self._state == _NOT_STARTED:
            self._state = mode
            return
        if mode == _PAGES and self._state == _ITEMS:
            raise PagerAlreadyStarted(
                "by_page() was called on a pager that is already being iterated item by item; "
                "create a new pager (call the list method again), or pass the saved "
                "continuation_token to resume"
            )
        raise StreamConsumed(
            "this pager was already iterated; a pager yields its items once. Call the list "
            "method again for a fresh listing, or resume with "
            f"by_page(continuation_token={self.continuation_token!r})"
        )

    async def _pages(self, token: str | None) -> AsyncIterator[list[T]]:
        first = True
        while first or token is not None:
            first = False
            try:
                next_token, items = await self._fetch(token)
            except Exception as exc:
                # Let the caller resume where this page failed (azure-core convention).
                exc.continuation_token = token  # type: ignore[attr-defined]
                raise
            self.pages_fetched += 1
            token = next_token
            self.continuation_token = next_token
            yield items
        self._state = _DONE

    def by_page(self, continuation_token: str | None = None) -> AsyncIterator[list[T]]:
        """Iterate page by page, from ``continuation_token`` if given.

        Raises:
            PagerAlreadyStarted: the pager is being iterated item by item.
            StreamConsumed: the pager was already iterated.
        """
        self._claim(_PAGES)
        token = continuation_token if continuation_token is not None else self.continuation_token
        return self._pages(token)

    async def _iter_items(self) -> AsyncIterator[T]:
        async for page in self._pages(self.continuation_token):
            for item in page:
                yield item

    def __aiter__(self) -> AsyncIterator[T]:
        self._claim(_ITEMS)
        self._items = self._iter_items()
        return self._items

    async def to_list(self, *, limit: int | None = None) -> list[T]:
        """All items (at most ``limit``) as a list."""
        out: list[T] = []
        async for item in self:
            out.append(item)
            if limit is not None and len(out) >= limit:
                break
        return out

    def __repr__(self) -> str:
        state = {_NOT_STARTED: "new", _ITEMS: "items", _PAGES: "pages", _DONE: "done"}[self._state]
        return (
            f"<AsyncPager {state} pages_fetched={self.pages_fetched} "
            f"continuation_token={self.continuation_token!r}>"
        )
