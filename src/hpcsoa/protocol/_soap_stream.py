"""Incremental decoders of SOAP envelope arrays: Send Requests and Get Responses bodies.

A body (spec §4.4, §4.6) is one root element of any name holding SOAP 1.2 envelopes back to
back::

    <HPCServer2008_WebAPI_MessageArray><s:Envelope …>…</s:Envelope>…</…MessageArray>

Theory of operation. The decoder owns the structure *between* envelopes (an optional BOM and
XML declaration, comments and processing instructions, whitespace, the root's start and end
tags) and hands each envelope to ``_soap_envelope``:

* In the usual case (root without namespace declarations, envelope start tag exactly
  ``<s:Envelope xmlns:s=… xmlns:a=…>``) the envelope's end is found with ``bytes.find`` and the
  envelope is matched by precompiled regular expressions (the *fast* path, ``_soap_fast``).
* Otherwise, or when the pattern does not match, expat parses that one envelope in the scope of
  the root's start tag and reports where it ends (the *full* path, also the arbiter of
  well-formedness).

Safety: DTDs and entity declarations are refused wherever they appear, even split across
chunks: every chunk is scanned together with the tail of the previous one, and only the bytes
before a marker are processed before :class:`UnsafeXMLError` is raised. Nothing is resolved.
An envelope (or any single construct between envelopes) over ``max_envelope_bytes`` raises
:class:`FieldTooLarge`.

Both decoders return the same items for any split of the input into chunks. When a problem is
found after some items were completed in the same ``feed()``, those items are returned and the
error is raised by the next ``feed()`` or ``close()``, so good data before bad is never lost.
"""

from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Final, Generic, TypeVar
from xml.parsers import expat

from .._exceptions import DecodeError, FieldTooLarge, IncompletePage, UnsafeXMLError
from ._models import EndOfResponses, SoapRequest, SoapResponse
from ._soap_envelope import (
    CANONICAL_START,
    CLOSE_PREFIX,
    EnvelopeParser,
    request_from_tree,
    response_from_tree,
)
from ._soap_fast import fast_request, fast_response
from ._xml import OVERLAP, UNSAFE_MARKERS, find_unsafe

__all__ = ["DEFAULT_MAX_ENVELOPE_BYTES", "SoapRequestArrayDecoder", "SoapResponseDecoder"]

DEFAULT_MAX_ENVELOPE_BYTES: Final = 64 * 1024 * 1024

_PROLOG, _CONTENT, _ENVELOPE, _EPILOG = range(4)
_MORE, _FULL, _LOOK = range(3)
_STATE_NAMES: Final = ("prolog", "content", "in-envelope", "epilog")

_BOM: Final = b"\xef\xbb\xbf"
_WS: Final = re.compile(rb"[ \t\r\n]*+")
# Quote-aware end of a start tag; possessive, so a partial tag never backtracks.
_TAG_END: Final = re.compile(rb"""(?:[^"'>]++|"[^"]*+"|'[^']*+')*+>""")
_ROOT_TAG: Final = re.compile(
    rb"""<([^\s/>!?<"'=]++)(?:\s++[^\s=/>]++\s*+=\s*+(?:"[^"<]*+"|'[^'<]*+'))*+\s*+(/?)>"""
)
_END_TAG: Final = re.compile(rb"</([^\s>]*+)[ \t\r\n]*+>")
_XML_DECL: Final = re.compile(
    rb"""<\?xml[ \t\r\n]++version[ \t\r\n]*+=[ \t\r\n]*+(["'])1\.0\1"""
    rb"""(?:[ \t\r\n]++encoding[ \t\r\n]*+=[ \t\r\n]*+(["'])([A-Za-z][A-Za-z0-9._-]*+)\2)?"""
    rb"""(?:[ \t\r\n]++standalone[ \t\r\n]*+=[ \t\r\n]*+(["'])(?:yes|no)\4)?[ \t\r\n]*+\?>"""
)
_KEYWORDS: Final = tuple(m[2:] for m in UNSAFE_MARKERS)  # DOCTYPE, ENTITY, ...
_CLOSE_LEN: Final = len(CLOSE_PREFIX)

_Item = TypeVar("_Item")


def _well_formed(fragment: bytes, what: str) -> None:
    """Check a comment / PI / root tag with expat, wrapped so it is a complete document."""
    parser = expat.ParserCreate("utf-8")
    try:
        parser.Parse(fragment, True)
    except expat.ExpatError as exc:
        raise DecodeError(f"malformed {what}: {expat.ErrorString(exc.code)}") from None


@functools.lru_cache(maxsize=64)
def _root_tag(tag: bytes) -> tuple[bytes, bool]:
    """The name of the array root and whether it is empty; cached, as every body repeats it.

    Raises:
        DecodeError: the start tag is malformed (checked by expat, namespaces included).
    """
    parsed = _ROOT_TAG.fullmatch(tag)
    if parsed is None:
        raise DecodeError("malformed start tag of the array root element")
    name, empty = parsed[1], bool(parsed[2])
    _well_formed(tag if empty else tag + b"</" + name + b">", "array root start tag")
    return name, empty


def _held_back(buf: bytes, lo: int, hi: int) -> int:
    """Where to stop feeding expat so that a declaration marker split across chunks is seen.

    A trailing ``<``, or ``<!`` plus a (case-insensitive) prefix of a forbidden keyword, is
    kept back until the next chunk shows whether a marker is complete; expat would otherwise
    report it as a plain syntax error.
    """
    if hi > lo and buf[hi - 1] == 0x3C:  # '<'
        return hi - 1
    at = buf.rfind(b"<!", max(lo, hi - OVERLAP), hi)
    if at < 0:
        return hi
    rest = buf[at + 2 : hi].upper()
    return at if any(k.startswith(rest) for k in _KEYWORDS) else hi


def _next_cut(buf: bytes, lo: int, hi: int, closing: bytes) -> int:
    """Offset just past the next ``</name S? >`` in ``buf[lo:hi]``, else ``hi``."""
    at = buf.find(closing, lo, hi)
    while at >= 0:
        after = _WS.match(buf, at + len(closing), hi).end()  # type: ignore[union-attr]
        if after >= hi:
            return hi
        if buf[after] == 0x3E:  # '>'
            return after + 1
        at = buf.find(closing, at + 1, hi)
    return hi


class _ArrayDecoder(Generic[_Item]):
    """The structure between envelopes; subclasses turn envelopes into items."""

    _allow_empty = False
    _ended = False  # an EndOfResponses was decoded (only the response decoder sets it)
    _fast_decoder: Callable[[str], object | None]

    def __init__(
        self, max_envelope_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES, *, fast_path: bool = True
    ) -> None:
        if max_envelope_bytes < 1:
            raise ValueError("max_envelope_bytes must be positive")
        self._cap = max_envelope_bytes
        self._fast = fast_path
        self._buf = b""
        self._tail = b""
        self._state = _PROLOG
        self._fresh = True  # nothing consumed yet: a BOM / XML declaration may follow
        self._prolog_seen = False  # something other than whitespace was consumed
        self._root_tag = b""
        self._root_name = b""
        self._fast_ok = False
        self._envelope: EnvelopeParser | None = None
        self._error: DecodeError | None = None
        self._closed = False
        self._count = 0

    # public API ---------------------------------------------------------------------------------

    def feed(self, data: bytes | bytearray | memoryview) -> list[_Item]:
        """Decode the envelopes completed by ``data`` (see the class docstring for errors)."""
        if self._error is not None:
            raise self._error
        if self._closed:
            raise DecodeError(f"{type(self).__name__}.feed() called after close()")
        if not data:
            return []
        data = bytes(data)
        tail = self._tail
        # Scan the new bytes plus the end of the previous chunk, so that a marker split
        # across chunks is seen; avoid copying the whole chunk to do so.
        unsafe = find_unsafe(tail + data[:OVERLAP]) if tail else None
        if unsafe is None:
            found = find_unsafe(data)
            if found is not None:
                unsafe = (found[0] + len(tail), found[1])
        if unsafe is not None:
            data = data[: max(unsafe[0] - len(tail), 0)]
        self._tail = data[-OVERLAP:] if len(data) >= OVERLAP else (tail + data)[-OVERLAP:]
        out: list[_Item] = []
        try:
            if data:
                self._buf = self._buf + data if self._buf else data
                self._run(out)
            if unsafe is not None:
                raise UnsafeXMLError(
                    f"XML with {unsafe[1]} declarations is rejected "
                    "(DTDs and entities are never resolved)"
                )
        except DecodeError as exc:
            self._error = exc
            if not out:
                raise
        return out

    def close(self) -> None:
        """Signal the end of input.

        Raises:
            IncompletePage: the input ended inside an envelope or before the root closed.
            DecodeError: an error found by the last ``feed()`` that returned items.
        """
        if self._error is not None:
            raise self._error
        if self._closed:
            return
        self._closed = True
        state = self._state
        if state == _EPILOG and not self._buf:
            return
        if state == _PROLOG and not self._buf and not self._prolog_seen and self._allow_empty:
            return
        where = {
            _PROLOG: "before the array root element",
            _CONTENT: "before the array root element was closed",
            _ENVELOPE: "inside a SOAP envelope",
            _EPILOG: "inside a comment or processing instruction after the root",
        }[state]
        self._error = IncompletePage(f"input ended {where} (after {self._count} envelopes)")
        raise self._error

    # structure ----------------------------------------------------------------------------------

    def _run(self, out: list[_Item]) -> None:
        buf = self._buf
        n = len(buf)
        pos = 0
        try:
            if self._fresh:
                start = self._stream_start(buf)
                if start < 0:
                    return
                pos = start
            while True:
                if self._state == _ENVELOPE:
                    end = self._advance_envelope(buf, pos)
                    if end < 0:
                        return
                    out.append(self._full_item())
                    self._envelope = None
                    self._state = _CONTENT
                    pos = end
                    continue
                pos = _WS.match(buf, pos).end()  # type: ignore[union-attr]
                if pos + 1 >= n:
                    if pos < n and buf[pos] != 0x3C:
                        raise self._text_error()
                    return
                if buf[pos] != 0x3C:  # '<'
                    raise self._text_error()
                second = buf[pos + 1]
                if second == 0x21 or second == 0x3F:  # '<!' or '<?'
                    end = self._misc(buf, pos)
                    if end < 0:
                        self._wait(n - pos, "comment or processing instruction")
                        return
                    self._prolog_seen = True
                    pos = end
                    continue
                state = self._state
                if state == _CONTENT:
                    if second == 0x2F:  # '</'
                        end = self._root_end(buf, pos)
                        if end < 0:
                            return
                        self._state = _EPILOG
                        pos = end
                        continue
                    self._before_envelope()
                    if self._fast_ok:
                        if buf.startswith(CANONICAL_START, pos):
                            pos, status = self._fast_run(buf, pos, out)
                            if status == _MORE:
                                return
                            if status == _LOOK:
                                continue
                        elif n - pos < len(CANONICAL_START) and CANONICAL_START.startswith(
                            buf[pos:]
                        ):
                            return  # too little to tell which path applies
                    self._envelope = EnvelopeParser(self._root_tag, buf, pos)
                    self._state = _ENVELOPE
                    continue
                if state == _PROLOG:
                    end = self._root_start(buf, pos)
                    if end < 0:
                        return
                    pos = end
                    continue
                raise DecodeError("content after the array root element")
        finally:
            self._buf = buf[pos:] if pos else buf

    def _fast_run(self, buf: bytes, pos: int, out: list[_Item]) -> tuple[int, int]:
        """Decode consecutive canonical envelopes starting at ``pos``.

        Returns the position reached and what to do there: ``_MORE`` (wait for data),
        ``_FULL`` (this envelope needs the full parser) or ``_LOOK`` (not a canonical
        envelope start: let the state machine look).
        """
        n = len(buf)
        cap = self._cap
        skip = len(CANONICAL_START)
        decode = self._fast_decoder
        append = out.append
        while buf.startswith(CANONICAL_START, pos):
            self._before_envelope()
            close = buf.find(CLOSE_PREFIX, pos + skip)
            if close < 0 or close + _CLOSE_LEN >= n:
                self._wait(n - pos, "SOAP envelope")
                return pos, _MORE
            end = close + _CLOSE_LEN + 1
            if buf[end - 1] != 0x3E:  # not '>': e.g. '</s:Envelope >' or '</s:EnvelopeX'
                return pos, _FULL
            if end - pos > cap:
                raise self._too_large(end - pos, "SOAP envelope")
            try:
                item = decode(buf[pos:end].decode())
            except UnicodeDecodeError:
                item = None
            if item is None:
                return pos, _FULL
            append(item)  # type: ignore[arg-type]
            self._count += 1
            if type(item) is EndOfResponses:
                self._ended = True
            pos = end
        return pos, _LOOK

    def _text_error(self) -> DecodeError:
        if self._state == _PROLOG:
            return DecodeError("not XML: expected the array root element")
        if self._state == _EPILOG:
            return DecodeError("content after the array root element")
        return DecodeError("unexpected text between SOAP envelopes")

    def _wait(self, size: int, what: str) -> None:
        if size > self._cap:
            raise self._too_large(size, what)

    def _too_large(self, size: int, what: str) -> FieldTooLarge:
        return FieldTooLarge(
            f"{what} {self._count} is larger than the {self._cap}-byte cap (at least {size} bytes)"
        )

    def _stream_start(self, buf: bytes) -> int:
        """Skip a BOM and the XML declaration; -1 if more bytes are needed to tell."""
        pos = 0
        if buf.startswith(_BOM):
            pos = 3
        elif len(buf) < 3 and _BOM.startswith(buf):
            return -1
        head = buf[pos : pos + 6]
        if head.startswith(b"<?xml") and len(head) == 6 and head[5] in b" \t\r\n":
            end = buf.find(b"?>", pos)
            if end < 0:
                self._wait(len(buf) - pos, "XML declaration")
                return -1
            decl = _XML_DECL.fullmatch(buf, pos, end + 2)
            if decl is None:
                raise DecodeError("malformed XML declaration")
            encoding = decl[3]
            if encoding is not None and encoding.lower() not in (b"utf-8", b"utf8"):
                raise DecodeError(f"unsupported XML encoding {encoding.decode()!r}: use UTF-8")
            pos = end + 2
        elif len(head) < 6 and b"<?xml "[: len(head)] == head and head:
            return -1
        self._fresh = False
        self._prolog_seen = pos > 0
        return pos

    def _misc(self, buf: bytes, pos: int) -> int:
        """A comment or PI outside envelopes: its end, or -1 if incomplete."""
        head = buf[pos : pos + 4]
        if buf[pos + 1] == 0x3F:  # '<?'
            end = buf.find(b"?>", pos + 2)
            if end < 0:
                return -1
            target = re.match(rb"<\?([^ \t\r\n?]*+)", buf[pos : end + 2])
            if target is None or target[1].lower() == b"xml":
                raise DecodeError("XML declaration not at the start of the body")
            _well_formed(b"<x>" + buf[pos : end + 2] + b"</x>", "processing instruction")
            return end + 2
        if head == b"<!--":
            end = buf.find(b"-->", pos + 4)
            if end < 0:
                return -1
            _well_formed(b"<x>" + buf[pos : end + 3] + b"</x>", "comment")
            return end + 3
        if len(head) < 4 and b"<!--".startswith(head):
            return -1
        if buf.startswith(b"<![", pos):
            raise DecodeError("CDATA section outside a SOAP envelope")
        rest = buf[pos + 2 : pos + 2 + max(map(len, _KEYWORDS))].upper()
        if any(k.startswith(rest) for k in _KEYWORDS):
            return -1  # the chunk scan raises UnsafeXMLError once the marker is complete
        raise DecodeError("invalid markup declaration outside a SOAP envelope")

    def _root_start(self, buf: bytes, pos: int) -> int:
        tag_end = _TAG_END.match(buf, pos + 1)
        if tag_end is None:
            self._wait(len(buf) - pos, "array root start tag")
            return -1
        tag = buf[pos : tag_end.end()]
        name, empty = _root_tag(tag)
        self._root_tag = tag
        self._root_name = name
        # Namespace declarations on the root would change what the canonical envelope text
        # means, so the fast path is used only without them.
        self._fast_ok = self._fast and b"xmlns" not in tag
        self._state = _EPILOG if empty else _CONTENT
        self._prolog_seen = True
        return tag_end.end()

    def _root_end(self, buf: bytes, pos: int) -> int:
        close = buf.find(b">", pos)
        if close < 0:
            self._wait(len(buf) - pos, "array root end tag")
            return -1
        end = _END_TAG.fullmatch(buf, pos, close + 1)
        if end is None or end[1] != self._root_name:
            raise DecodeError("end tag does not match the array root element")
        return close + 1

    def _advance_envelope(self, buf: bytes, pos: int) -> int:
        """Feed expat the envelope's next bytes; its end offset in ``buf``, or -1."""
        envelope = self._envelope
        if envelope is None:  # pragma: no cover - a bug
            raise DecodeError("internal error: no envelope parser")
        lo = pos + envelope.fed
        hi = min(len(buf), pos + self._cap)
        closing = envelope.closing
        while lo < hi:
            # Feed up to the next possible end tag of the envelope: expat must not parse past
            # the envelope (what follows is decoded separately, maybe on the fast path).
            cut = _next_cut(buf, lo, hi, closing)
            stop = _held_back(buf, lo, cut) if cut == hi else cut
            if stop > lo and envelope.feed(buf[lo:stop]):
                return pos + envelope.end
            if stop < cut:
                break
            lo = stop
        self._wait(len(buf) - pos, "SOAP envelope")
        return -1

    # per-envelope hooks ---------------------------------------------------------------------

    def _before_envelope(self) -> None:
        if self._ended:
            raise DecodeError("SOAP envelope after EndOfResponses")

    def _full_item(self) -> _Item:
        raise NotImplementedError

    def _parsed(self) -> tuple[ET.Element, str]:
        envelope = self._envelope
        if envelope is None or envelope.envelope is None:  # pragma: no cover - a bug
            raise DecodeError("internal error: no parsed envelope")
        return envelope.envelope, envelope.body_text()

    def _describe(self) -> str:
        state = "closed" if self._closed else _STATE_NAMES[self._state]
        return (
            f"{state} envelopes={self._count} buffered={len(self._buf)}B "
            f"error={self._error is not None}"
        )


class SoapRequestArrayDecoder(_ArrayDecoder[SoapRequest]):
    """Incremental decoder of a Send Requests body (emulator side).

    Args:
        max_envelope_bytes: largest accepted envelope.
        fast_path: ``False`` forces the full parser for every envelope (for tests).

    The root may have any name; envelopes may use any prefixes and both the
    ``HPCServer2008_*`` and ``HPCPack2008_*`` header names. A missing ``MessageID`` gives
    ``message_id=""``. An empty body (no bytes, or only whitespace) holds no requests.

    Raises (from ``feed``/``close``):
        UnsafeXMLError: a DTD or entity declaration anywhere.
        DecodeError: malformed XML, not a SOAP 1.2 envelope, no ``a:Action``, a
            non-integer ``ClientInstanceIdNS``, text outside envelopes.
        FieldTooLarge: an envelope over ``max_envelope_bytes``.
        IncompletePage: (``close``) the input ended inside an envelope or before the root
            closed.
    """

    _allow_empty = True

    _fast_decoder = staticmethod(fast_request)

    def _full_item(self) -> SoapRequest:
        tree, body = self._parsed()
        self._count += 1
        return request_from_tree(tree, body)

    def __repr__(self) -> str:
        return f"<SoapRequestArrayDecoder {self._describe()}>"


class SoapResponseDecoder(_ArrayDecoder[SoapResponse | EndOfResponses]):
    """Incremental decoder of a Get Responses body (client side).

    Args:
        max_envelope_bytes: largest accepted envelope.
        fast_path: ``False`` forces the full parser for every envelope (for tests).

    ``feed(data)`` returns :class:`SoapResponse` items (``fault`` set for ``s:Fault``
    envelopes) and, at the end, :class:`EndOfResponses`. A body whose root closes without an
    end marker is legal (a ``count``-limited page). ``ended`` is true once the marker was seen;
    ``messages`` counts the responses and faults (not the marker) decoded so far.

    Raises (from ``feed``/``close``):
        UnsafeXMLError: a DTD or entity declaration anywhere.
        DecodeError: malformed XML, not a SOAP 1.2 envelope, no ``a:Action``, a malformed
            ``EndOfResponses``, an envelope after it, text outside envelopes.
        FieldTooLarge: an envelope over ``max_envelope_bytes``.
        IncompletePage: (``close``) the input ended inside an envelope or before the root
            closed.
    """

    def __init__(
        self, max_envelope_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES, *, fast_path: bool = True
    ) -> None:
        super().__init__(max_envelope_bytes, fast_path=fast_path)
        self._ended = False

    @property
    def ended(self) -> bool:
        """Whether the ``EndOfResponses`` envelope has been decoded."""
        return self._ended

    @property
    def messages(self) -> int:
        """Responses and faults (the end marker excluded) decoded so far."""
        return self._count - self._ended

    _fast_decoder = staticmethod(fast_response)

    def _full_item(self) -> SoapResponse | EndOfResponses:
        tree, body = self._parsed()
        item = response_from_tree(tree, body)
        self._count += 1
        if type(item) is EndOfResponses:
            self._ended = True
        return item

    def __repr__(self) -> str:
        return f"<SoapResponseDecoder {self._describe()} ended={self._ended}>"
