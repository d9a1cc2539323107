"""The fast path of SOAP envelope decoding: precompiled regular expressions, in two tiers.

1. **Canonical**: exactly what our encoders emit (spec §3.5 / §4.6 layout): ``s``/``a``
   prefixes declared on the envelope, headers in the usual order, a WCF-wrapped body of simple
   elements, no whitespace between elements. One ``fullmatch`` gives every field.
2. **Flexible**: the same envelope start tag, but headers of simple content in any order
   (unknown ones ignored, a known one at most once) and whitespace between elements, e.g.
   pretty-printed bodies or another header order from a real broker. Still one ``fullmatch``:
   the header section is a repeated alternation with one capturing branch per known header.

Text is restricted to characters and references that are well-formed XML as written (no
markup, no raw CR in extracted text, none of the characters XML 1.0 forbids), attributes to a
fixed few, prefixes to the two the envelope declares, so no pattern accepts anything expat
would reject; references are resolved here. Anything else makes these functions return
``None`` and the caller uses the full parser (``_soap_envelope``), which gives identical
results for every envelope the fast path accepts.
"""

from __future__ import annotations

import re
from typing import Final, overload

from ._models import END_OF_GET_RESPONSE_ACTION, EndOfResponses, SoapRequest, SoapResponse
from ._soap_envelope import build_end, build_request, build_response
from ._xml import NS_HPC_HEADERS, NS_SOAP12, NS_WSA

__all__ = ["fast_request", "fast_response"]


class _NotFast(Exception):
    """A pattern matched but a character reference needs the full parser to judge it."""


# Character data that is well-formed as written: no markup, no raw CR (a parser would turn it
# into LF), none of the characters XML 1.0 forbids; plus the predefined and character refs.
_C: Final = r"[^<>&\r\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]"
_T: Final = rf"{_C}*+(?:&(?:lt|gt|amp|quot|apos|#[0-9]{{1,7}}|#x[0-9a-fA-F]{{1,6}});{_C}*+)*+"
_N: Final = r"(?![Xx][Mm][Ll])[A-Za-z_][A-Za-z0-9._-]*+"
_NSV: Final = r'[^"<&\x00-\x1f]*+'
_ENV: Final = re.escape(f'<s:Envelope xmlns:s="{NS_SOAP12}" xmlns:a="{NS_WSA}"><s:Header>')
# A body in these namespaces means something else to the full parser (a SOAP 1.2 Fault) or
# is rejected by it (the reserved xml / xmlns namespaces), so the fast path declines it.
_NOT_FAST_NAMESPACES: Final = frozenset(
    {NS_SOAP12, "http://www.w3.org/XML/1998/namespace", "http://www.w3.org/2000/xmlns/"}
)
_ACTION: Final = rf'<a:Action s:mustUnderstand="1">(?P<action>{_T})</a:Action>'


def _hpc(name: str, group: str) -> str:
    """An optional HPC header, empty-element form allowed; group ``<group>h`` marks presence."""
    full = f"HPCServer2008_Broker_{name}"
    start = re.escape(f'<{full} xmlns="{NS_HPC_HEADERS}"')
    return rf"(?P<{group}h>{start}(?:/>|>(?P<{group}>{_T})</{full}>))?"


_REQUEST_RE: Final = re.compile(
    _ENV
    + _ACTION
    + rf"(?:<a:MessageID>(?P<mid>{_T})</a:MessageID>)?"
    + _hpc("UserDataNS", "ud")
    + _hpc("ClientIdNS", "cid")
    + _hpc("ClientInstanceIdNS", "inst")
    + rf'</s:Header><s:Body>(?P<body><(?P<w>{_N}) xmlns="(?P<ns>{_NSV})"'
    + rf"(?:/>|>(?:<(?P<p>{_N})(?:/>|>{_T}</(?P=p)>))*</(?P=w)>))</s:Body></s:Envelope>"
)
_RESPONSE_RE: Final = re.compile(
    _ENV
    + _ACTION
    + rf"(?:<a:RelatesTo>(?P<rel>{_T})</a:RelatesTo>)?"
    + rf'(?:<a:To s:mustUnderstand="1">{_T}</a:To>)?'
    + _hpc("RequestActionNS", "ra")
    + _hpc("UserDataNS", "ud")
    + _hpc("ResponseCallbackId", "cb")
    + rf'</s:Header><s:Body>(?P<body><(?P<w>{_N}) xmlns="(?P<ns>{_NSV})"'
    + rf"(?:/>|>(?:<(?P<r>{_N})(?:/>|>(?P<res>{_T})</(?P=r)>)"
    + rf"(?:<(?P<p>{_N})(?:/>|>{_T}</(?P=p)>))*)?</(?P=w)>))</s:Body></s:Envelope>"
)
_END_RE: Final = re.compile(
    _ENV
    + re.escape(f'<a:Action s:mustUnderstand="1">{END_OF_GET_RESPONSE_ACTION}</a:Action>')
    + _hpc("ResponseCallbackId", "cb")
    + rf'(?:<a:To s:mustUnderstand="1">{_T}</a:To>)?'
    + r'</s:Header><s:Body><EndOfResponses xmlns="http://tempuri\.org/">'
    + rf"<Count>(?P<count>{_T})</Count><Reason>(?P<reason>{_T})</Reason>"
    + r"</EndOfResponses></s:Body></s:Envelope>"
)
_END_START: Final = (
    f'<s:Envelope xmlns:s="{NS_SOAP12}" xmlns:a="{NS_WSA}"><s:Header>'
    f'<a:Action s:mustUnderstand="1">{END_OF_GET_RESPONSE_ACTION}<'
)
_REF: Final = re.compile(r"&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);")
_PREDEFINED: Final = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}


def _resolve(match: re.Match[str]) -> str:
    ref = match[1]
    if ref[0] != "#":
        return _PREDEFINED[ref]
    code = int(ref[2:], 16) if ref[1] == "x" else int(ref[1:])
    if (
        code in (0x9, 0xA, 0xD)
        or 0x20 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
    ):
        return chr(code)
    raise _NotFast  # the full parser reports the illegal character reference


@overload
def _u(text: str) -> str: ...
@overload
def _u(text: str | None) -> str | None: ...
def _u(text: str | None) -> str | None:
    if text is None or "&" not in text:
        return text
    return _REF.sub(_resolve, text)


def _groups(pattern: re.Pattern[str], *names: str) -> tuple[int, ...]:
    return tuple(pattern.groupindex[name] for name in names)


_REQUEST_GROUPS: Final = _groups(
    _REQUEST_RE, "action", "mid", "udh", "ud", "cidh", "cid", "insth", "inst", "body", "ns"
)
_RESPONSE_GROUPS: Final = _groups(
    _RESPONSE_RE, "action", "rel", "ra", "udh", "ud", "cbh", "cb", "body", "w", "ns", "r", "res"
)


# --- second tier: any header order, whitespace between elements ----------------------------------
# Note: no possessive repeat (``*+``) may contain a capturing group: CPython 3.11's re module
# can fail on that ("The span of capturing group is wrong").

_S: Final = r"[ \t\r\n]*+"  # whitespace between elements: ignored, or kept raw in ``body``
# Namespace values for the second tier: also without '>' and never a reserved namespace,
# which expat refuses to bind.
_NSV2: Final = r'(?!http://www\.w3\.org/(?:XML/1998/namespace|2000/xmlns/)")[^"<>&\x00-\x1f]*+'
_MU: Final = r'(?: s:mustUnderstand="(?:1|0|true|false)")?'
_WSA_KNOWN: Final = ("Action", "RelatesTo", "MessageID")
_HPC_KNOWN: Final = (
    "UserDataNS",
    "ClientIdNS",
    "ClientInstanceIdNS",
    "RequestActionNS",
    "ResponseCallbackId",
)
_KNOWN: Final = {  # field → its group in the second-tier patterns
    key: f"h{i}"
    for i, key in enumerate(
        (
            "action",
            "relates_to",
            "message_id",
            "user_data",
            "client_id",
            "client_instance_id",
            "request_action",
            "callback_id",
        )
    )
}


def _known_header(group: str, start: str, end: str, refs: dict[str, int] | None) -> str:
    # "<group>p" marks presence (an empty element has no text group). A repeated group keeps
    # its last occurrence while the full parser takes the first, so a second occurrence must
    # not match: the conditional (on the presence group's number, a forward reference that
    # only numbers allow) fails once the group is set, which leaves duplicates to the parser.
    capture = rf"(?P<{group}p>{start}{_MU}(?:/>|>(?P<{group}>{_T}){end}))"
    return capture if refs is None else rf"(?({refs[group + 'p']})(?!)|{capture})"


def _header_section(refs: dict[str, int] | None) -> str:
    known = [
        _known_header(f"h{i}", f"<a:{name}", f"</a:{name}>", refs)
        for i, name in enumerate(_WSA_KNOWN)
    ]
    hpc = re.escape(f' xmlns="{NS_HPC_HEADERS}"')
    known += [
        _known_header(
            f"h{3 + i}",
            rf"<(?P<h{3 + i}b>HPC(?:Server|Pack)2008)_Broker_{name}{hpc}",
            rf"</(?P=h{3 + i}b)_Broker_{name}>",
            refs,
        )
        for i, name in enumerate(_HPC_KNOWN)
    ]
    # Any other header of simple content is ignored, as the full parser ignores it; a known
    # name in another shape must not pass for an unknown header, so it is excluded here.
    other = (
        rf"<(?!a:(?:{'|'.join(_WSA_KNOWN)})[ />])"
        rf"(?!HPC(?:Server|Pack)2008_Broker_(?:{'|'.join(_HPC_KNOWN)})[ />])"
        rf'(?P<oq>(?:[as]:)?{_N})(?: xmlns="{_NSV2}")?{_MU}(?:/>|>{_T}</(?P=oq)>)'
    )
    return rf"(?:{_S}(?:{'|'.join([*known, other])}))*"


def _frame(body: str) -> re.Pattern[str]:
    start = re.escape(f'<s:Envelope xmlns:s="{NS_SOAP12}" xmlns:a="{NS_WSA}">')

    def pattern(refs: dict[str, int] | None) -> str:
        return (
            rf"{start}{_S}<s:Header>{_header_section(refs)}{_S}</s:Header>{_S}<s:Body>{_S}"
            rf"(?P<body>{body}){_S}</s:Body>{_S}</s:Envelope>"
        )

    # Compiled twice: the first pass only learns the group numbers the guards refer to.
    numbers = re.compile(pattern(None)).groupindex
    return re.compile(pattern({name: numbers[name] for name in numbers if name[-1] == "p"}))


_FLEX_REQUEST_RE: Final = _frame(
    rf'<(?P<w>{_N}) xmlns="(?P<ns>{_NSV2})"'
    rf"(?:/>|>(?:{_S}<(?P<p>{_N})(?:/>|>{_T}</(?P=p)>))*{_S}</(?P=w)>)"
)
_FLEX_RESPONSE_RE: Final = _frame(
    rf'<(?P<w>{_N}) xmlns="(?P<ns>{_NSV2})"'
    rf"(?:/>|>(?:{_S}<(?P<r>{_N})(?:/>|>(?P<res>{_T})</(?P=r)>)"
    rf"(?:{_S}<(?P<p>{_N})(?:/>|>{_T}</(?P=p)>))*)?{_S}</(?P=w)>)"
)
_FLEX_END_BODY_RE: Final = re.compile(
    rf'<EndOfResponses xmlns="{_NSV2}">{_S}<Count>(?P<count>{_T})</Count>'
    rf"{_S}<Reason>(?P<reason>{_T})</Reason>{_S}</EndOfResponses>"
)


def _header_groups(pattern: re.Pattern[str]) -> tuple[int, ...]:
    """Group numbers of every known header: presence and text, in ``_KNOWN`` order."""
    return tuple(pattern.groupindex[g + s] for g in _KNOWN.values() for s in ("p", ""))


_FLEX_REQUEST_GROUPS: Final = _header_groups(_FLEX_REQUEST_RE)
_FLEX_RESPONSE_GROUPS: Final = _header_groups(_FLEX_RESPONSE_RE)


def _headers(m: re.Match[str], groups: tuple[int, ...]) -> dict[str, str]:
    """The known headers of a second-tier match (each occurs at most once)."""
    values = m.group(*groups)
    return {
        key: _u(values[2 * i + 1] or "")
        for i, key in enumerate(_KNOWN)
        if values[2 * i] is not None
    }


def _flex_request(text: str) -> SoapRequest | None:
    m = _FLEX_REQUEST_RE.fullmatch(text)
    if m is None or m["ns"] == NS_SOAP12:
        return None
    found = _headers(m, _FLEX_REQUEST_GROUPS)
    if "action" not in found:
        return None
    return build_request(
        found["action"],
        found.get("message_id"),
        found.get("user_data"),
        found.get("client_id"),
        found.get("client_instance_id"),
        m["body"],
    )


def _flex_response(text: str) -> SoapResponse | EndOfResponses | None:
    m = _FLEX_RESPONSE_RE.fullmatch(text)
    if m is None:
        return None
    found = _headers(m, _FLEX_RESPONSE_GROUPS)
    if "action" not in found:
        return None
    if found["action"].strip() == END_OF_GET_RESPONSE_ACTION:
        end = _FLEX_END_BODY_RE.fullmatch(m["body"])
        return None if end is None else build_end(_u(end["count"]), _u(end["reason"]))
    w, ns, r, res = m.group("w", "ns", "r", "res")
    if ns == NS_SOAP12:
        return None
    return build_response(
        found["action"],
        found.get("relates_to"),
        found.get("request_action"),
        found.get("user_data"),
        found.get("callback_id"),
        m["body"],
        _u(res or "")
        if r is not None and w.endswith("Response") and r.endswith("Result")
        else None,
        None,
    )


# --- entry points --------------------------------------------------------------------------------


def fast_request(text: str) -> SoapRequest | None:
    """The request in ``text`` if the fast path can decode it, else ``None``.

    Raises:
        DecodeError: the shape is canonical but a value is invalid (e.g. instance id).
    """
    m = _REQUEST_RE.fullmatch(text)
    if m is None:
        try:
            return _flex_request(text)
        except _NotFast:
            return None
    action, mid, udh, ud, cidh, cid, insth, inst, body, ns = m.group(*_REQUEST_GROUPS)
    if ns in _NOT_FAST_NAMESPACES:
        return None
    if "&" in text:  # rare: resolve references (none at all is the common case)
        try:
            action, mid, ud, cid, inst = _u(action), _u(mid), _u(ud), _u(cid), _u(inst)
        except _NotFast:
            return None
    return build_request(
        action,
        mid,
        (ud or "") if udh else None,
        (cid or "") if cidh else None,
        (inst or "") if insth else None,
        body,
    )


def fast_response(text: str) -> SoapResponse | EndOfResponses | None:
    """The response or end marker in ``text`` if the fast path can decode it, else ``None``.

    Raises:
        DecodeError: the shape is canonical but a value is invalid (e.g. the Count).
    """
    try:
        if text.startswith(_END_START):
            m = _END_RE.fullmatch(text)
            if m is not None:
                return build_end(_u(m["count"]), _u(m["reason"]))
        else:
            m = _RESPONSE_RE.fullmatch(text)
        if m is None:
            return _flex_response(text)
    except _NotFast:
        return None
    action, rel, ra, udh, ud, cbh, cb, body, w, ns, r, res = m.group(*_RESPONSE_GROUPS)
    if ns in _NOT_FAST_NAMESPACES:
        return None
    if "&" in text:  # rare: resolve references (none at all is the common case)
        try:
            action, rel, ra, ud, cb, res = _u(action), _u(rel), _u(ra), _u(ud), _u(cb), _u(res)
        except _NotFast:
            return None
    if action.strip() == END_OF_GET_RESPONSE_ACTION:
        return None  # an end marker in a shape _END_RE does not cover: the full parser decides
    return build_response(
        action,
        rel,
        ra,
        (ud or "") if udh else None,
        (cb or "") if cbh else None,
        body,
        (res or "") if r is not None and w.endswith("Response") and r.endswith("Result") else None,
        None,
    )
