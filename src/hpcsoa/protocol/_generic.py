"""Generic-service text framing (spec §3.6): encoders and incremental decoders.

A body is a sequence of records. Each record is UTF-8 text fields separated by U+FFFF (the
bytes ``EF BF BF``) and terminated by a single ``00`` byte, the last record included::

    request  = input SEP user_data NUL
    response = reply-action SEP output SEP user_data NUL
    trailer  = "http://hpc.microsoft.com/EndOfGetResponse" SEP count SEP reason NUL

There is no escaping, so a field containing U+FFFF or NUL cannot be sent (:class:`EncodeError`
naming the field).

The decoders are incremental: ``feed(bytes)`` returns the records completed so far and
``close()`` reports input that ended inside a record. They return the same records for any
split of the input into chunks. A malformed record never loses the good records before it:
those are returned first, and the error is raised by the next ``feed()`` or ``close()``.

Speed matters here (one record per SOA request): decoding splits the whole buffer on ``00``
(the last piece is the incomplete tail) and each record on the separator, decodes each field
once, and builds the frozen models without their generated ``__init__`` (see :func:`_twin_class`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import Any, Final, Generic, TypeVar

from .._exceptions import DecodeError, EncodeError, FieldTooLarge, IncompletePage
from ._models import (
    END_OF_GET_RESPONSE_ACTION,
    GENERIC_REPLY_ACTION,
    EndOfResponses,
    EndOfResponsesReason,
    GenericRequest,
    GenericResponse,
)

__all__ = [
    "DEFAULT_MAX_RECORD_BYTES",
    "SEPARATOR",
    "TERMINATOR",
    "GenericRequestDecoder",
    "GenericResponseDecoder",
    "encode_generic_request",
    "encode_generic_request_list",
    "encode_generic_requests",
    "encode_generic_response",
    "encode_generic_trailer",
    "verify_end_count",
]

SEPARATOR: Final = b"\xef\xbf\xbf"
"""Field separator: U+FFFF encoded as UTF-8."""
TERMINATOR: Final = b"\x00"
"""Record terminator, written after every record including the last."""
DEFAULT_MAX_RECORD_BYTES: Final = 64 * 1024 * 1024

_SEP_CHAR: Final = "\uffff"
_REPLY_BYTES: Final = GENERIC_REPLY_ACTION.encode()
_END_BYTES: Final = END_OF_GET_RESPONSE_ACTION.encode()
_REASONS: Final = {r.wire_name.encode(): r for r in EndOfResponsesReason}

_Item = TypeVar("_Item")


# --- building frozen models quickly -------------------------------------------------------------


def _twin_class(cls: type[object], sample: tuple[object, ...]) -> type[object] | None:
    """A plain slotted class with ``cls``'s exact slot layout, or ``None`` if unusable.

    The frozen dataclasses of ``_models`` set every field through ``object.__setattr__`` in a
    generated ``__init__``, which costs more than decoding a generic record. An instance of a
    plain slotted twin can be filled with ordinary (specialised) attribute stores and then
    have its ``__class__`` switched to the model: CPython allows that only between classes
    with identical slots, so the result is a genuine, complete model instance. The trick is
    verified here once (equal to a normally built instance); if the model ever grows a
    ``__post_init__`` or a different layout, callers fall back to the real constructor.
    """
    slots = getattr(cls, "__slots__", None)
    if not isinstance(slots, tuple) or len(slots) != len(sample) or hasattr(cls, "__post_init__"):
        return None
    twin = type(f"_Mutable{cls.__name__}", (), {"__slots__": slots})
    try:
        probe = twin()
        for name, value in zip(slots, sample, strict=True):
            setattr(probe, name, value)
        probe.__class__ = cls
    except TypeError:  # pragma: no cover - layouts differ
        return None
    return twin if type(probe) is cls and probe == cls(*sample) else None


# The hot loops store these exact attribute names on the twins.
_RESPONSE_TWIN: Final = (
    _twin_class(GenericResponse, ("a", "o", "u"))
    if GenericResponse.__slots__ == ("action", "output", "user_data")
    else None
)
_END_TWIN: Final = (
    _twin_class(EndOfResponses, (1, EndOfResponsesReason.SUCCESS))
    if EndOfResponses.__slots__ == ("count", "reason")
    else None
)
_REQUEST_TWIN: Final = (
    _twin_class(GenericRequest, ("i", "u"))
    if GenericRequest.__slots__ == ("input", "user_data")
    else None
)


# --- encoding ----------------------------------------------------------------------------------


def _forbidden(value: str, field: str) -> EncodeError | None:
    if _SEP_CHAR in value:
        return EncodeError(
            f"{field} contains U+FFFF (index {value.index(_SEP_CHAR)}), the generic-service "
            "field separator; the framing has no escaping"
        )
    if "\x00" in value:
        return EncodeError(
            f"{field} contains NUL (index {value.index(chr(0))}), the generic-service record "
            "terminator; the framing has no escaping"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return EncodeError(
            f"{field} contains a lone surrogate (index {exc.start}) that UTF-8 cannot encode"
        )
    return None


def _check_fields(pairs: Iterable[tuple[str, str]]) -> None:
    for value, field in pairs:
        error = _forbidden(value, field)
        if error is not None:
            raise error


def encode_generic_request(input: str, user_data: str = "") -> bytes:
    """One request record: ``input EF BF BF user_data 00``.

    Raises:
        EncodeError: a field contains U+FFFF, NUL or a lone surrogate (the message names
            ``input`` or ``user_data``).
    """
    # ``"\uffff" in s`` is O(1) for Latin-1 strings and NUL is a memchr: cheap enough to check
    # every request before encoding once.
    if _SEP_CHAR in input or "\x00" in input or _SEP_CHAR in user_data or "\x00" in user_data:
        _check_fields(((input, "input"), (user_data, "user_data")))
    try:
        return f"{input}\uffff{user_data}\x00".encode()
    except UnicodeEncodeError:
        _check_fields(((input, "input"), (user_data, "user_data")))
        raise  # pragma: no cover - _check_fields always raises here


def encode_generic_requests(items: Iterable[GenericRequest]) -> bytes:
    """Several request records, in order, as one body.

    Raises:
        EncodeError: an item's field contains U+FFFF, NUL or a lone surrogate; the message
            names the field and the item's index.
    """
    items = list(items)
    text = "".join([f"{item.input}\uffff{item.user_data}\x00" for item in items])
    n = len(items)
    if text.count(_SEP_CHAR) == n and text.count("\x00") == n:
        try:
            return text.encode()
        except UnicodeEncodeError:
            pass
    for index, item in enumerate(items):
        for value, field in ((item.input, "input"), (item.user_data, "user_data")):
            error = _forbidden(value, field)
            if error is not None:
                raise EncodeError(f"item {index}: {error}")
    raise AssertionError("unreachable")  # pragma: no cover


def encode_generic_response(action: str, output: str, user_data: str = "") -> bytes:
    """One response record: ``action EF BF BF output EF BF BF user_data 00`` (emulator side).

    Raises:
        EncodeError: a field contains U+FFFF, NUL or a lone surrogate.
    """
    fields = ((action, "action"), (output, "output"), (user_data, "user_data"))
    # Same fast path as encode_generic_request: this runs once per response in the emulator.
    if (
        _SEP_CHAR in output
        or "\x00" in output
        or _SEP_CHAR in user_data
        or "\x00" in user_data
        or _SEP_CHAR in action
        or "\x00" in action
    ):
        _check_fields(fields)
    try:
        return f"{action}\uffff{output}\uffff{user_data}\x00".encode()
    except UnicodeEncodeError:
        _check_fields(fields)
        raise  # pragma: no cover - _check_fields always raises here


def encode_generic_trailer(eor: EndOfResponses) -> bytes:
    """The ``EndOfGetResponse`` trailer record carrying ``count`` and ``reason``.

    Raises:
        EncodeError: ``count`` is negative.
    """
    if eor.count < 0:
        raise EncodeError(f"EndOfResponses count must not be negative, got {eor.count}")
    reason = EndOfResponsesReason(eor.reason).wire_name
    return f"{END_OF_GET_RESPONSE_ACTION}\uffff{eor.count}\uffff{reason}\x00".encode()


def verify_end_count(eor: EndOfResponses, delivered: int) -> None:
    """Check an end-of-responses marker against the messages delivered since the last reset.

    ``EndOfResponses.count`` is cumulative since the last ``reset=true`` call (spec §4.6 item
    3), so only the caller, who tracks that total across pages, can check it.

    Raises:
        IncompletePage: the counts differ (messages were lost or duplicated).
    """
    if eor.count != delivered:
        raise IncompletePage(
            f"EndOfResponses reports {eor.count} messages since the last reset but "
            f"{delivered} were delivered"
        )


# --- decoding ----------------------------------------------------------------------------------


def _field_error(record: bytes, index: int, expected: int) -> DecodeError:
    fields = record.split(SEPARATOR)
    if len(fields) != expected:
        return DecodeError(
            f"generic record {index} has {len(fields)} fields, expected {expected} "
            f"(separated by EF BF BF)"
        )
    for field in fields:
        try:
            field.decode("utf-8")
        except UnicodeDecodeError as exc:
            return DecodeError(f"generic record {index} is not valid UTF-8: {exc.reason}")
    return DecodeError(f"generic record {index} is malformed")  # pragma: no cover


class _RecordDecoder(Generic[_Item]):
    """Buffering shared by both decoders: find complete records, keep the partial tail.

    State lives in class-level defaults until it changes: a decoder is often made for one
    short body, so construction must be cheap.
    """

    _kind = "record"
    _cap = DEFAULT_MAX_RECORD_BYTES
    _buf = b""
    _error: DecodeError | None = None
    _closed = False
    _index = 0  # records decoded so far (for messages and error texts)
    _ended = False  # the response trailer was decoded (responses only)

    def __init__(self, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> None:
        if max_record_bytes != DEFAULT_MAX_RECORD_BYTES:
            if max_record_bytes < 1:
                raise ValueError("max_record_bytes must be positive")
            self._cap = max_record_bytes

    def feed(self, data: bytes | bytearray | memoryview) -> list[_Item]:
        """Decode the records completed by ``data`` (see the class docstring for errors)."""
        if self._error is not None:
            raise self._error
        if self._closed:
            raise DecodeError(f"{type(self).__name__}.feed() called after close()")
        if not data:
            return []
        if self._ended:
            raise self._fail(DecodeError("data after the EndOfGetResponse trailer"))
        if type(data) is not bytes:
            data = bytes(data)
        buf = self._buf + data if self._buf else data
        if TERMINATOR not in data:  # the buffered part never holds a terminator
            self._buf = buf
            if len(buf) > self._cap:
                raise self._fail(self._too_large(len(buf)))
            return []
        # Split the whole buffer at once (no copies): the last piece is the incomplete tail.
        records = buf.split(TERMINATOR)
        rest = records.pop()
        out: list[_Item] = []
        self._buf = b""
        try:
            self._decode(self._capped(records, len(buf)), out)
            if rest:
                self._check_rest(rest)
        except DecodeError as exc:
            self._error = exc
            if not out:
                raise
            return out  # the error is raised by the next call
        self._buf = rest
        return out

    def close(self) -> None:
        """Signal the end of input.

        Raises:
            IncompletePage: the input ended inside a record.
            DecodeError: an error found by the last ``feed()`` that returned records.
        """
        if self._error is not None:
            raise self._error
        self._closed = True
        if self._buf:
            size = len(self._buf)
            self._buf = b""
            raise self._fail(
                IncompletePage(f"input ended inside a generic {self._kind} ({size} bytes)")
            )

    def _fail(self, exc: DecodeError) -> DecodeError:
        self._error = exc
        return exc

    def _too_large(self, size: int) -> FieldTooLarge:
        return FieldTooLarge(
            f"generic {self._kind} {self._index} is larger than the {self._cap}-byte cap "
            f"(at least {size} bytes)"
        )

    def _check_rest(self, rest: bytes) -> None:
        if len(rest) > self._cap:
            raise self._too_large(len(rest))

    def _capped(self, records: list[bytes], size: int) -> tuple[list[bytes], DecodeError | None]:
        """``records`` truncated before the first one over the cap, and that error."""
        if size > self._cap:  # only then can a single record be over the cap
            for i, record in enumerate(records):
                if len(record) > self._cap:
                    return records[:i], FieldTooLarge(
                        f"generic {self._kind} {self._index + i} is {len(record)} bytes, "
                        f"over the {self._cap}-byte cap"
                    )
        return records, None

    def _decode(self, capped: tuple[list[bytes], DecodeError | None], out: list[_Item]) -> None:
        raise NotImplementedError


class GenericRequestDecoder(_RecordDecoder[GenericRequest]):
    """Incremental decoder of a Send Requests body in generic framing (emulator side).

    Args:
        max_record_bytes: largest accepted record (without its terminator).

    ``feed(data)`` returns the :class:`GenericRequest` records completed by ``data``.

    Raises (from ``feed``/``close``):
        DecodeError: a record without exactly two fields, or not valid UTF-8.
        FieldTooLarge: a record over ``max_record_bytes``.
        IncompletePage: (``close``) the input ended inside a record.
    """

    _kind = "request record"

    def _decode(
        self, capped: tuple[list[bytes], DecodeError | None], out: list[GenericRequest]
    ) -> None:
        records, too_large = capped
        twin = _REQUEST_TWIN
        if twin is not None:
            # Hot loop: no bookkeeping; the first problem hands over to the careful loop.
            cls = GenericRequest
            append = out.append
            separator = SEPARATOR
            try:
                for record in records:
                    text, user_data = record.split(separator)
                    obj: Any = twin()
                    obj.input = text.decode()
                    obj.user_data = user_data.decode()
                    obj.__class__ = cls
                    append(obj)
            except ValueError:  # wrong field count or UnicodeDecodeError
                pass
        for i in range(len(out), len(records)):
            try:
                text, user_data = records[i].split(SEPARATOR)
                out.append(GenericRequest(text.decode(), user_data.decode()))
            except ValueError:
                self._index += i
                raise _field_error(records[i], self._index, 2) from None
        self._index += len(records)
        if too_large is not None:
            raise too_large

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<GenericRequestDecoder {state} records={self._index} "
            f"buffered={len(self._buf)}B error={self._error is not None}>"
        )


ResponseFields = tuple[str, str, str]
"""``(action, output, user_data)`` of one generic response record, as decoded text."""


class _ResponseDecoderBase(_RecordDecoder[_Item]):
    """Framing, trailer and error handling of a Get Responses body (generic framing); the
    subclasses choose what a record becomes (``_fast_loop`` and ``_build``)."""

    _kind = "response record"

    @property
    def ended(self) -> bool:
        """Whether the ``EndOfGetResponse`` trailer has been decoded."""
        return self._ended

    @property
    def messages(self) -> int:
        """Responses (fault records included, trailer excluded) decoded so far."""
        return self._index

    def _fast_loop(
        self, records: list[bytes], out: list[_Item]
    ) -> tuple[bytes, bytes] | None:  # pragma: no cover - overridden
        """Decode records into ``out`` until the trailer (returned as its two fields), the
        end, or a malformed record (``ValueError``, left to the careful loop)."""
        raise NotImplementedError

    def _build(self, action: str, output: str, user_data: str) -> _Item:  # pragma: no cover
        raise NotImplementedError

    def _decode(
        self,
        capped: tuple[list[bytes], DecodeError | None],
        out: list[_Item],
    ) -> None:
        records, too_large = capped
        trailer = None
        # Hot loop: replies, fault records and the trailer; a malformed record hands over
        # to the careful loop below, which decodes from there and reports the problem.
        try:
            trailer = self._fast_loop(records, out)
        except ValueError:  # wrong field count or UnicodeDecodeError
            pass
        done = len(out)
        if trailer is None:
            build = self._build
            for i in range(done, len(records)):
                try:
                    action, output, user_data = records[i].split(SEPARATOR)
                    if action == _END_BYTES:
                        trailer = (output, user_data)
                        done = i
                        break
                    out.append(build(action.decode(), output.decode(), user_data.decode()))
                except ValueError:  # wrong field count or UnicodeDecodeError
                    self._index += i
                    raise _field_error(records[i], self._index, 3) from None
            else:
                done = len(records)
        self._index += done
        if trailer is not None:
            out.append(self._trailer(*trailer))  # type: ignore[arg-type]
            if done + 1 < len(records) or too_large is not None:
                raise DecodeError("data after the EndOfGetResponse trailer")
        elif too_large is not None:
            raise too_large

    def _trailer(self, count: bytes, reason: bytes) -> EndOfResponses:
        # bytes.isdigit() accepts ASCII digits only; the length cap keeps int() cheap.
        if not count.isdigit() or len(count) > 18:
            raise DecodeError(f"EndOfGetResponse count is not a decimal integer: {count!r:.40}")
        wire_reason = _REASONS.get(reason)
        if wire_reason is None:
            raise DecodeError(
                f"EndOfGetResponse reason {reason!r:.40} is not Success, ClientPurged or "
                "ClientTimeout"
            )
        self._ended = True
        twin = _END_TWIN
        if twin is None:  # pragma: no cover - only if the model's layout changes
            return EndOfResponses(int(count), wire_reason)
        obj: Any = twin()
        obj.count = int(count)
        obj.reason = wire_reason
        obj.__class__ = EndOfResponses
        return obj  # type: ignore[no-any-return]

    def _check_rest(self, rest: bytes) -> None:
        if self._ended:
            raise DecodeError("data after the EndOfGetResponse trailer")
        super()._check_rest(rest)

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("ended" if self._ended else "open")
        return (
            f"<{type(self).__name__} {state} messages={self._index} "
            f"buffered={len(self._buf)}B error={self._error is not None}>"
        )


class GenericResponseDecoder(_ResponseDecoderBase[GenericResponse | EndOfResponses]):
    """Incremental decoder of a Get Responses body in generic framing (client side).

    Args:
        max_record_bytes: largest accepted record (without its terminator).

    ``feed(data)`` returns the :class:`GenericResponse` records completed by ``data`` and, at
    the end, the :class:`EndOfResponses` trailer. A body that ends without the trailer is legal
    (a ``count``-limited page). ``ended`` is true once the trailer was seen; ``messages`` counts
    the responses (not the trailer) decoded so far.

    Raises (from ``feed``/``close``):
        DecodeError: a record without exactly three fields, invalid UTF-8, a trailer whose
            count is not a decimal integer or whose reason is not ``Success``,
            ``ClientPurged`` or ``ClientTimeout``, or any byte after the trailer.
        FieldTooLarge: a record over ``max_record_bytes``.
        IncompletePage: (``close``) the input ended inside a record.
    """

    _build = GenericResponse

    def _fast_loop(
        self, records: list[bytes], out: list[GenericResponse | EndOfResponses]
    ) -> tuple[bytes, bytes] | None:
        twin = _RESPONSE_TWIN
        if twin is None:  # pragma: no cover - only if the model's layout changes
            return None
        cls = GenericResponse
        reply_bytes = _REPLY_BYTES
        end_bytes = _END_BYTES
        reply = GENERIC_REPLY_ACTION
        append = out.append
        separator = SEPARATOR
        for record in records:
            action, output, user_data = record.split(separator)
            if action == reply_bytes:
                action_text = reply
            elif action == end_bytes:
                return (output, user_data)
            else:
                action_text = action.decode()
            obj: Any = twin()
            obj.action = action_text
            obj.output = output.decode()
            obj.user_data = user_data.decode()
            obj.__class__ = cls
            append(obj)
        return None


class GenericResponseFieldsDecoder(_ResponseDecoderBase[ResponseFields | EndOfResponses]):
    """:class:`GenericResponseDecoder` that returns each response as a plain
    ``(action, output, user_data)`` tuple of ``str`` instead of a :class:`GenericResponse`.

    Same framing, validation and errors. Meant for hot client loops that turn records into
    their own result objects at once: tuples of strings cost less to build, and the garbage
    collector stops tracking them, where model instances would keep it busy.
    """

    @staticmethod
    def _build(action: str, output: str, user_data: str) -> ResponseFields:
        return (action, output, user_data)

    def _fast_loop(
        self, records: list[bytes], out: list[ResponseFields | EndOfResponses]
    ) -> tuple[bytes, bytes] | None:
        reply_bytes = _REPLY_BYTES
        end_bytes = _END_BYTES
        reply = GENERIC_REPLY_ACTION
        append = out.append
        separator = SEPARATOR
        for record in records:
            action, output, user_data = record.split(separator)
            if action == reply_bytes:
                append((reply, output.decode(), user_data.decode()))
            elif action == end_bytes:
                return (output, user_data)
            else:
                append((action.decode(), output.decode(), user_data.decode()))
        return None


# --- bulk encoding (client hot loop) -------------------------------------------------------------


def encode_generic_request_list(inputs: Sequence[str], user_data: Sequence[str]) -> bytes:
    """The request records ``inputs[i] EF BF BF user_data[i] 00``, in order, as one body.

    Equal to ``b"".join(map(encode_generic_request, inputs, user_data))`` and raising the
    same errors, but cheaper: the fields are checked once over their concatenation (a field
    holds U+FFFF or NUL exactly when the concatenation does) and the body is built by a
    single join and encode.

    Raises:
        ValueError: the two sequences differ in length.
        TypeError: an item is not a ``str`` (the message names the item and field).
        EncodeError: a field contains U+FFFF, NUL or a lone surrogate; the message names the
            item's index and the field.
    """
    n = len(inputs)
    if len(user_data) != n:
        raise ValueError(f"{n} inputs but {len(user_data)} user data")
    try:
        every_input = "".join(inputs)
        every_key = "".join(user_data)
    except TypeError:
        _raise_item_error(inputs, user_data)
        raise  # pragma: no cover - _raise_item_error always raises here
    if (
        _SEP_CHAR in every_input
        or "\x00" in every_input
        or _SEP_CHAR in every_key
        or "\x00" in every_key
    ):
        _raise_item_error(inputs, user_data)
    parts = [_SEP_CHAR] * (4 * n)  # input SEP user_data NUL, filled by C-level slices
    parts[0::4] = inputs
    parts[2::4] = user_data
    parts[3::4] = repeat("\x00", n)
    try:
        return "".join(parts).encode()
    except UnicodeEncodeError:
        _raise_item_error(inputs, user_data)
        raise  # pragma: no cover - _raise_item_error always raises here


def _raise_item_error(inputs: Sequence[str], user_data: Sequence[str]) -> None:
    """Raise the error of the first bad item (``TypeError`` or :class:`EncodeError`)."""
    for index, (value, key) in enumerate(zip(inputs, user_data, strict=True)):
        for item, field in ((value, "input"), (key, "user_data")):
            if not isinstance(item, str):
                raise TypeError(f"item {index}: {field} must be str, not {type(item).__name__}")
            error = _forbidden(item, field)
            if error is not None:
                raise EncodeError(f"item {index}: {error}")
