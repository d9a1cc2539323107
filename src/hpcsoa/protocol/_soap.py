"""SOAP 1.2 envelopes of the SOA broker (spec §3.4, §3.5, §4.4, §4.6): encoders.

Envelopes use SOAP 1.2 (prefix ``s``) and WS-Addressing 1.0 (prefix ``a``); the HPC headers
live in ``http://www.microsoft.com/hpc`` and are written with their ``HPCServer2008_*`` names
(the decoders also accept ``HPCPack2008_*``). Several envelopes travel back to back inside one
array root element: ``HPCServer2008_WebAPI_MessageArray``.

Encoders build text from templates, not from an element tree, because the client encodes
one envelope per request. Every text value is checked for characters XML 1.0 cannot carry
(:class:`EncodeError` naming the field) and escaped. A body given as a string (``SoapRequest.body``,
the ``body`` argument of :func:`encode_soap_response`) is trusted to be well-formed XML; build
it with :func:`wcf_body` / :func:`wcf_reply_body`.

The incremental decoders live in ``_soap_stream`` and are re-exported here.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from .._exceptions import DecodeError, EncodeError
from ._models import END_OF_GET_RESPONSE_ACTION, EndOfResponses, SoaFault, SoapRequest
from ._soap_envelope import (
    ANONYMOUS,
    FAULT_ACTION,
    SESSION_FAULT_NAMESPACE,
    SESSION_FAULT_PREFIX,
)
from ._soap_stream import (
    DEFAULT_MAX_ENVELOPE_BYTES,
    SoapRequestArrayDecoder,
    SoapResponseDecoder,
)
from ._xml import (
    NS_HPC_HEADERS,
    NS_SOAP12,
    NS_WSA,
    check_xml_chars,
    escape_attr,
    local_name,
    parse_xml,
    xml_text,
)

__all__ = [
    "ANONYMOUS",
    "DEFAULT_MAX_ENVELOPE_BYTES",
    "FAULT_ACTION",
    "REQUEST_ARRAY_CLOSE",
    "REQUEST_ARRAY_OPEN",
    "RESPONSE_ARRAY_CLOSE",
    "RESPONSE_ARRAY_OPEN",
    "SoapRequestArrayDecoder",
    "SoapResponseDecoder",
    "encode_end_of_responses",
    "encode_request_array",
    "encode_soap_fault_response",
    "encode_soap_request",
    "encode_soap_response",
    "fault_action",
    "fault_body",
    "new_message_id",
    "parse_wcf_body",
    "wcf_body",
    "wcf_reply_body",
]

REQUEST_ARRAY_OPEN: Final = b"<HPCServer2008_WebAPI_MessageArray>"
REQUEST_ARRAY_CLOSE: Final = b"</HPCServer2008_WebAPI_MessageArray>"
RESPONSE_ARRAY_OPEN: Final = REQUEST_ARRAY_OPEN
RESPONSE_ARRAY_CLOSE: Final = REQUEST_ARRAY_CLOSE

_OPEN: Final = f'<s:Envelope xmlns:s="{NS_SOAP12}" xmlns:a="{NS_WSA}"><s:Header>'
_CLOSE: Final = "</s:Body></s:Envelope>"
_TO: Final = f'<a:To s:mustUnderstand="1">{ANONYMOUS}</a:To>'
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9._-]*")
_VARIANT: Final = "89ab"


def _hpc(name: str, value: str | None, field: str) -> str:
    """One ``HPCServer2008_*`` header element; empty values use the empty-element form."""
    if value is None:
        return ""
    if not value:
        return f'<HPCServer2008_{name} xmlns="{NS_HPC_HEADERS}"/>'
    return (
        f'<HPCServer2008_{name} xmlns="{NS_HPC_HEADERS}">'
        f"{xml_text(value, field)}</HPCServer2008_{name}>"
    )


def _namespace_attr(namespace: str) -> str:
    check_xml_chars(namespace, "namespace")
    return escape_attr(namespace)


def _encode(text: str, what: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError:
        raise EncodeError(f"{what} contains a lone surrogate (UTF-8 cannot encode it)") from None


def new_message_id() -> str:
    """A fresh WS-Addressing message id: ``urn:uuid:`` + a random (version 4) UUID.

    Same value space as ``"urn:uuid:" + str(uuid.uuid4())`` (16 bytes from ``os.urandom``,
    version and variant bits set), formatted directly: it is made once per request.
    """
    h = os.urandom(16).hex()
    return (
        f"urn:uuid:{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"
    )


@functools.lru_cache(maxsize=512)
def _check_name(name: str, what: str) -> None:
    # Cached: the same few operation and parameter names are checked for every request.
    if _NAME.fullmatch(name) is None:
        raise EncodeError(f"{what} {name!r} is not a plain XML element name")


@functools.lru_cache(maxsize=256)
def _wrapper(operation: str, namespace: str) -> tuple[str, str]:
    _check_name(operation, "operation")
    return f'<{operation} xmlns="{_namespace_attr(namespace)}">', f"</{operation}>"


def wcf_body(
    operation: str,
    params: Mapping[str, str] | Sequence[tuple[str, str]] = (),
    namespace: str = "http://tempuri.org/",
) -> str:
    """The WCF-wrapped request body: ``<Echo xmlns="http://tempuri.org/"><input>hello</input></Echo>``.

    Args:
        operation: the operation name (wrapper element).
        params: parameter name → string value, in order.
        namespace: the service contract namespace.

    Raises:
        EncodeError: a name is not a plain XML name, or a value has a character XML 1.0
            cannot represent.
    """
    start, end = _wrapper(operation, namespace)
    # Exact-type checks first: isinstance() against the Mapping ABC is comparatively slow.
    items = (
        params
        if type(params) is tuple or type(params) is list
        else params.items()
        if isinstance(params, Mapping)
        else params
    )
    parts = [start]
    for name, value in items:
        _check_name(name, "parameter name")
        parts.append(f"<{name}>{xml_text(value, name)}</{name}>")
    parts.append(end)
    return "".join(parts)


def wcf_reply_body(operation: str, result: str, namespace: str) -> str:
    """The WCF-wrapped reply: ``<EchoResponse xmlns=ns><EchoResult>…</EchoResult></EchoResponse>``.

    Raises:
        EncodeError: ``operation`` is not a plain XML name or ``result`` has a character
            XML 1.0 cannot represent.
    """
    _check_name(operation, "operation")
    ns = _namespace_attr(namespace)
    return (
        f'<{operation}Response xmlns="{ns}"><{operation}Result>'
        f"{xml_text(result, 'result')}</{operation}Result></{operation}Response>"
    )


def parse_wcf_body(body: str) -> tuple[str, str, list[tuple[str, str]]]:
    """Split a WCF-wrapped body into (operation, namespace, [(parameter, text), ...]).

    Names are local names; a parameter's text is all of its character data.

    Raises:
        DecodeError: the body is empty or not well-formed XML.
        UnsafeXMLError: the body has a DTD or entity declarations.
    """
    if not body.strip():
        raise DecodeError("empty SOAP body: expected a WCF-wrapped operation element")
    root = parse_xml(body, what="SOAP body")
    tag = root.tag
    namespace = tag[1:].rsplit("}", 1)[0] if tag.startswith("{") else ""
    params = [(local_name(child.tag), "".join(child.itertext())) for child in root]
    return local_name(tag), namespace, params


def encode_soap_request(req: SoapRequest) -> bytes:
    """One request envelope in the shape of spec §3.5 / §4.4.

    Headers, in order: ``a:Action`` (``s:mustUnderstand="1"``), ``a:MessageID`` (omitted when
    empty), then ``HPCServer2008_Broker_UserDataNS``, ``_ClientIdNS`` and
    ``_ClientInstanceIdNS`` when set. ``req.body`` is inserted as is.

    Raises:
        EncodeError: a header value has a character XML 1.0 cannot represent, or the body
            cannot be encoded as UTF-8.
    """
    message_id = (
        f"<a:MessageID>{xml_text(req.message_id, 'message_id')}</a:MessageID>"
        if req.message_id
        else ""
    )
    instance = req.client_instance_id
    text = (
        f'{_OPEN}<a:Action s:mustUnderstand="1">{xml_text(req.action, "action")}</a:Action>'
        f"{message_id}"
        f"{_hpc('Broker_UserDataNS', req.user_data, 'user_data')}"
        f"{_hpc('Broker_ClientIdNS', req.client_id, 'client_id')}"
        f"{_hpc('Broker_ClientInstanceIdNS', None if instance is None else str(instance), '')}"
        f"</s:Header><s:Body>{req.body}{_CLOSE}"
    )
    return _encode(text, "SOAP request")


def encode_request_array(envelopes: Iterable[bytes]) -> bytes:
    """A Send Requests body: envelopes back to back inside ``HPCServer2008_WebAPI_MessageArray``."""
    return REQUEST_ARRAY_OPEN + b"".join(envelopes) + REQUEST_ARRAY_CLOSE


def _response_envelope(
    action: str,
    relates_to: str | None,
    request_action: str | None,
    user_data: str | None,
    callback_id: str | None,
    body: str,
) -> bytes:
    relates = (
        f"<a:RelatesTo>{xml_text(relates_to, 'relates_to')}</a:RelatesTo>"
        if relates_to is not None
        else ""
    )
    text = (
        f'{_OPEN}<a:Action s:mustUnderstand="1">{xml_text(action, "action")}</a:Action>'
        f"{relates}{_TO}"
        f"{_hpc('Broker_RequestActionNS', request_action, 'request_action')}"
        f"{_hpc('Broker_UserDataNS', user_data, 'user_data')}"
        f"{_hpc('Broker_ResponseCallbackId', callback_id or '', 'callback_id')}"
        f"</s:Header><s:Body>{body}{_CLOSE}"
    )
    return _encode(text, "SOAP response")


def encode_soap_response(
    *,
    action: str,
    relates_to: str | None = None,
    request_action: str | None = None,
    user_data: str | None = None,
    callback_id: str | None = "",
    body: str,
) -> bytes:
    """One Get Responses envelope exactly as the spec §4.6 example (emulator side).

    Headers, in order: ``a:Action``, ``a:RelatesTo`` (when given), ``a:To`` (anonymous),
    ``HPCServer2008_Broker_RequestActionNS`` and ``_UserDataNS`` (when given) and
    ``_ResponseCallbackId`` (always; the empty-element form when ``callback_id`` is empty).

    Raises:
        EncodeError: a header value has a character XML 1.0 cannot represent.
    """
    return _response_envelope(action, relates_to, request_action, user_data, callback_id, body)


def fault_body(fault: SoaFault) -> str:
    """The ``s:Fault`` element for ``fault`` (SOAP 1.2 Code/Reason, §3.4 detail).

    ``SessionFault`` and ``RetryOperationError`` get a detail element in
    ``http://hpc.microsoft.com/session/``; its members are ``fault.detail`` when given, else
    ``Code`` (the numeric code) and ``Reason`` for SessionFault and ``Reason`` for
    RetryOperationError. Other kinds get a detail element only when ``fault.detail`` is set
    (never for the plain kind ``"Fault"``).

    Raises:
        EncodeError: a name is not a plain XML name or a text has a character XML 1.0 cannot
            represent.
    """
    code = fault.code or "Receiver"
    if ":" not in code:
        code = f"s:{code}"
    members = list(fault.detail)
    if not members:
        if fault.kind == "SessionFault":
            members = [("Code", str(fault.numeric_code or 0)), ("Reason", fault.reason)]
        elif fault.kind == "RetryOperationError":
            members = [("Reason", fault.reason)]
    detail = ""
    if members and fault.kind != "Fault":
        _check_name(fault.kind, "fault kind")
        inner = []
        for name, value in members:
            _check_name(name, "fault detail member")
            inner.append(f"<{name}>{xml_text(value, name)}</{name}>")
        detail = (
            f'<s:Detail><{fault.kind} xmlns="{SESSION_FAULT_NAMESPACE}">'
            f"{''.join(inner)}</{fault.kind}></s:Detail>"
        )
    return (
        f"<s:Fault><s:Code><s:Value>{xml_text(code, 'code')}</s:Value></s:Code>"
        f'<s:Reason><s:Text xml:lang="en-US">{xml_text(fault.reason, "reason")}</s:Text>'
        f"</s:Reason>{detail}</s:Fault>"
    )


def fault_action(kind: str) -> str:
    """The WS-Addressing action of a fault: ``http://hpc.microsoft.com/session/<kind>``.

    The plain kind ``"Fault"`` uses the WS-Addressing default fault action.
    """
    return FAULT_ACTION if kind == "Fault" else SESSION_FAULT_PREFIX + kind


def encode_soap_fault_response(
    *,
    fault: SoaFault,
    relates_to: str | None = None,
    request_action: str | None = None,
    user_data: str | None = None,
    callback_id: str | None = "",
) -> bytes:
    """A failed request in the Get Responses stream: an ``s:Fault`` envelope (emulator side).

    The action is ``http://hpc.microsoft.com/session/<kind>`` (see :func:`fault_action`);
    ``RelatesTo`` and the user data are preserved like a normal response (spec §4.6).

    Raises:
        EncodeError: see :func:`fault_body`.
    """
    body = fault_body(fault)
    action = fault_action(fault.kind)
    return _response_envelope(action, relates_to, request_action, user_data, callback_id, body)


def encode_end_of_responses(eor: EndOfResponses, callback_id: str = "") -> bytes:
    """The end-of-responses envelope of spec §4.6 (``Count`` and ``Reason``).

    Raises:
        EncodeError: ``eor.count`` is negative or ``callback_id`` has a character XML 1.0
            cannot represent.
    """
    if eor.count < 0:
        raise EncodeError(f"EndOfResponses count must not be negative, got {eor.count}")
    return _encode(
        f'{_OPEN}<a:Action s:mustUnderstand="1">{END_OF_GET_RESPONSE_ACTION}</a:Action>'
        f"{_hpc('Broker_ResponseCallbackId', callback_id, 'callback_id')}{_TO}"
        '</s:Header><s:Body><EndOfResponses xmlns="http://tempuri.org/">'
        f"<Count>{eor.count}</Count><Reason>{eor.reason.wire_name}</Reason>"
        f"</EndOfResponses>{_CLOSE}",
        "EndOfResponses",
    )
