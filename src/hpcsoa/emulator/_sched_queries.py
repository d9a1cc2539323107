"""List-query helpers of the emulated scheduler: ``$filter``, sorting, continuation tokens.

* ``$filter`` grammar (G23): ``clause *(" and " clause)``, ``clause = name " eq " value``;
  names ``JobState`` / ``TaskState`` / ``NodeState`` / ``ChangeTimeFrom`` (any case); states
  by name (any case) or number; ``ChangeTimeFrom`` in the forms ``parse_net_datetime`` reads.
  Several state clauses select the union of those states (an intersection would be empty).
* Continuation (§2.8 [PROPOSAL]): a token is an opaque random string bound to (user,
  operation, scope), holding the remaining rows and the original parameters; it expires after
  5 minutes without use. Unknown, expired or foreign tokens are rejected by the caller (400).

Pure: the clock is injected.
"""

from __future__ import annotations

import re
import secrets
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Generic, TypeVar

from ..protocol._catalog import WireEnum
from ..protocol._dates import parse_net_datetime

__all__ = ["ListFilter", "QueryStore", "parse_filter", "sort_key"]

E = TypeVar("E", bound=WireEnum)
T = TypeVar("T")

_CLAUSE: Final = re.compile(r"^\s*([A-Za-z]+)\s+eq\s+(.+?)\s*$", re.I)
_AND: Final = re.compile(r"\s+and\s+", re.I)


@dataclass(frozen=True, slots=True)
class ListFilter(Generic[E]):
    """A parsed ``$filter``: allowed states (``None`` = any) and a change-time floor."""

    states: frozenset[E] | None = None
    change_time_from: datetime | None = None

    def matches(self, state: E, change_time: datetime | None) -> bool:
        if self.states is not None and state not in self.states:
            return False
        if self.change_time_from is not None:
            return change_time is not None and change_time >= self.change_time_from
        return True


def parse_filter(text: str, state_name: str, enum_cls: type[E]) -> ListFilter[E]:
    """Parse ``$filter`` for a list whose state property is ``state_name``.

    Raises:
        ValueError: unknown clause name, bad state or date, or malformed syntax.
    """
    if not text.strip():
        raise ValueError("$filter is empty")
    states: set[E] = set()
    floor: datetime | None = None
    for clause in _AND.split(text.strip()):
        m = _CLAUSE.match(clause)
        if m is None:
            raise ValueError(f"malformed $filter clause {clause!r} (expected 'Name eq value')")
        name, value = m.group(1), m.group(2).strip().strip("'\"")
        if name.lower() == state_name.lower():
            member = enum_cls.parse(value)
            assert isinstance(member, enum_cls)
            states.add(member)
        elif name.lower() == "changetimefrom":
            when = parse_net_datetime(value)
            if when.tzinfo is not None:  # compare in the emulator's naive UTC
                when = when.astimezone(UTC).replace(tzinfo=None)
            floor = when if floor is None else max(floor, when)
        else:
            raise ValueError(
                f"unknown $filter name {name!r} (expected {state_name} or ChangeTimeFrom)"
            )
    return ListFilter(frozenset(states) if states else None, floor)


def sort_key(value: object, ident: int) -> tuple[int, object, int]:
    """Ascending sort key. One property has one type, so values compare naturally; ``None``
    sorts last and strings compare case-insensitively. ``ident`` breaks ties."""
    if value is None:
        return (2, 0, ident)
    if isinstance(value, str):
        return (1, value.lower(), ident)
    if isinstance(value, list | tuple):
        return (1, ",".join(str(v) for v in value).lower(), ident)
    return (0, value, ident)


@dataclass(slots=True)
class _Entry(Generic[T]):
    owner: tuple[str, str, Hashable]
    remaining: list[T]
    page_size: int
    params: object
    last_used: float


class QueryStore(Generic[T]):
    """Continuation tokens of open list queries.

    Args:
        clock: monotonic seconds.
        ttl: seconds of inactivity after which a token expires (§2.8: 5 minutes).
        capacity: most open queries kept; the least recently used is dropped beyond it.
    """

    def __init__(
        self, clock: Callable[[], float], *, ttl: float = 300.0, capacity: int = 10_000
    ) -> None:
        self._clock = clock
        self._ttl = ttl
        self._capacity = capacity
        self._entries: OrderedDict[str, _Entry[T]] = OrderedDict()

    def __len__(self) -> int:
        self._expire()
        return len(self._entries)

    def _expire(self) -> None:
        now = self._clock()
        while self._entries:
            token, entry = next(iter(self._entries.items()))
            if now - entry.last_used < self._ttl:
                break
            del self._entries[token]

    def page(
        self,
        rows: Sequence[T],
        size: int,
        *,
        user: str,
        operation: str,
        scope: Hashable,
        params: object,
    ) -> tuple[list[T], str | None]:
        """First page of ``rows``; a token is returned only if rows remain after it."""
        head, rest = list(rows[:size]), list(rows[size:])
        if not rest:
            return head, None
        self._expire()
        token = secrets.token_urlsafe(18)
        entry = _Entry((user, operation, scope), rest, size, params, self._clock())
        self._entries[token] = entry
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
        return head, token

    def resume(
        self, token: str, *, user: str, operation: str, scope: Hashable
    ) -> tuple[list[T], str | None, object] | None:
        """The next page of the query behind ``token``, its next token and stored params.

        The page size and parameters are those of the first request (G22: changed ones are
        ignored). Returns ``None`` when the token is unknown, expired, or belongs to another
        user, operation or scope.
        """
        self._expire()
        entry = self._entries.get(token)
        if entry is None or entry.owner != (user, operation, scope):
            return None
        n = entry.page_size
        head, entry.remaining = entry.remaining[:n], entry.remaining[n:]
        if not entry.remaining:
            del self._entries[token]
            return head, None, entry.params
        entry.last_used = self._clock()
        self._entries.move_to_end(token)
        return head, token, entry.params
