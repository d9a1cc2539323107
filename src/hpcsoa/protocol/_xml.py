"""Safe XML parsing shared by every codec of the protocol layer.

HPC Pack never sends a DTD, so any document type declaration, entity declaration or entity
reference other than the five predefined ones and character references is rejected with
:class:`UnsafeXMLError` before expat sees it. Nothing is ever resolved or fetched.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Final

from .._exceptions import DecodeError, EncodeError, UnsafeXMLError

__all__ = [
    "NS_ARRAYS",
    "NS_COMMON",
    "NS_HPC_HEADERS",
    "NS_SCHEDULER",
    "NS_SERIALIZATION",
    "NS_SOA",
    "NS_SOAP12",
    "NS_WSA",
    "NS_XSI",
    "OVERLAP",
    "UNSAFE_MARKERS",
    "check_safe",
    "check_xml_chars",
    "escape_attr",
    "escape_text",
    "find_unsafe",
    "local_name",
    "parse_xml",
    "xml_text",
]

NS_COMMON: Final = "http://schemas.microsoft.com/HPCS2008R2/common"
NS_SERIALIZATION: Final = "http://schemas.microsoft.com/2003/10/Serialization/"
NS_ARRAYS: Final = "http://schemas.microsoft.com/2003/10/Serialization/Arrays"
NS_XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"
NS_SCHEDULER: Final = "http://schemas.microsoft.com/HPCS2008R2/scheduler/"
NS_SOA: Final = "http://hpc.microsoft.com/"
NS_SOAP12: Final = "http://www.w3.org/2003/05/soap-envelope"
NS_WSA: Final = "http://www.w3.org/2005/08/addressing"
NS_HPC_HEADERS: Final = "http://www.microsoft.com/hpc"

_FORBIDDEN: Final = (b"<!DOCTYPE", b"<!ENTITY", b"<!ELEMENT", b"<!ATTLIST", b"<!NOTATION")
# Longest forbidden marker minus one: how much of a previous chunk must be kept to catch a
# marker split across two chunks.
OVERLAP: Final = max(len(m) for m in _FORBIDDEN) - 1
UNSAFE_MARKERS: Final = _FORBIDDEN
"""The declaration markers (upper case) that :func:`check_safe` rejects."""


def check_safe(data: bytes) -> None:
    """Raise :class:`UnsafeXMLError` if ``data`` contains a DTD or declaration markup.

    Incremental callers pass the last :data:`OVERLAP` bytes of the previous chunk prepended
    to the new one so that a marker split across chunks is still seen.
    """
    if b"<!" not in data:
        return
    upper = data.upper()
    for marker in _FORBIDDEN:
        if marker in upper:
            raise UnsafeXMLError(
                f"XML with {marker[2:].decode()} declarations is rejected "
                "(DTDs and entities are never resolved)"
            )


def find_unsafe(data: bytes) -> tuple[int, str] | None:
    """Where the first DTD / declaration marker in ``data`` starts, and its keyword.

    ``None`` if there is none. Case-insensitive, like :func:`check_safe`.
    """
    if b"<!" not in data:
        return None
    upper = data.upper()
    found = [(at, m[2:].decode()) for m in _FORBIDDEN if (at := upper.find(m)) >= 0]
    return min(found) if found else None


def parse_xml(data: bytes | str, *, what: str = "XML body") -> ET.Element:
    """Parse a complete document safely.

    Raises:
        UnsafeXMLError: the document has a DTD or entity/markup declarations.
        DecodeError: the document is not well-formed XML (or not UTF-8).
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    check_safe(raw)
    try:
        return ET.fromstring(raw)
    except ET.ParseError as exc:
        raise DecodeError(f"malformed {what}: {exc}") from None
    except (ValueError, UnicodeError) as exc:  # e.g. bad encoding declaration
        raise DecodeError(f"malformed {what}: {exc}") from None


def local_name(tag: str) -> str:
    """``{ns}Name`` → ``Name``."""
    return tag.rsplit("}", 1)[-1]


_TEXT_ESCAPES: Final = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_ATTR_ESCAPES: Final = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "\r": "&#13;",
        "\n": "&#10;",
        "\t": "&#9;",
    }
)


def escape_text(value: str) -> str:
    """Escape character data. ``\\r`` is kept as a character reference so it round-trips."""
    out = value.translate(_TEXT_ESCAPES)
    return out.replace("\r", "&#13;") if "\r" in out else out


def escape_attr(value: str) -> str:
    """Escape an attribute value (double-quoted)."""
    return value.translate(_ATTR_ESCAPES)


# Characters outside the XML 1.0 ``Char`` production: C0 controls other than tab, LF and CR,
# lone surrogates, U+FFFE and U+FFFF. Not even a character reference can carry them.
_ILLEGAL_XML_CHAR: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def check_xml_chars(value: str, field: str) -> None:
    """Raise :class:`EncodeError` naming ``field`` if ``value`` has a non-XML-1.0 character.

    Raises:
        EncodeError: ``value`` contains a C0 control other than tab/LF/CR, a lone surrogate,
            U+FFFE or U+FFFF.
    """
    bad = _ILLEGAL_XML_CHAR.search(value)
    if bad is not None:
        raise EncodeError(
            f"{field} contains U+{ord(bad.group()):04X} at index {bad.start()}, "
            "which XML 1.0 cannot represent"
        )


def xml_text(value: str, field: str) -> str:
    """Check ``value`` with :func:`check_xml_chars` and return it escaped as character data.

    Cheap for the common case (printable ASCII without markup characters), which is returned
    unchanged.

    Raises:
        EncodeError: ``value`` has a character XML 1.0 cannot represent.
    """
    if value.isascii() and value.isprintable():
        if "&" in value or "<" in value or ">" in value:
            return value.translate(_TEXT_ESCAPES)
        return value
    check_xml_chars(value, field)
    return escape_text(value)
