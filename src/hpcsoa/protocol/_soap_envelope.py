"""One SOAP envelope → ``SoapRequest`` / ``SoapResponse`` / ``EndOfResponses`` (spec §3.5, §4.6).

Two paths, which must give identical results (the tests run the same envelopes through both):

* **fast** (``_soap_fast``): the canonical shape that our encoders and the real broker emit is
  matched by one precompiled regular expression over the decoded envelope text.
* **full** (here): anything else (other prefixes, comments, CDATA, attributes, faults, other
  header orders, ``HPCPack2008_*`` names) goes through expat, fed incrementally in the scope of
  the array root's start tag, with namespace processing and DTDs refused. This path is also
  the arbiter of well-formedness.

``body`` is the source text of the ``s:Body``'s first element, so it is byte-for-byte what was
on the wire; namespace declarations it relies on from outside (e.g. the envelope's ``s``
prefix on an ``s:Fault``) are copied onto its start tag so that it stands alone. Both paths
hand the raw field strings to the same builders, which strip URIs and convert numbers.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any, Final
from xml.parsers import expat

from .._exceptions import DecodeError, UnsafeXMLError
from ._generic import _twin_class
from ._models import (
    END_OF_GET_RESPONSE_ACTION,
    EndOfResponses,
    EndOfResponsesReason,
    SoaFault,
    SoapRequest,
    SoapResponse,
)
from ._xml import NS_HPC_HEADERS, NS_SOAP12, NS_WSA, NS_XSI, escape_attr, local_name

__all__ = [
    "ANONYMOUS",
    "CANONICAL_START",
    "CLOSE_PREFIX",
    "FAULT_ACTION",
    "HEADER_KEYS",
    "SESSION_FAULT_NAMESPACE",
    "SESSION_FAULT_PREFIX",
    "EnvelopeParser",
    "build_end",
    "build_request",
    "build_response",
    "request_from_tree",
    "response_from_tree",
]

ANONYMOUS: Final = "http://www.w3.org/2005/08/addressing/anonymous"
FAULT_ACTION: Final = "http://www.w3.org/2005/08/addressing/soap/fault"
SESSION_FAULT_PREFIX: Final = "http://hpc.microsoft.com/session/"
SESSION_FAULT_NAMESPACE: Final = "http://hpc.microsoft.com/session/"

CANONICAL_START: Final = f'<s:Envelope xmlns:s="{NS_SOAP12}" xmlns:a="{NS_WSA}">'.encode()
CLOSE_PREFIX: Final = b"</s:Envelope"

_REASONS: Final = {r.wire_name: r for r in EndOfResponsesReason}
_INT: Final = re.compile(r"[+-]?[0-9]{1,10}")
_COUNT: Final = re.compile(r"[0-9]{1,18}")

# --- builders shared by both paths ---------------------------------------------------------------

_REQUEST_TWIN: Final = (
    _twin_class(SoapRequest, ("a", "b", "m", "u", "c", 1))
    if SoapRequest.__slots__
    == ("action", "body", "message_id", "user_data", "client_id", "client_instance_id")
    else None
)
_RESPONSE_TWIN: Final = (
    _twin_class(SoapResponse, ("a", "r", "q", "u", "c", "b", "x", None))
    if SoapResponse.__slots__
    == (
        "action",
        "relates_to",
        "request_action",
        "user_data",
        "callback_id",
        "body",
        "result",
        "fault",
    )
    else None
)


def _int32(text: str, what: str) -> int:
    text = text.strip()
    if _INT.fullmatch(text) is None or not -(2**31) <= (value := int(text)) < 2**31:
        raise DecodeError(f"{what} is not a 32-bit integer: {text!r:.40}")
    return value


def build_request(
    action: str,
    message_id: str | None,
    user_data: str | None,
    client_id: str | None,
    instance: str | None,
    body: str,
) -> SoapRequest:
    """A ``SoapRequest`` from raw (unescaped) header texts; see the module docstring."""
    instance_id = None if instance is None else _int32(instance, "ClientInstanceIdNS")
    mid = "" if message_id is None else message_id.strip()
    twin = _REQUEST_TWIN
    if twin is None:  # pragma: no cover - only if the model's layout changes
        return SoapRequest(action.strip(), body, mid, user_data, client_id, instance_id)
    obj: Any = twin()
    obj.action = action.strip()
    obj.body = body
    obj.message_id = mid
    obj.user_data = user_data
    obj.client_id = client_id
    obj.client_instance_id = instance_id
    obj.__class__ = SoapRequest
    return obj  # type: ignore[no-any-return]


def build_response(
    action: str,
    relates_to: str | None,
    request_action: str | None,
    user_data: str | None,
    callback_id: str | None,
    body: str,
    result: str | None,
    fault: SoaFault | None,
) -> SoapResponse:
    """A ``SoapResponse`` from raw (unescaped) header texts; see the module docstring."""
    action = action.strip()
    if relates_to is not None:
        relates_to = relates_to.strip()
    if request_action is not None:
        request_action = request_action.strip()
    twin = _RESPONSE_TWIN
    if twin is None:  # pragma: no cover - only if the model's layout changes
        return SoapResponse(
            action, relates_to, request_action, user_data, callback_id, body, result, fault
        )
    obj: Any = twin()
    obj.action = action
    obj.relates_to = relates_to
    obj.request_action = request_action
    obj.user_data = user_data
    obj.callback_id = callback_id
    obj.body = body
    obj.result = result
    obj.fault = fault
    obj.__class__ = SoapResponse
    return obj  # type: ignore[no-any-return]


def build_end(count: str | None, reason: str | None) -> EndOfResponses:
    """``EndOfResponses`` from the raw ``Count`` / ``Reason`` texts.

    Raises:
        DecodeError: a member is missing, the count is not a decimal integer, or the reason
            is not ``Success``, ``ClientPurged`` or ``ClientTimeout``.
    """
    if count is None or reason is None:
        raise DecodeError("EndOfResponses without Count and Reason")
    count = count.strip()
    if _COUNT.fullmatch(count) is None:
        raise DecodeError(f"EndOfResponses Count is not a decimal integer: {count!r:.40}")
    wire_reason = _REASONS.get(reason.strip())
    if wire_reason is None:
        raise DecodeError(
            f"EndOfResponses Reason {reason.strip()!r:.40} is not Success, ClientPurged or "
            "ClientTimeout"
        )
    return EndOfResponses(int(count), wire_reason)


def _fault_kind(action: str) -> str:
    if action.startswith(SESSION_FAULT_PREFIX):
        kind = action[len(SESSION_FAULT_PREFIX) :]
        if kind and "/" not in kind:
            return kind
    return "Fault"


# --- full path -----------------------------------------------------------------------------------

_ENVELOPE_TAG: Final = f"{{{NS_SOAP12}}}Envelope"
_HEADER_TAG: Final = f"{{{NS_SOAP12}}}Header"
_BODY_TAG: Final = f"{{{NS_SOAP12}}}Body"
_FAULT_TAG: Final = f"{{{NS_SOAP12}}}Fault"
_XSI_NIL: Final = f"{{{NS_XSI}}}nil"
# Header element (Clark name) → field; the first occurrence of each wins, others are ignored.
HEADER_KEYS: Final = {
    f"{{{NS_WSA}}}Action": "action",
    f"{{{NS_WSA}}}MessageID": "message_id",
    f"{{{NS_WSA}}}RelatesTo": "relates_to",
    **{
        f"{{{NS_HPC_HEADERS}}}{brand}_Broker_{name}": key
        for brand in ("HPCServer2008", "HPCPack2008")
        for name, key in (
            ("UserDataNS", "user_data"),
            ("ClientIdNS", "client_id"),
            ("ClientInstanceIdNS", "client_instance_id"),
            ("RequestActionNS", "request_action"),
            ("ResponseCallbackId", "callback_id"),
        )
    },
}
# A complete start tag (attribute values may contain '>'); possessive, so never backtracks.
_START_TAG: Final = re.compile(
    rb"""<[^\s/>]++(?:\s++[^\s=/>]++\s*+=\s*+(?:"[^"]*+"|'[^']*+'))*+\s*+/?>"""
)
_TAG_NAME: Final = re.compile(rb"<[^\s/>]++")
_BODY_DEPTH: Final = 4  # root = 1, envelope = 2, header/body = 3, body content = 4


class _Done(Exception):
    """Raised from the end handler to stop expat right after the envelope's end tag."""


# expat joins namespace, local name and prefix with this; it cannot occur in XML 1.0 text,
# unlike ElementTree's "}" (which a namespace URI may contain).
_SEP: Final = "\x01"


def _clark(name: str) -> str:
    """expat's ``uri\x01local\x01prefix`` → ElementTree's ``{uri}local``."""
    parts = name.split(_SEP)
    return name if len(parts) == 1 else f"{{{parts[0]}}}{parts[1]}"


def _refuse(*_args: object) -> None:
    raise UnsafeXMLError("XML with DTD or entity declarations is rejected")


class EnvelopeParser:
    """Parses one envelope with expat, fed incrementally, in the scope of the array root.

    Args:
        root_tag: the array root's start tag exactly as received (namespace declarations on
            it apply to the envelope).
        buf, start: the buffer and offset where the envelope's start tag begins (to learn
            its name; ``closing`` is then ``</name``, the start of its possible end tags).

    ``feed(chunk)`` returns True once the envelope's end tag has been parsed; ``end`` is then
    its length in bytes and ``envelope`` the element tree, ``body_text()`` the body element.
    """

    def __init__(self, root_tag: bytes, buf: bytes, start: int) -> None:
        name = _TAG_NAME.match(buf, start)
        if name is None:
            raise DecodeError("malformed start tag in the array root")
        self.closing = b"</" + name[0][1:]
        parser = expat.ParserCreate("utf-8", _SEP)
        parser.namespace_prefixes = True
        parser.buffer_text = True
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._text
        parser.StartDoctypeDeclHandler = _refuse
        parser.EntityDeclHandler = _refuse
        self._parser = parser
        self._base = len(root_tag)
        self.data = bytearray()
        self.end = -1
        self.envelope: ET.Element | None = None
        self._builder = ET.TreeBuilder()
        self._depth = 0
        self._inner: list[tuple[int, str | None]] = []
        self._in_body = False
        self._body_open = False
        self._body_start = -1
        self._body_end = -1
        self._inject: dict[str | None, str] = {}
        self._run(root_tag)

    @property
    def fed(self) -> int:
        """Envelope bytes fed so far."""
        return len(self.data)

    def feed(self, chunk: bytes) -> bool:
        """Parse more envelope bytes; True once the envelope is complete.

        Raises:
            DecodeError: the envelope is not well-formed (namespace errors included).
            UnsafeXMLError: a DTD or entity declaration.
        """
        self.data += chunk
        return self._run(chunk)

    def _run(self, chunk: bytes) -> bool:
        try:
            self._parser.Parse(chunk, False)
        except _Done:
            return True
        except expat.ExpatError as exc:
            raise DecodeError(
                f"malformed XML in SOAP envelope: {expat.ErrorString(exc.code)}"
            ) from None
        except RecursionError:  # pragma: no cover - expat itself is iterative
            raise DecodeError("SOAP envelope nested too deeply") from None
        return False

    def body_text(self) -> str:
        """The body element's source text, with outside namespace declarations it uses."""
        if self._body_start < 0:
            return ""
        raw = bytes(self.data[self._body_start : self._body_end])
        if self._inject:
            name = _TAG_NAME.match(raw)
            assert name is not None  # expat accepted this start tag
            decls = "".join(
                f' xmlns="{escape_attr(uri)}"'
                if prefix is None
                else f' xmlns:{prefix}="{escape_attr(uri)}"'
                for prefix, uri in self._inject.items()
            ).encode()
            raw = raw[: name.end()] + decls + raw[name.end() :]
        return raw.decode()

    # expat handlers -----------------------------------------------------------------------------
    # Hot: called for every element of every envelope that misses the fast path.

    def _ns_start(self, prefix: str | None, _uri: str | None) -> None:
        # Installed only inside s:Body: records declarations made within the body element,
        # scoped by depth, so that prefixes bound outside it can be copied onto it.
        self._inner.append((self._depth + 1, prefix))

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        depth = self._depth = self._depth + 1
        if depth == 1:
            return  # the array root
        if _SEP in name:
            parts = name.split(_SEP)
            tag = f"{{{parts[0]}}}{parts[1]}"
        else:
            tag = name
        self._builder.start(tag, {_clark(k): v for k, v in attrs.items()} if attrs else {})
        if depth == 3:
            self._in_body = tag == _BODY_TAG
            self._parser.StartNamespaceDeclHandler = self._ns_start if self._in_body else None
        elif depth == _BODY_DEPTH and self._in_body and self._body_start < 0:
            self._body_start = self._parser.CurrentByteIndex - self._base
            self._body_open = True
        if self._body_open:
            self._note_outside_prefixes(name, attrs)

    def _note_outside_prefixes(self, name: str, attrs: dict[str, str]) -> None:
        inner = {prefix for _, prefix in self._inner}
        for qname in (name, *attrs):
            parts = qname.split(_SEP)
            if len(parts) == 3:
                prefix: str | None = parts[2]
            elif len(parts) == 2 and qname is name:
                prefix = None  # default namespace
            else:
                continue
            if prefix != "xml" and prefix not in inner:
                self._inject.setdefault(prefix, parts[0])

    def _text(self, text: str) -> None:
        if self._depth >= 2:
            self._builder.data(text)

    def _end(self, name: str) -> None:
        depth = self._depth
        self._depth = depth - 1
        if depth == 1:  # pragma: no cover - the root's end tag is never fed
            raise DecodeError("unexpected end of the array root inside an envelope")
        self._builder.end(name)  # the C TreeBuilder does not look at the tag
        inner = self._inner
        while inner and inner[-1][0] == depth:
            inner.pop()
        if depth == _BODY_DEPTH and self._body_open:
            self._body_open = False
            self._body_end = self._element_end(self._body_start)
        elif depth == 3:
            self._in_body = False
            self._parser.StartNamespaceDeclHandler = None
        elif depth == 2:
            self.end = self._element_end(0)
            self.envelope = self._builder.close()
            raise _Done

    def _element_end(self, start: int) -> int:
        """Offset just past the element whose start tag begins at ``start``.

        expat's position for an end event is the end tag's ``</`` for a normal element, but
        is not reliable for an empty-element tag, so that case is recognised from the start
        tag itself.
        """
        data = self.data
        tag = _START_TAG.match(data, start)
        if tag is None:  # pragma: no cover - expat accepted this start tag
            raise DecodeError("cannot locate the start tag of an element")
        if data[tag.end() - 2] == 0x2F:  # '/>'
            return tag.end()
        index = self._parser.CurrentByteIndex - self._base
        close = data.find(b">", index)
        if not data.startswith(b"</", index) or close < 0:  # pragma: no cover
            raise DecodeError("cannot locate the end tag of an element")
        return close + 1


def _envelope_parts(env: ET.Element) -> tuple[dict[str, str], ET.Element | None]:
    if env.tag != _ENVELOPE_TAG:
        if local_name(env.tag) == "Envelope":
            ns = env.tag[1:].rsplit("}", 1)[0] if env.tag.startswith("{") else ""
            raise DecodeError(f"SOAP envelope in namespace {ns!r}; expected SOAP 1.2 ({NS_SOAP12})")
        raise DecodeError(f"expected a SOAP envelope, found <{local_name(env.tag)}>")
    header = body = None
    for child in env:
        if child.tag == _HEADER_TAG and header is None:
            header = child
        elif child.tag == _BODY_TAG and body is None:
            body = child
    if body is None:
        raise DecodeError("SOAP envelope without s:Body")
    found: dict[str, str] = {}
    for element in header if header is not None else ():
        key = HEADER_KEYS.get(element.tag)
        if key is not None and key not in found:
            found[key] = "".join(element.itertext())
    if "action" not in found:
        raise DecodeError("SOAP envelope without an a:Action header")
    return found, next(iter(body), None)


def request_from_tree(env: ET.Element, body: str) -> SoapRequest:
    """The request carried by a fully parsed envelope.

    Raises:
        DecodeError: not a SOAP 1.2 envelope, no Body, no Action, or a bad instance id.
    """
    found, _ = _envelope_parts(env)
    return build_request(
        found["action"],
        found.get("message_id"),
        found.get("user_data"),
        found.get("client_id"),
        found.get("client_instance_id"),
        body,
    )


def _fault(element: ET.Element, action: str) -> SoaFault:
    value = element.find(f"{{{NS_SOAP12}}}Code/{{{NS_SOAP12}}}Value")
    code = "".join(value.itertext()).strip() if value is not None else ""
    reason = element.find(f"{{{NS_SOAP12}}}Reason/{{{NS_SOAP12}}}Text")
    detail: tuple[tuple[str, str], ...] = ()
    holder = element.find(f"{{{NS_SOAP12}}}Detail")
    content = next(iter(holder), None) if holder is not None else None
    if content is not None:
        detail = tuple((local_name(m.tag), "".join(m.itertext())) for m in content)
    numeric = next((v.strip() for k, v in detail if k == "Code"), "")
    return SoaFault(
        kind=_fault_kind(action),
        code=code.rsplit(":", 1)[-1],
        reason="".join(reason.itertext()) if reason is not None else "",
        numeric_code=int(numeric) if _INT.fullmatch(numeric) else None,
        detail=detail,
    )


def response_from_tree(env: ET.Element, body: str) -> SoapResponse | EndOfResponses:
    """The response, fault or end marker carried by a fully parsed envelope.

    Raises:
        DecodeError: not a SOAP 1.2 envelope, no Body, no Action, or a malformed end marker.
    """
    found, content = _envelope_parts(env)
    action = found["action"]
    if action.strip() == END_OF_GET_RESPONSE_ACTION:
        if content is None or local_name(content.tag) != "EndOfResponses":
            raise DecodeError("EndOfGetResponse envelope without an EndOfResponses body")
        members = {local_name(m.tag): "".join(m.itertext()) for m in reversed(content)}
        return build_end(members.get("Count"), members.get("Reason"))
    result = fault = None
    if content is not None:
        if content.tag == _FAULT_TAG:
            fault = _fault(content, action.strip())
        elif local_name(content.tag).endswith("Response"):
            first = next(iter(content), None)
            if (
                first is not None
                and local_name(first.tag).endswith("Result")
                and len(first) == 0
                and first.get(_XSI_NIL, "").strip() not in ("true", "1")
            ):
                result = first.text or ""
    return build_response(
        action,
        found.get("relates_to"),
        found.get("request_action"),
        found.get("user_data"),
        found.get("callback_id"),
        body,
        result,
        fault,
    )
