"""DataContract XML (and JSON faults) of scheduler, node and error bodies (spec §2.6, §2.7).

What lives here:

* property bags: ``ArrayOfProperty`` and ``ArrayOfObject`` (namespace
  ``http://schemas.microsoft.com/HPCS2008R2/common``), with ``i:nil`` for null values;
* primitive roots ``<int>`` / ``<string>`` and ``ArrayOfstring`` (Get Node Group Members,
  Get Job Templates) and ``ArrayOfVersion`` (Get Service Versions, §4.9);
* ``HpcWebServiceFault`` in its three forms (XML, JSON, legacy ``<string>``).

Encoders write the compact form (no whitespace between elements), exactly as the examples of
the spec read once their layout whitespace is removed. Decoders match elements by *local name*
and ignore namespaces, so they also read the doc variants (e.g. ``ArrayOfstring`` in the common
namespace, §6.7). Every decoder raises only :class:`DecodeError` / :class:`UnsafeXMLError`;
:func:`decode_fault` never raises at all.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Final, TypeAlias

import orjson

from .._exceptions import DecodeError, EncodeError, ProtocolError
from ._models import ServiceVersion, WebServiceFault
from ._xml import (
    NS_ARRAYS,
    NS_COMMON,
    NS_SERIALIZATION,
    NS_XSI,
    local_name,
    parse_xml,
    xml_text,
)

__all__ = [
    "NS_GENERIC_COLLECTIONS",
    "NS_SYSTEM",
    "Properties",
    "decode_fault",
    "decode_int",
    "decode_object_array",
    "decode_property_array",
    "decode_string",
    "decode_string_array",
    "decode_version_array",
    "encode_fault_json",
    "encode_fault_xml",
    "encode_int",
    "encode_legacy_fault",
    "encode_object_array",
    "encode_property_array",
    "encode_string",
    "encode_string_array",
    "encode_version_array",
]

Properties: TypeAlias = list[tuple[str, str | None]]

NS_SYSTEM: Final = "http://schemas.datacontract.org/2004/07/System"
NS_GENERIC_COLLECTIONS: Final = "http://schemas.datacontract.org/2004/07/System.Collections.Generic"

_XMLNS_I: Final = f'xmlns:i="{NS_XSI}"'
_NIL: Final = f"{{{NS_XSI}}}nil"
_INT32: Final = (-(2**31), 2**31 - 1)
_INT64: Final = (-(2**63), 2**63 - 1)
_INT_RE: Final = re.compile(r"[+-]?[0-9]+")


# --- shared helpers (also used by _session_codec) ---------------------------------------------


def parse_document(body: bytes, what: str) -> ET.Element:
    """:func:`parse_xml`, with any stray non-protocol exception turned into ``DecodeError``."""
    try:
        return parse_xml(body, what=what)
    except ProtocolError:
        raise
    except (ValueError, LookupError, TypeError) as exc:  # e.g. an unknown encoding declaration
        raise DecodeError(f"malformed {what}: {exc}") from None


def is_nil(el: ET.Element) -> bool:
    """``i:nil="true"`` (or ``"1"``, the other xsd:boolean spelling)."""
    return el.get(_NIL, "").strip() in ("true", "1")


def scalar_text(el: ET.Element, what: str) -> str:
    """Text of a leaf element (``""`` when empty).

    Raises:
        DecodeError: the element has child elements.
    """
    if len(el):
        raise DecodeError(f"{what}: expected text, found child element <{local_name(el[0].tag)}>")
    return el.text or ""


def parse_int_text(text: str, what: str, *, bits: int = 32) -> int:
    """Parse an ``xsd:int`` / ``xsd:long`` lexical value (ASCII digits, optional sign).

    Raises:
        DecodeError: not an integer, or outside the signed ``bits``-bit range.
    """
    t = text.strip()
    if not _INT_RE.fullmatch(t):
        raise DecodeError(f"{what}: expected an integer, got {_excerpt(text)}")
    n = int(t)
    lo, hi = _INT32 if bits == 32 else _INT64
    if not lo <= n <= hi:
        raise DecodeError(f"{what}: {n} is outside the {bits}-bit integer range")
    return n


def _excerpt(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _root(body: bytes, expected: str, what: str) -> ET.Element:
    root = parse_document(body, what)
    if local_name(root.tag) != expected:
        raise DecodeError(f"{what}: expected root <{expected}>, got <{local_name(root.tag)}>")
    return root


def _children(el: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in el if local_name(c.tag) == name]


def _strip_bom(body: bytes) -> bytes:
    """Surrounding whitespace and a leading UTF-8 byte-order mark removed."""
    body = body.strip(b" \t\r\n")
    return body[3:].lstrip(b" \t\r\n") if body.startswith(b"\xef\xbb\xbf") else body


def _is_blank(body: bytes) -> bool:
    return not _strip_bom(body)


# --- System.Version ---------------------------------------------------------------------------

_VERSION_FIELDS: Final = (
    ("_Build", "build"),
    ("_Major", "major"),
    ("_Minor", "minor"),
    ("_Revision", "revision"),
)


def encode_version_members(version: ServiceVersion, prefix: str = "") -> str:
    """The four ``System.Version`` members in ordinal order, e.g. ``<a:_Build>-1</a:_Build>...``."""
    return "".join(
        f"<{prefix}{name}>{int(getattr(version, attr))}</{prefix}{name}>"
        for name, attr in _VERSION_FIELDS
    )


def decode_version(el: ET.Element, what: str) -> ServiceVersion:
    """Read a ``System.Version`` element (children by local name; missing → .NET defaults).

    Raises:
        DecodeError: a component is not a 32-bit integer.
    """
    values = {"major": 0, "minor": 0, "build": -1, "revision": -1}
    names = dict(_VERSION_FIELDS)
    for child in el:
        attr = names.get(local_name(child.tag))
        if attr is not None:
            tag = local_name(child.tag)
            values[attr] = parse_int_text(scalar_text(child, f"{what}.{tag}"), f"{what}.{tag}")
    return ServiceVersion(**values)


def encode_version_array(versions: Iterable[ServiceVersion]) -> bytes:
    """``ArrayOfVersion`` in the ``System`` namespace (Get Service Versions, §4.9)."""
    items = "".join(f"<Version>{encode_version_members(v)}</Version>" for v in versions)
    return f'<ArrayOfVersion xmlns="{NS_SYSTEM}" {_XMLNS_I}>{items}</ArrayOfVersion>'.encode()


def decode_version_array(body: bytes) -> list[ServiceVersion]:
    """Parse an ``ArrayOfVersion`` body.

    Raises:
        DecodeError / UnsafeXMLError: malformed body or component.
    """
    root = _root(body, "ArrayOfVersion", "ArrayOfVersion")
    return [
        decode_version(el, f"ArrayOfVersion[{i}]")
        for i, el in enumerate(_children(root, "Version"))
        if not is_nil(el)
    ]


# --- property bags (§2.6) ---------------------------------------------------------------------


def _encode_properties(props: Iterable[tuple[str, str | None]], what: str) -> str:
    parts: list[str] = []
    for i, (name, value) in enumerate(props):
        name_xml = xml_text(name, f"{what}[{i}].Name")
        if value is None:
            parts.append(f'<Property><Name>{name_xml}</Name><Value i:nil="true"/></Property>')
        else:
            value_xml = xml_text(value, f"{what}[{i}] {name!r} Value")
            parts.append(f"<Property><Name>{name_xml}</Name><Value>{value_xml}</Value></Property>")
    return "".join(parts)


def _decode_properties(container: ET.Element, what: str) -> Properties:
    out: Properties = []
    for i, prop in enumerate(_children(container, "Property")):
        where = f"{what}[{i}]"
        name: str | None = None
        value: str | None = None
        for child in prop:
            tag = local_name(child.tag)
            if tag == "Name":
                if is_nil(child):
                    raise DecodeError(f"{where}: Name is nil")
                name = scalar_text(child, f"{where}.Name")
            elif tag == "Value":
                value = None if is_nil(child) else scalar_text(child, f"{where}.Value")
            # `Type` (Set Subtask Properties, §2.6) and unknown members carry nothing we need.
        if name is None:
            raise DecodeError(f"{where}: Property without a Name")
        out.append((name, value))
    return out


def encode_property_array(props: Iterable[tuple[str, str | None]]) -> bytes:
    """``ArrayOfProperty`` (compact). A ``None`` value is written ``<Value i:nil="true"/>``.

    Raises:
        EncodeError: a name or value holds a character XML cannot carry.
    """
    inner = _encode_properties(props, "ArrayOfProperty")
    return f'<ArrayOfProperty xmlns="{NS_COMMON}" {_XMLNS_I}>{inner}</ArrayOfProperty>'.encode()


def decode_property_array(body: bytes) -> Properties:
    """Parse an ``ArrayOfProperty`` into ``(name, value)`` pairs, in document order.

    ``<Value/>`` gives ``""``, ``i:nil`` (or a missing ``Value``) gives ``None``; the optional
    ``<Type>`` element is skipped. An empty body is an empty list (G32).

    Raises:
        DecodeError / UnsafeXMLError: malformed XML, wrong root, a ``Property`` without ``Name``.
    """
    if _is_blank(body):
        return []
    root = _root(body, "ArrayOfProperty", "ArrayOfProperty")
    return _decode_properties(root, "ArrayOfProperty")


def encode_object_array(objects: Iterable[Iterable[tuple[str, str | None]]]) -> bytes:
    """``ArrayOfObject``: one ``<Object><Properties>…</Properties></Object>`` per item.

    Raises:
        EncodeError: a name or value holds a character XML cannot carry.
    """
    parts = []
    for i, obj in enumerate(objects):
        inner = _encode_properties(obj, f"ArrayOfObject[{i}]")
        parts.append(f"<Object><Properties>{inner}</Properties></Object>")
    body = "".join(parts)
    return f'<ArrayOfObject xmlns="{NS_COMMON}" {_XMLNS_I}>{body}</ArrayOfObject>'.encode()


def decode_object_array(body: bytes) -> list[Properties]:
    """Parse an ``ArrayOfObject`` into one property list per ``Object``. Empty body → ``[]``.

    Raises:
        DecodeError / UnsafeXMLError: malformed XML or wrong root.
    """
    if _is_blank(body):
        return []
    root = _root(body, "ArrayOfObject", "ArrayOfObject")
    out: list[Properties] = []
    for i, obj in enumerate(_children(root, "Object")):
        props: Properties = []
        for container in _children(obj, "Properties"):
            props.extend(_decode_properties(container, f"ArrayOfObject[{i}]"))
        out.append(props)
    return out


# --- primitive roots and string arrays --------------------------------------------------------


def encode_int(value: int) -> bytes:
    """``<int xmlns="http://schemas.microsoft.com/2003/10/Serialization/">17</int>``."""
    return f'<int xmlns="{NS_SERIALIZATION}">{int(value)}</int>'.encode()


def decode_int(body: bytes) -> int:
    """Parse an ``<int>`` root (any namespace; 64-bit range accepted).

    Raises:
        DecodeError / UnsafeXMLError: malformed XML, wrong root, not an integer.
    """
    root = _root(body, "int", "<int> body")
    if is_nil(root):
        raise DecodeError("<int> body: value is nil")
    return parse_int_text(scalar_text(root, "<int> body"), "<int> body", bits=64)


def encode_string(value: str) -> bytes:
    """``<string xmlns="http://schemas.microsoft.com/2003/10/Serialization/">text</string>``.

    Raises:
        EncodeError: ``value`` holds a character XML cannot carry.
    """
    return f'<string xmlns="{NS_SERIALIZATION}">{xml_text(value, "<string>")}</string>'.encode()


def decode_string(body: bytes) -> str:
    """Parse a ``<string>`` root (any namespace). A nil string reads as ``""``.

    Raises:
        DecodeError / UnsafeXMLError: malformed XML or wrong root.
    """
    root = _root(body, "string", "<string> body")
    return "" if is_nil(root) else scalar_text(root, "<string> body")


def encode_string_array(items: Iterable[str]) -> bytes:
    """``ArrayOfstring`` in the ``…/Serialization/Arrays`` namespace (§6.7, §6.8).

    Raises:
        EncodeError: an item holds a character XML cannot carry.
    """
    inner = "".join(
        f"<string>{xml_text(s, f'ArrayOfstring[{i}]')}</string>" for i, s in enumerate(items)
    )
    return f'<ArrayOfstring xmlns="{NS_ARRAYS}" {_XMLNS_I}>{inner}</ArrayOfstring>'.encode()


def decode_string_array(body: bytes) -> list[str]:
    """Parse an ``ArrayOfstring`` by local name, whatever its namespace. Empty body → ``[]``.

    A nil item reads as ``""``.

    Raises:
        DecodeError / UnsafeXMLError: malformed XML or wrong root.
    """
    if _is_blank(body):
        return []
    root = _root(body, "ArrayOfstring", "ArrayOfstring")
    return [
        "" if is_nil(el) else scalar_text(el, f"ArrayOfstring[{i}]")
        for i, el in enumerate(_children(root, "string"))
    ]


# --- HpcWebServiceFault (§2.7) ----------------------------------------------------------------


def encode_fault_xml(fault: WebServiceFault) -> bytes:
    """The ``HpcWebServiceFault`` XML form (compact).

    Raises:
        EncodeError: the message or a value holds a character XML cannot carry.
    """
    message = xml_text(fault.message, "HpcWebServiceFault.Message")
    xmlns_a = f'xmlns:a="{NS_GENERIC_COLLECTIONS}"'
    if fault.values is None:
        values = f'<Values i:nil="true" {xmlns_a}/>'
    else:
        pairs = "".join(
            "<a:KeyValuePairOfstringstring>"
            f"<a:key>{xml_text(k, f'HpcWebServiceFault.Values[{i}].key')}</a:key>"
            f"<a:value>{xml_text(v, f'HpcWebServiceFault.Values[{i}].value')}</a:value>"
            "</a:KeyValuePairOfstringstring>"
            for i, (k, v) in enumerate(fault.values)
        )
        values = f"<Values {xmlns_a}>{pairs}</Values>"
    return (
        f'<HpcWebServiceFault xmlns="{NS_COMMON}" {_XMLNS_I}>'
        f"<Code>{int(fault.code)}</Code><Message>{message}</Message>{values}"
        "</HpcWebServiceFault>"
    ).encode()


def encode_fault_json(fault: WebServiceFault) -> bytes:
    """``{"Code":…,"Message":"…","Values":null}`` (compact, keys in this order; G12).

    ``Values`` is ``[{"Key":"k","Value":"v"}, …]`` when present.

    Raises:
        EncodeError: a string is not encodable (lone surrogate).
    """
    values = None
    if fault.values is not None:
        values = [{"Key": k, "Value": v} for k, v in fault.values]
    try:
        return orjson.dumps({"Code": int(fault.code), "Message": fault.message, "Values": values})
    except orjson.JSONEncodeError as exc:
        raise EncodeError(f"HpcWebServiceFault JSON: {exc}") from None


def encode_legacy_fault(message: str) -> bytes:
    """The legacy error body: a ``<string>`` root holding the message (§2.7 form 2).

    Raises:
        EncodeError: ``message`` holds a character XML cannot carry.
    """
    return encode_string(message)


def _fault_from_xml(root: ET.Element) -> WebServiceFault | str | None:
    tag = local_name(root.tag)
    if tag == "string":  # legacy form first, as Microsoft's C# sample does
        return "" if is_nil(root) else scalar_text(root, "<string> body")
    if tag != "HpcWebServiceFault":
        return None
    code = 0  # DataContract default when the member is absent
    message = ""
    values: tuple[tuple[str, str], ...] | None = None
    for child in root:
        name = local_name(child.tag)
        if name == "Code" and not is_nil(child):
            code = parse_int_text(scalar_text(child, "Code"), "HpcWebServiceFault.Code")
        elif name == "Message" and not is_nil(child):
            message = scalar_text(child, "HpcWebServiceFault.Message")
        elif name == "Values" and not is_nil(child):
            pairs: list[tuple[str, str]] = []
            for kv in child:
                fields = {local_name(f.tag).lower(): f for f in kv}
                key, val = fields.get("key"), fields.get("value")
                pairs.append(
                    (
                        "" if key is None or is_nil(key) else scalar_text(key, "key"),
                        "" if val is None or is_nil(val) else scalar_text(val, "value"),
                    )
                )
            values = tuple(pairs)
    return WebServiceFault(code, message, values)


def _json_str(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _fault_from_json(data: object) -> WebServiceFault | str | None:
    if isinstance(data, str):  # a bare JSON string: a message without a code
        return data
    if not isinstance(data, dict):
        return None
    fields = {str(k).lower(): v for k, v in data.items()}
    raw_code, message = fields.get("code"), fields.get("message")
    if raw_code is None or isinstance(raw_code, bool):
        return message if isinstance(message, str) else None
    if isinstance(raw_code, str) and _INT_RE.fullmatch(raw_code.strip()):
        raw_code = int(raw_code)
    if not isinstance(raw_code, int):
        return None
    raw_values = fields.get("values")
    values: tuple[tuple[str, str], ...] | None = None
    if isinstance(raw_values, list):
        pairs = []
        for item in raw_values:
            if isinstance(item, dict):
                kv = {str(k).lower(): v for k, v in item.items()}
                pairs.append((_json_str(kv.get("key")), _json_str(kv.get("value"))))
        values = tuple(pairs)
    elif isinstance(raw_values, dict):
        values = tuple((str(k), _json_str(v)) for k, v in raw_values.items())
    return WebServiceFault(raw_code, _json_str(message), values)


def decode_fault(body: bytes, content_type: str | None = None) -> WebServiceFault | str | None:
    """Best-effort decoding of an error body. Never raises.

    Tries the legacy ``<string>`` form first, then ``HpcWebServiceFault`` XML, then the JSON
    form, like Microsoft's C# sample (§2.7). The body is sniffed, so a wrong or missing
    ``content_type`` does not matter (it is accepted for symmetry with the other decoders).

    Returns:
        a :class:`WebServiceFault`; the message ``str`` of a legacy body; or ``None`` when the
        body is none of these (empty, an HTML error page, garbage, unsafe XML).
    """
    del content_type  # sniffing is more reliable than what proxies put in the header
    try:
        text = _strip_bom(body)
        if text.startswith(b"<"):
            return _fault_from_xml(parse_document(text, "error body"))
        if text[:1] in (b"{", b'"'):
            return _fault_from_json(orjson.loads(text))
    except (ProtocolError, ValueError, TypeError, LookupError, RecursionError):
        return None
    return None
