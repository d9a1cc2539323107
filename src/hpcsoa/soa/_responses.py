"""Reading a batch's responses: Get Responses pages, exactly once (spec §4.6, research §3.3).

Theory of operation. Get Responses is a cursor with "acknowledge on the next call": the
responses one call delivers stay cached on the broker until the next call with
``reset=false`` (which deletes them and continues) or ``reset=true`` (which puts them back and
rewinds to the oldest unacknowledged response; durable sessions rewind to the first one).
So the reader

1. opens its first page with ``reset=true`` (whatever an earlier reader left unacknowledged,
   including responses it parsed but never handed out, comes back);
2. asks for pages of ``count`` messages and parses each chunk as it arrives (nothing waits
   for the end of the body);
3. calls a page *clean* when it ended with ``EndOfResponses`` (whose cumulative ``Count`` must
   equal the messages received since the last reset) or after exactly ``count`` messages;
   the next page then uses ``reset=false``, which acknowledges the clean page;
4. calls a page *broken* for anything else (reset or truncated connection, a body cut
   inside a record, a garbled page, a 5xx, a count mismatch, an idle timeout): the
   connection is dropped and the next page uses ``reset=true``, after a backoff;
5. drops responses already handed out, recognised by key: the user data in generic mode
   (the batch gives every request a unique decimal id unless the user set one), the
   ``RelatesTo`` message id in SOAP mode (stable per request). Keys handed out are kept
   compactly: the batch's own numeric ids as a low-water mark plus the few above it.

A page is retried at most ``RetryPolicy.max_attempts`` times in a row without progress, then
:class:`~hpcsoa.RetryError` is raised from the last failure.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .._exceptions import (
    ApiError,
    ClientClosed,
    HpcError,
    ProtocolError,
    RetryError,
    ServerError,
    SessionError,
    StreamConsumed,
    TransportError,
)
from ..protocol import EndOfResponses, EndOfResponsesReason, Operation
from ..protocol._generic import GenericResponseDecoder, GenericResponseFieldsDecoder
from ..protocol._soap import SoapResponseDecoder
from ._requests import Record, Response

if TYPE_CHECKING:
    from ..transport._aiohttp import _AiohttpStream
    from ._batch import Batch

__all__ = ["DeliveredKeys", "ResponseStream"]

logger = logging.getLogger("hpcsoa.soa")

_new_response = Response.__new__


Key = tuple[str, int] | str


class _Numbers:
    """Delivered numbers of one key space: everything below ``low``, plus ``above``."""

    __slots__ = ("above", "low")

    def __init__(self) -> None:
        self.low = 0
        self.above: set[int] = set()

    def compact(self) -> None:
        above = self.above
        low = self.low
        if low in above:
            while low in above:
                above.remove(low)
                low += 1
            self.low = low


class DeliveredKeys:
    """The keys of responses already handed out, kept in O(outstanding) memory.

    Numbered keys ``(space, n)`` (the ids a batch object gives its requests, see
    :func:`numbered_key`) are stored per space as a low-water mark (every number below it
    was delivered) plus the few delivered numbers above it: responses complete roughly in
    request order, so that set stays small. Other keys go to a plain set.
    """

    __slots__ = ("_other", "_spaces")

    def __init__(self) -> None:
        self._spaces: dict[str, _Numbers] = {}
        self._other: set[str] = set()

    def space(self, name: str) -> _Numbers:
        numbers = self._spaces.get(name)
        if numbers is None:
            numbers = self._spaces[name] = _Numbers()
        return numbers

    def __contains__(self, key: Key) -> bool:
        if isinstance(key, str):
            return key in self._other
        numbers = self._spaces.get(key[0])
        return numbers is not None and (key[1] < numbers.low or key[1] in numbers.above)

    def add(self, key: Key) -> None:
        if isinstance(key, str):
            self._other.add(key)
            return
        numbers = self.space(key[0])
        if key[1] >= numbers.low:
            numbers.above.add(key[1])
            numbers.compact()

    def compact(self) -> None:
        """Raise the low-water marks over numbers now contiguous (after bulk adds)."""
        for numbers in self._spaces.values():
            numbers.compact()

    def discard(self, key: Key) -> None:
        """Forget ``key`` (a response parsed but never handed out)."""
        if isinstance(key, str):
            self._other.discard(key)
            return
        numbers = self._spaces.get(key[0])
        if numbers is None:
            return
        n = key[1]
        if n in numbers.above:
            numbers.above.remove(n)
        elif n < numbers.low:
            # Lower the mark to ``n``; the numbers between stay delivered, now as members.
            numbers.above.update(range(n + 1, numbers.low))
            numbers.low = n

    def clear(self) -> None:
        self._spaces.clear()
        self._other.clear()

    def __len__(self) -> int:
        return sum(n.low + len(n.above) for n in self._spaces.values()) + len(self._other)

    def footprint(self) -> int:
        """Number of keys actually stored (what memory grows with)."""
        return sum(len(n.above) for n in self._spaces.values()) + len(self._other)


def numbered_key(text: str) -> Key:
    """``"space:n"`` (or a bare ``"n"``) with a canonical decimal ``n`` → ``(space, n)``.

    Anything else (a user's own user data) is its own key. Only canonical decimals are
    numbered (no sign, no leading zero, ASCII digits), so two different strings never map
    to the same key.
    """
    space, sep, num = text.rpartition(":")
    if (
        num.isdigit()
        and num.isascii()
        and (len(num) == 1 or num[0] != "0")
        and len(num) < 18
        and (space or not sep)
    ):
        return (space, int(num))
    return text


def generic_key(event: Record) -> Key:
    """De-duplication key of a generic response: its user data."""
    user_data = event[2] if type(event) is tuple else event.user_data  # type: ignore[union-attr]
    return numbered_key(user_data or "")


def admit_generic(delivered: DeliveredKeys, records: list[Any], buffer: deque[Any]) -> int:
    """Append to ``buffer`` the generic records whose user data was not delivered before,
    marking them delivered; return how many were dropped as duplicates."""
    if not records:
        return 0
    keys: list[str] = [r[2] for r in records]
    # Fast path: a run of consecutive numbered ids ("space:n", "space:n+1", ...), none
    # delivered yet: how a batch's own responses normally arrive. Equality with the expected
    # strings also proves every id canonical.
    space, _, num = keys[0].rpartition(":")
    if space and num.isdigit() and num.isascii() and len(num) < 18:
        first = int(num)
        end = first + len(keys)
        numbers = delivered.space(space)
        if (
            first >= numbers.low
            and keys[-1] == f"{space}:{end - 1}"  # cheap first: out-of-order runs stop here
            and keys == [f"{space}:{n}" for n in range(first, end)]
            and (not numbers.above or numbers.above.isdisjoint(range(first, end)))
        ):
            if first == numbers.low:
                numbers.low = end
            else:
                numbers.above.update(range(first, end))
            numbers.compact()
            buffer.extend(records)
            return 0
    return admit_each(delivered, records, keys, buffer)


def admit_each(
    delivered: DeliveredKeys, records: list[Any], keys: list[str], buffer: deque[Any]
) -> int:
    """:func:`admit_generic` one record at a time (any mix of keys)."""
    other = delivered._other
    append = buffer.append
    dropped = 0
    # numbered_key() inlined, with the space of the previous key cached.
    last: str | None = None
    low = 0
    above: set[int] = set()
    for record, k in zip(records, keys, strict=True):
        k = k or ""
        space, sep, num = k.rpartition(":")
        if (
            num.isdigit()
            and num.isascii()
            and (len(num) == 1 or num[0] != "0")
            and len(num) < 18
            and (space or not sep)
        ):
            if space != last:
                numbers = delivered.space(space)
                last, low, above = space, numbers.low, numbers.above
            n = int(num)
            if n < low or n in above:
                dropped += 1
                continue
            above.add(n)
        elif k:
            if k in other:
                dropped += 1
                continue
            other.add(k)
        append(record)  # (an empty key cannot be de-duplicated)
    delivered.compact()
    return dropped


class PageReader:
    """Get Responses pages of one batch (steps 1–4 of the module docstring; no de-duplication).

    Args:
        batch: the batch to read.
        page_size: ``count`` of each page (``None``: ``-1``, one page until the end).
        action: only responses to requests with this action (``""``: all).
        client_data: echoed in every SOAP response's callback-id header.
        fields: (generic batches) return each response as an ``(action, output,
            user_data)`` tuple instead of a :class:`GenericResponse`.
    """

    def __init__(
        self,
        batch: Batch,
        *,
        page_size: int | None,
        action: str = "",
        client_data: str = "",
        fields: bool = False,
    ) -> None:
        self._batch = batch
        self._fields = fields
        self._page_size = page_size
        self._action = action
        self._client_data = client_data
        self._stream: _AiohttpStream | None = None
        self._decoder: (
            GenericResponseDecoder | GenericResponseFieldsDecoder | SoapResponseDecoder | None
        ) = None
        self._reset = True
        self._since_reset = 0
        self._page_messages = 0
        self._page_limit = -1
        self._failures = 0
        self._closed = False
        self.ended = False
        self.end_reason: EndOfResponsesReason | None = None
        self.pages = 0
        self.resets = 0

    @property
    def is_open(self) -> bool:
        return self._stream is not None

    def progress(self) -> None:
        """Something new was delivered: the next failure starts a fresh retry budget."""
        self._failures = 0

    async def _open(self, limit: int | None) -> _AiohttpStream:
        batch = self._batch
        count = self._page_size if self._page_size is not None else -1
        if limit is not None and (count == -1 or limit < count):
            count = max(1, limit)
        reset = self._reset
        query = (
            ("genericservice", "true" if batch.generic else "false"),
            ("action", self._action),
            ("clientdata", self._client_data),
            ("count", str(count)),
            ("reset", "true" if reset else "false"),
        )
        session = batch.session
        try:
            stream = await session._requester.open_stream(
                Operation.GET_RESPONSES,
                path_params={"session_id": session.id, "batch": batch.name},
                query=query,
                authority=session.broker_node,
                # reset=false acknowledges the previous page: repeating it after an
                # ambiguous failure could acknowledge responses nobody received.
                idempotent=reset,
                on_retry=batch._count_retry,
            )
        except ApiError as exc:
            error = batch._clearer(exc)
            if error is exc:
                raise
            raise error from exc
        if self._closed:  # closed while opening (another task): do not keep the connection
            await stream.aclose()
            raise ClientClosed("the response stream was closed")
        self._stream = stream
        if not batch.generic:
            self._decoder = SoapResponseDecoder()
        elif self._fields:
            self._decoder = GenericResponseFieldsDecoder()
        else:
            self._decoder = GenericResponseDecoder()
        if reset:
            self._since_reset = 0
            self.resets += 1
        self._reset = False
        self._page_messages = 0
        self._page_limit = count
        self.pages += 1
        logger.debug(
            "batch %r: Get Responses page %d (count=%d, reset=%s)",
            batch.name,
            self.pages,
            count,
            reset,
        )
        return stream

    async def read(self, limit: int | None = None) -> list[Any]:
        """Decoded records (responses and faults) from the next chunk(s), opening pages as
        needed: ``GenericResponse`` / ``SoapResponse`` records, or ``(action, output,
        user_data)`` tuples with ``fields``.

        Returns ``[]`` only once the stream has ended (``ended`` is then true).
        ``limit`` caps the ``count`` of a newly opened page.

        Raises:
            RetryError: pages kept failing without progress.
            HpcError: opening a page failed for good (e.g. the session is gone).
        """
        batch = self._batch
        while not self.ended:
            if self._closed:
                raise ClientClosed("the response stream was closed")
            stream = self._stream
            if stream is None:
                try:
                    stream = await self._open(limit)
                except (TransportError, ServerError) as exc:
                    # The call may have reached the broker (and, with reset=false, acked
                    # the previous page): only a rewind is safe now.
                    await self._broken(exc)
                    continue
            decoder = self._decoder
            assert decoder is not None
            try:
                chunk = await stream.read_chunk()
                if chunk:
                    batch._bytes_received(len(chunk))
                    events = decoder.feed(chunk)
                else:
                    decoder.close()
                    events = []
            except (TransportError, ProtocolError) as exc:
                if self._ended_locally():  # finish() (our purge) while this read waited
                    return []
                if self._closed:
                    raise ClientClosed("the response stream was closed") from exc
                await self._broken(exc)
                continue
            eor: EndOfResponses | None = None
            if events:
                last = events[-1]
                if isinstance(last, EndOfResponses):  # the end marker is always last
                    eor = last
                    events.pop()
            out: list[Any] = events
            n = len(out)
            self._page_messages += n
            self._since_reset += n
            if eor is not None:
                await self._end(eor)
            elif not chunk:
                if self._page_limit != -1 and self._page_messages >= self._page_limit:
                    await self._clean_page()
                else:
                    await self._broken(
                        ProtocolError(
                            f"page ended after {self._page_messages} of "
                            f"{self._page_limit} messages without EndOfResponses"
                        )
                    )
            if out:
                return out
        return []

    async def _end(self, eor: EndOfResponses) -> None:
        if eor.reason is EndOfResponsesReason.SUCCESS and eor.count != self._since_reset:
            await self._broken(
                ProtocolError(
                    f"EndOfResponses counts {eor.count} messages since the last reset, "
                    f"{self._since_reset} were received"
                )
            )
            return
        self.ended = True
        self.end_reason = eor.reason
        await self._drop_stream()

    async def _clean_page(self) -> None:
        self._failures = 0
        await self._drop_stream()

    async def _broken(self, exc: HpcError) -> None:
        """Drop the page; the next one rewinds (reset=true) after a backoff."""
        await self._drop_stream()
        self._reset = True
        self._failures += 1
        batch = self._batch
        policy = batch.session._requester.config.retry
        attempts = 1 if policy is None else policy.max_attempts
        if self._failures >= attempts:
            if policy is None or attempts == 1:
                raise exc
            raise RetryError(
                f"Get Responses of batch {batch.name!r} failed {self._failures} times in a row; "
                f"last error: {type(exc).__name__}: {exc}",
                attempts=self._failures,
                operation=Operation.GET_RESPONSES.value,
            ) from exc
        assert policy is not None
        delay = policy.backoff(self._failures)
        logger.warning(
            "batch %r: response page broken (%s: %s); reopening with reset=true in %.2fs",
            batch.name,
            type(exc).__name__,
            exc,
            delay,
        )
        batch._count_retry(exc)
        if delay > 0:
            await (policy.sleep if policy.sleep is not None else asyncio.sleep)(delay)

    async def _drop_stream(self) -> None:
        stream, self._stream = self._stream, None
        self._decoder = None
        if stream is not None:
            await stream.aclose()

    def _ended_locally(self) -> bool:
        return self.ended

    def finish(self, reason: EndOfResponsesReason) -> None:
        """End the stream locally (e.g. after our own purge) and drop the connection."""
        self.ended = True
        self.end_reason = reason
        self.close_now()

    def close_now(self) -> None:
        """Synchronous close (from ``__del__`` or a cancelled task): drop the connection."""
        self._closed = True
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()

    async def aclose(self) -> None:
        self._closed = True
        await self._drop_stream()


class ResponseStream:
    """The responses of a batch, each once: ``async for r in batch.responses()``.

    Also an async context manager (``async with batch.responses() as stream``), which closes
    the underlying connection deterministically on exit. Breaking out of a bare ``async for``
    closes it too, as soon as the stream object is garbage collected. Responses that were
    parsed but never handed out are not lost: the broker still holds them unacknowledged and
    the next reader of the batch gets them.

    Attributes:
        received: responses handed out by this stream.
        end_reason: why the stream ended (``None`` while it runs or when it stopped at
            ``count``).
    """

    def __init__(
        self,
        batch: Batch,
        *,
        count: int | None,
        page_size: int | None,
        action: str,
        client_data: str,
    ) -> None:
        self._batch = batch
        self._count = count
        self._reader = PageReader(
            batch, page_size=page_size, action=action, client_data=client_data, fields=True
        )
        self._buffer: deque[Record] = deque()
        self._reported = 0
        self._buffered = 0  # responses ever put in the buffer (received = this - len(buffer))
        self._iterating = False
        self._closed = False
        self._finished = False
        self.end_reason: EndOfResponsesReason | None = None
        batch._streams.add(self)

    @property
    def is_closed(self) -> bool:
        return self._closed

    def __aiter__(self) -> ResponseStream:
        if self._iterating or self._finished:
            raise StreamConsumed(
                "this response stream was already iterated; responses are handed out once. "
                "Call batch.responses() again for a new stream (it resumes with whatever the "
                "broker has not had acknowledged)"
            )
        self._iterating = True
        return self

    async def __aenter__(self) -> ResponseStream:
        if self._closed:
            raise ClientClosed("this response stream is closed")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def __anext__(self) -> Response:
        buffer = self._buffer
        if not buffer:
            await self._fill()
            if not buffer:
                raise StopAsyncIteration
        response = _new_response(Response)  # the buffer holds records, never models
        response._event = buffer.popleft()
        return response

    @property
    def received(self) -> int:
        """Responses handed out by this stream so far."""
        return self._buffered - len(self._buffer)

    def _sync_counters(self) -> None:
        """Report responses handed out since the last sync to the batch and session."""
        handed = self.received - self._reported
        if handed:
            self._reported = self.received
            self._batch._count_received(handed)

    async def _fill(self) -> None:
        self._sync_counters()
        if self._closed:
            if self._finished:
                return
            raise ClientClosed(
                "this response stream was closed (by aclose(), purge() or the session closing)"
            )
        batch = self._batch
        reader = self._reader
        buffer = self._buffer
        while not buffer:
            remaining = None if self._count is None else self._count - self.received
            if remaining is not None and remaining <= 0:
                self._finish(None)
                await reader.aclose()
                return
            try:
                responses = await reader.read(remaining)
            except BaseException:
                self._closed = True
                self._unread()
                await reader.aclose()
                raise
            dropped = self._admit(responses)
            self._buffered += len(buffer)
            if dropped:
                batch._count_duplicates(dropped)
            if len(responses) > dropped:
                reader.progress()
            if not responses:  # ended
                self._end(reader.end_reason)
                return

    def _admit(self, events: list[Record]) -> int:
        """Buffer the events not delivered before; return how many were duplicates.

        They are marked delivered as they are buffered; ``_unread()`` takes back what is
        never handed out. Numbered keys take the compact path of :class:`DeliveredKeys`.
        """
        batch = self._batch
        delivered = batch._delivered
        buffer = self._buffer
        if not events:
            return 0
        if not batch.generic:
            dropped = 0
            key_of = batch._key
            for event in events:
                key = key_of(event)
                if key != "":
                    if key in delivered:
                        dropped += 1
                        continue
                    delivered.add(key)
                buffer.append(event)
            delivered.compact()
            return dropped
        return admit_generic(delivered, events, buffer)

    def _unread(self) -> None:
        """Responses parsed but not handed out: not delivered (the next reader gets them)."""
        batch = self._batch
        delivered = batch._delivered
        for event in self._buffer:
            key = batch._key(event)
            if key != "":
                delivered.discard(key)
        self._buffered -= len(self._buffer)
        self._buffer.clear()

    def _end(self, reason: EndOfResponsesReason | None) -> None:
        self._finish(reason)
        batch = self._batch
        if reason is EndOfResponsesReason.CLIENT_PURGED and not batch._purged_by_us:
            raise SessionError(
                f"batch {batch.name!r} was purged by another client while reading its "
                f"responses ({self.received} received)"
            )
        if reason is EndOfResponsesReason.CLIENT_TIMEOUT:
            raise SessionError(
                f"batch {batch.name!r} timed out on the broker (ClientIdleTimeout) and was "
                f"discarded ({self.received} responses received)"
            )

    def _finish(self, reason: EndOfResponsesReason | None) -> None:
        self._sync_counters()
        self._finished = True
        self._closed = True
        self.end_reason = reason
        self._batch._streams.discard(self)

    async def aclose(self) -> None:
        """Close the stream (idempotent). Unread responses stay with the broker."""
        self._closed = True
        self._unread()
        self._sync_counters()
        self._batch._streams.discard(self)
        await self._reader.aclose()

    def _close_now(self) -> None:
        self._closed = True
        self._unread()
        self._sync_counters()
        self._reader.close_now()

    def __del__(self) -> None:
        # A bare ``async for`` that was left with ``break``: close the connection now, and
        # give back what was parsed but not handed out.
        if self._buffer or self._reader.is_open or not self._closed:
            self._close_now()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("open" if self._reader.is_open else "idle")
        return (
            f"<ResponseStream batch={self._batch.name!r} {state} received={self.received} "
            f"pages={self._reader.pages} resets={self._reader.resets}>"
        )
