"""What every emulator handler receives and returns: ``RequestContext``, ``FaultError``, helpers.

A handler is ``async def handler(ctx: RequestContext) -> web.StreamResponse``. By the time it
runs, the app has matched the route (both URI forms, §2.1–§2.2), checked the cluster segment,
authenticated the user (§2.4) and validated ``api-version`` (§2.3). To fail, a handler raises
:class:`FaultError`; the app renders it in the format the operation calls for (§2.7):

* SOA operations: JSON when the request has ``Accept: application/json``, else
  ``HpcWebServiceFault`` XML;
* cluster / node operations: ``HpcWebServiceFault`` XML always;
* scheduler operations: ``HpcWebServiceFault`` XML when ``api-version`` ≥ ``2011-11-01`` and no
  ``CCP_Version`` header, else the legacy ``<string>`` body.

This module is the stable contract between the app and the handlers of both halves
(SOA and scheduler); keep it small.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, TypeAlias

from aiohttp import web

from .._exceptions import EncodeError
from ..protocol import ApiVersion, Operation, WebServiceFault, query_lookup
from ..protocol._datacontract import encode_fault_json, encode_fault_xml, encode_legacy_fault
from ..protocol._routes import Family, Route

if TYPE_CHECKING:
    from ._config import EmulatorConfig
    from ._faults import FaultDecision
    from ._state import EmulatorState

__all__ = [
    "CT_JSON",
    "CT_OCTET",
    "CT_XML",
    "ErrorFormat",
    "FaultError",
    "Handler",
    "RequestContext",
    "empty_response",
    "error_format_for",
    "fault_response",
    "json_response",
    "wants_json",
    "xml_response",
]

CT_XML: Final = "application/xml; charset=utf-8"
CT_JSON: Final = "application/json; charset=utf-8"
CT_OCTET: Final = "application/octet-stream"

# ``ArgumentError`` (§3.7): the .NET client turns it into ArgumentException(Message).
ARGUMENT_ERROR: Final = 0x0F00FFFF
UNKNOWN_ERROR: Final = 0x0F000000


class FaultError(Exception):
    """Raised by a handler to answer with an error status and a fault body.

    Args:
        status: the HTTP status (400, 403, 404, ...).
        code: the fault ``Code`` (an SOA code of §3.7 or an HRESULT-like scheduler code).
        message: the fault ``Message`` (may hold ``{0}`` placeholders filled from ``values``).
        values: optional ``(key, value)`` pairs for ``Values``.
        headers: extra response headers (e.g. ``Retry-After``).
    """

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        values: Sequence[tuple[str, str]] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.values = tuple(values) if values is not None else None
        self.headers = dict(headers or {})

    def to_fault(self) -> WebServiceFault:
        return WebServiceFault(code=self.code, message=self.message, values=self.values)


class ErrorFormat(enum.Enum):
    """The three error-body forms of §2.7."""

    JSON = "json"
    FAULT_XML = "fault-xml"
    LEGACY = "legacy"


def wants_json(accept: str | None) -> bool:
    """True when ``Accept`` prefers ``application/json`` over ``application/xml``.

    The first of the two media types named in the header wins; neither → XML (the default).
    """
    if not accept:
        return False
    for part in accept.split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media in ("application/json", "text/json"):
            return True
        if media in ("application/xml", "text/xml"):
            return False
    return False


def error_format_for(
    family: Family | None,
    *,
    accept_json: bool,
    api_version: ApiVersion | None,
    has_api_version: bool,
    ccp_version: bool,
) -> ErrorFormat:
    """Pick the error body form for an operation family (spec §2.7, G13).

    ``has_api_version`` is true when an ``api-version`` was sent, even if unparseable.
    """
    if family is Family.SCHEDULER:
        if ccp_version or not has_api_version:
            return ErrorFormat.LEGACY
        if api_version is not None and not api_version.at_least("2011-11-01"):
            return ErrorFormat.LEGACY
        return ErrorFormat.FAULT_XML
    if family is Family.CLUSTER:
        return ErrorFormat.FAULT_XML
    return ErrorFormat.JSON if accept_json else ErrorFormat.FAULT_XML


def xml_response(body: bytes | str, status: int = 200) -> web.Response:
    """An ``application/xml; charset=utf-8`` response."""
    data = body.encode() if isinstance(body, str) else body
    return web.Response(status=status, body=data, headers={"Content-Type": CT_XML})


def json_response(body: bytes, status: int = 200) -> web.Response:
    """An ``application/json; charset=utf-8`` response (``body`` is already-encoded JSON)."""
    return web.Response(status=status, body=body, headers={"Content-Type": CT_JSON})


def empty_response(status: int = 200) -> web.Response:
    """A response without a body (``Content-Length: 0``)."""
    return web.Response(status=status)


def fault_response(error: FaultError, fmt: ErrorFormat) -> web.Response:
    """Render ``error`` in ``fmt``; never raises (unencodable text is replaced)."""
    fault = error.to_fault()
    try:
        body, ctype = _encode_fault(fault, fmt)
    except EncodeError:
        safe = WebServiceFault(code=fault.code, message=_printable(fault.message), values=None)
        body, ctype = _encode_fault(safe, fmt)
    return web.Response(
        status=error.status, body=body, headers={**error.headers, "Content-Type": ctype}
    )


def _encode_fault(fault: WebServiceFault, fmt: ErrorFormat) -> tuple[bytes, str]:
    if fmt is ErrorFormat.JSON:
        return encode_fault_json(fault), CT_JSON
    if fmt is ErrorFormat.LEGACY:
        return encode_legacy_fault(fault.formatted_message()), CT_XML
    return encode_fault_xml(fault), CT_XML


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF else "?" for c in text)


@dataclass(slots=True, eq=False)
class RequestContext:
    """One authenticated, routed request, as handlers see it.

    Attributes:
        request: the aiohttp request (headers, transport, ``request.app``).
        operation: the matched operation; ``route`` its table row (family, method...).
        params: path values (percent-decoded, case kept), e.g. ``{"session_id": "7"}``.
        query: query parameters in order, names and values decoded.
        user: the authenticated user name (as configured, e.g. ``HPCLAB\\alice``).
        api_version: the parsed ``api-version`` (header wins over query) or ``None``.
        accept_json: ``Accept`` prefers JSON (SOA bodies and SOA error bodies only).
        error_format: how a :class:`FaultError` from this handler will be rendered.
        state: the shared ``EmulatorState``; ``config`` its ``EmulatorConfig``.
        fault: the fault-plan decision for this request when a stream-level action
            (truncate / garble / duplicate / abort after) applies; ``None`` normally.
    """

    request: web.Request
    operation: Operation
    route: Route
    params: Mapping[str, str]
    query: list[tuple[str, str]]
    user: str
    api_version: ApiVersion | None
    accept_json: bool
    error_format: ErrorFormat
    state: EmulatorState
    config: EmulatorConfig
    fault: FaultDecision | None = None
    _body: bytes | None = field(default=None, repr=False)

    def q(self, name: str) -> str | None:
        """The first value of query parameter ``name`` (matched case-insensitively, §2.2)."""
        return query_lookup(self.query, name)

    async def body(self) -> bytes:
        """The whole request body (read once, then cached)."""
        if self._body is None:
            self._body = await self.request.read()
        return self._body

    def fault_response(self, error: FaultError) -> web.Response:
        """Render ``error`` in this request's error format."""
        return fault_response(error, self.error_format)


Handler: TypeAlias = Callable[[RequestContext], Awaitable[web.StreamResponse]]
