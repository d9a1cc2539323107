"""What users put into a batch and get back: ``Request``, ``Response``, ``MapResult``.

Generic services take and return plain ``str``; typed (SOAP) services take a :class:`Request`
(action + body XML) and return a :class:`Response` with the reply body and the text of its
``{Operation}Result`` element. A failed request comes back as a response whose ``fault`` is set:
one bad request never stops the others. ``raise_for_fault()`` turns it into an exception for
those who prefer that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from .._exceptions import RequestFault
from ..protocol import (
    GENERIC_REPLY_ACTION,
    GenericResponse,
    ResponseFields,
    SoaFault,
    SoapResponse,
)

__all__ = ["DEFAULT_CONTRACT", "DEFAULT_NAMESPACE", "MapResult", "Request", "Response"]

DEFAULT_CONTRACT: Final = "IEchoSvc"
DEFAULT_NAMESPACE: Final = "http://tempuri.org/"


def wcf_action(operation: str, *, contract: str, namespace: str) -> str:
    """The WCF default action ``{namespace}/{contract}/{operation}`` (spec §3.4)."""
    base = namespace if namespace.endswith("/") else namespace + "/"
    return f"{base}{contract}/{operation}"


def _xml_value(value: Any) -> str:
    """DataContract text of a parameter: booleans as ``true``/``false``, others via ``str``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


@dataclass(frozen=True, slots=True)
class Request:
    """One typed (SOAP) request.

    Args:
        action: the WS-Addressing action, e.g. ``http://tempuri.org/IEchoSvc/Echo``.
        body: the XML inside ``s:Body`` (the WCF-wrapped operation element).
        user_data: correlation string echoed on the response. When ``None`` the batch assigns
            the request's position in the batch (a decimal number).
        message_id: ``urn:uuid:...``; when ``None`` the batch assigns one. It is kept across
            retries, which lets the broker drop duplicates (spec §3.3).
    """

    action: str
    body: str
    user_data: str | None = None
    message_id: str | None = None

    @classmethod
    def wcf(
        cls,
        operation: str,
        params: Mapping[str, Any] | Sequence[tuple[str, Any]] = (),
        *,
        contract: str = DEFAULT_CONTRACT,
        namespace: str = DEFAULT_NAMESPACE,
        user_data: str | None = None,
        message_id: str | None = None,
    ) -> Request:
        """A request for a WCF operation with the default message shape.

        ``Request.wcf("Echo", {"input": "hi"})`` builds action
        ``http://tempuri.org/IEchoSvc/Echo`` and body
        ``<Echo xmlns="http://tempuri.org/"><input>hi</input></Echo>``.

        Args:
            operation: the operation name (also the wrapper element's name).
            params: parameters in order, name → value (``str``, ``int``, ``float``, ``bool``).
            contract: the service contract name.
            namespace: the contract namespace.

        Raises:
            EncodeError: a name or value cannot be written as XML.
        """
        from ..protocol._soap import wcf_body

        items = params.items() if isinstance(params, Mapping) else params
        texts = [(name, _xml_value(value)) for name, value in items]
        return cls(
            wcf_action(operation, contract=contract, namespace=namespace),
            wcf_body(operation, texts, namespace),
            user_data=user_data,
            message_id=message_id,
        )


_GENERIC_REPLY: Final = GENERIC_REPLY_ACTION


def _generic_fault(action: str, output: str) -> SoaFault:
    kind = action.rstrip("/").rsplit("/", 1)[-1] or "Fault"
    return SoaFault(kind=kind, reason=output)


Record = ResponseFields | SoapResponse | GenericResponse
"""A decoded response record: generic ``(action, output, user_data)``, SOAP, or the model."""


class Response:
    """One response read from a batch (a read-only view of the decoded wire record).

    Attributes:
        output: the generic service's output, or the text of a SOAP reply's
            ``{Operation}Result`` element (``None`` for a fault or another body shape).
        body: the SOAP reply's ``s:Body`` content as XML (``None`` in generic mode).
        user_data: the request's user data as echoed by the broker.
        action: the reply action (or the fault action).
        message_id: the request's ``MessageID`` (from ``RelatesTo``; SOAP only).
        fault: the fault (kind, code, reason) when the request failed, else ``None``.
    """

    # One slot: responses are made per message on the hot path, so the fields are read
    # from the decoded record on access rather than copied. Generic records are plain
    # (action, output, user_data) tuples, which the garbage collector stops tracking.
    __slots__ = ("_event",)

    def __init__(self, event: Record) -> None:
        if type(event) is GenericResponse:
            event = (event.action, event.output, event.user_data)
        self._event = event

    @property
    def output(self) -> str | None:
        e = self._event
        if type(e) is tuple:
            return e[1] if e[0] == _GENERIC_REPLY else None
        assert isinstance(e, SoapResponse)
        return e.result if e.fault is None else None

    @property
    def body(self) -> str | None:
        e = self._event
        return e.body if isinstance(e, SoapResponse) else None

    @property
    def user_data(self) -> str | None:
        e = self._event
        return e[2] if type(e) is tuple else e.user_data  # type: ignore[union-attr]

    @property
    def action(self) -> str:
        e = self._event
        return e[0] if type(e) is tuple else e.action  # type: ignore[union-attr]

    @property
    def message_id(self) -> str | None:
        e = self._event
        return e.relates_to if isinstance(e, SoapResponse) else None

    @property
    def fault(self) -> SoaFault | None:
        e = self._event
        if type(e) is tuple:
            return None if e[0] == _GENERIC_REPLY else _generic_fault(e[0], e[1])
        assert isinstance(e, SoapResponse)
        return e.fault

    @property
    def ok(self) -> bool:
        """``True`` unless the request failed."""
        e = self._event
        if type(e) is tuple:
            return e[0] == _GENERIC_REPLY
        assert isinstance(e, SoapResponse)
        return e.fault is None

    def raise_for_fault(self) -> Response:
        """Return ``self``, or raise :class:`~hpcsoa.RequestFault` if the request failed."""
        fault = self.fault
        if fault is not None:
            raise RequestFault(fault, user_data=self.user_data, message_id=self.message_id)
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Response):
            return NotImplemented
        return self._event == other._event

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fault = self.fault
        if fault is not None:
            what = f"fault={fault.kind}:{fault.reason[:60]!r}"
        else:
            what = f"output={(self.output or '')[:60]!r}"
        return f"<Response user_data={self.user_data!r} {what}>"


MapRecord = ResponseFields | SoapResponse
"""What a map result was decoded from: generic ``(action, output, user_data)`` or SOAP."""


class MapResult:
    """One result of ``session.map``: exactly one per input.

    Attributes:
        index: position of the input (0-based).
        input: the input itself (``str`` or :class:`Request`).
        latency: seconds from the request being queued for sending to its response arriving.
            The clock is read once per send chunk and once per received chunk (not per
            request, which would cost more than the rest of the bookkeeping), so requests
            that travelled together share a value.
        response: the full :class:`Response` (``output``, ``fault``, ``user_data``, ...).
    """

    # The record is kept as decoded (a tuple of three strings in generic mode): one object
    # per result, made when the result is handed out.
    __slots__ = ("_record", "index", "input", "latency")

    index: int
    input: Any
    latency: float

    def __init__(self, index: int, input: Any, latency: float, record: MapRecord) -> None:
        self.index = index
        self.input = input
        self.latency = latency
        self._record = record

    @property
    def response(self) -> Response:
        return Response(self._record)

    @property
    def output(self) -> str | None:
        """The output (``None`` when the request failed)."""
        record = self._record
        if type(record) is tuple:
            return record[1] if record[0] == _GENERIC_REPLY else None
        return self.response.output

    @property
    def user_data(self) -> str | None:
        """The request's user data as echoed by the broker."""
        record = self._record
        return record[2] if type(record) is tuple else record.user_data  # type: ignore[union-attr]

    @property
    def fault(self) -> SoaFault | None:
        """The fault (kind, code, reason) when the request failed, else ``None``."""
        return self.response.fault

    @property
    def ok(self) -> bool:
        """``True`` unless the request failed."""
        record = self._record
        if type(record) is tuple:
            return record[0] == _GENERIC_REPLY
        return record.fault is None  # type: ignore[union-attr]

    def raise_for_fault(self) -> MapResult:
        """Return ``self``, or raise :class:`~hpcsoa.RequestFault` if the request failed."""
        self.response.raise_for_fault()
        return self

    def __repr__(self) -> str:
        what = "ok" if self.ok else f"fault={self.fault.kind if self.fault else '?'}"
        return f"<MapResult index={self.index} {what} output={(self.output or '')[:60]!r}>"
