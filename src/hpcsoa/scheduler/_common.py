"""Helpers shared by the scheduler APIs: property arguments, list queries, pagers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, TypeVar

from .._config import USE_DEFAULT
from .._exceptions import EncodeError
from .._paging import AsyncPager
from ..protocol import ApiVersion, Operation
from ..protocol._catalog import Catalog, WireEnum, to_wire
from ..protocol._datacontract import (
    decode_object_array,
    decode_property_array,
    encode_property_array,
)
from ..protocol._paging import continuation_token, with_continuation

if TYPE_CHECKING:
    from ..transport._requester import Requester

__all__ = [
    "FILTER_API_VERSION",
    "XML",
    "encode_props",
    "filter_query",
    "get_bag",
    "name_value_body",
    "pager",
    "properties_query",
    "version_at_least",
]

XML: Final = "application/xml; charset=utf-8"
FILTER_API_VERSION: Final = "2012-11-01.4.0"  # $filter needs 2012-11-01 (§7.4)

T = TypeVar("T")


def encode_props(
    catalog: Catalog,
    column: str,
    values: Mapping[str, object],
    *,
    what: str,
) -> list[tuple[str, str | None]]:
    """Validate ``values`` (REST or snake_case names) and turn them into wire pairs.

    ``None`` values are skipped. ``column`` is ``create``, ``submit`` or ``set``.

    Raises:
        EncodeError: an unknown or read-only property, or a value of the wrong type. The
            message names the property, never its value (it may be a password).
    """
    out: list[tuple[str, str | None]] = []
    for name, value in values.items():
        if value is None:
            continue
        spec = catalog.lookup(name)
        if spec is None:
            raise EncodeError(f"{what}: {name!r} is not a {catalog.kind} property (spec §A)")
        if not getattr(spec, column):
            raise EncodeError(f"{what}: the {catalog.kind} property {spec.name} cannot be set here")
        try:
            out.append((spec.name, to_wire(spec, value)))
        except ValueError as exc:
            if spec.name == "Password":
                raise EncodeError(f"{what}: invalid Password value") from None
            raise EncodeError(f"{what}: {exc}") from None
    return out


def properties_query(properties: Sequence[str] | str | None) -> list[tuple[str, str]]:
    """``[("Properties", "A,B")]`` or ``[]``."""
    if properties is None:
        return []
    names = [properties] if isinstance(properties, str) else list(properties)
    return [("Properties", ",".join(n.strip() for n in names))] if names else []


def version_at_least(version: str, date: str) -> bool:
    try:
        return ApiVersion.parse(version).at_least(date)
    except ValueError:
        return False


def filter_query(
    state_name: str,
    enum_cls: type[WireEnum],
    state: WireEnum | str | int | Iterable[WireEnum | str | int] | None,
    changed_since: datetime | None,
) -> list[tuple[str, str]]:
    """``$filter`` + ``Render=RestPropRender`` for a state and/or change-time filter (§7.4)."""
    clauses: list[str] = []
    if state is not None:
        states = [state] if isinstance(state, WireEnum | str | int) else list(state)
        for s in states:
            try:
                member = enum_cls.parse(str(s))  # a member's str() is its wire name
            except ValueError as exc:
                raise EncodeError(f"invalid {state_name} filter: {exc}") from None
            clauses.append(f"{state_name} eq {member.wire_name}")
    if changed_since is not None:
        if changed_since.tzinfo is not None:  # an aware time goes out as UTC
            changed_since = changed_since.astimezone(UTC).replace(tzinfo=None)
        clauses.append(f"ChangeTimeFrom eq {changed_since:%m/%d/%Y %H:%M:%S}")
    if not clauses:
        return []
    return [("$filter", " and ".join(clauses)), ("Render", "RestPropRender")]


def name_value_body(values: Mapping[str, str | None]) -> bytes:
    """An ``ArrayOfProperty`` body of free-form name/value pairs (custom props, env)."""
    return encode_property_array((str(k), None if v is None else str(v)) for k, v in values.items())


def pager(
    requester: Requester,
    operation: Operation,
    *,
    path_params: Mapping[str, str | int] | None,
    query: list[tuple[str, str]],
    build: Callable[[list[tuple[str, str | None]]], T],
    api_version: str | None = None,
) -> AsyncPager[T]:
    """An :class:`AsyncPager` over a list operation that follows ``x-ms-continuation-QueryId``.

    Every page repeats the original query and adds ``QueryId`` (§2.8).
    """

    async def fetch(token: str | None) -> tuple[str | None, list[T]]:
        resp = await requester.call(
            operation,
            path_params=path_params,
            query=with_continuation(query, token),
            accept="application/xml",
            api_version=USE_DEFAULT if api_version is None else api_version,
        )
        items = [build(obj) for obj in decode_object_array(resp.body)]
        return continuation_token(resp.headers), items

    return AsyncPager(fetch)


def list_pager(
    requester: Requester,
    operation: Operation,
    *,
    path_params: Mapping[str, str | int] | None,
    query: list[tuple[str, str]],
    filt: list[tuple[str, str]],
    sort: tuple[str, str | None],
    page_size: int | None,
    build: Callable[[list[tuple[str, str | None]]], T],
) -> AsyncPager[T]:
    """The shared tail of Get Job/Task/Node List: ``$filter``, sort, ``RowsPerRead``.

    ``sort`` is (``SortJobsBy``-style parameter, property or ``None``). A ``$filter`` needs
    ``api-version`` ≥ 2012-11-01 (§2.3), so that call is sent with it when the client's
    configured version is older.
    """
    query = query + filt
    sort_param, sort_by = sort
    if sort_by is not None:
        query.append((sort_param, sort_by))
    if page_size is not None:
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        query.append(("RowsPerRead", str(page_size)))
    version = None
    if filt and not version_at_least(requester.api_version, "2012-11-01"):
        version = FILTER_API_VERSION
    return pager(
        requester, operation, path_params=path_params, query=query, build=build, api_version=version
    )


async def get_bag(
    requester: Requester,
    operation: Operation,
    path_params: Mapping[str, str | int],
    query: list[tuple[str, str]] | None = None,
) -> list[tuple[str, str | None]]:
    """One ``ArrayOfProperty`` GET, decoded."""
    resp = await requester.call(
        operation, path_params=path_params, query=query or [], accept="application/xml"
    )
    return decode_property_array(resp.body)
