"""The send pipeline of a batch: lazy input, encoding, coalescing, POSTs in flight.

``pump(batch, items)`` reads items lazily (a sync iterable directly, a slice at a time; an
async iterable through a bounded feeder, so a slow producer never holds back what is already
read), encodes each once (a retry resends the same bytes: the same ``MessageID`` in SOAP
mode, the same user data in generic mode), coalesces them into Send Requests POSTs bounded by
count and bytes, and keeps at most ``max_in_flight`` POSTs in flight. ``Window`` bounds the
requests outstanding for ``session.map``. Nothing here is an unbounded queue.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any, Final

import anyio

from .._exceptions import EncodeError, MessageTooLarge
from ..protocol import GenericRequest, SoapRequest
from ..protocol._generic import encode_generic_request, encode_generic_request_list
from ..protocol._soap import REQUEST_ARRAY_CLOSE, REQUEST_ARRAY_OPEN, encode_soap_request
from ._requests import Request

if TYPE_CHECKING:
    from ._batch import Batch

__all__ = ["Aborted", "Source", "Window", "make_encoder", "pump"]


class Aborted(Exception):
    """The window was aborted because a POST failed (that failure is what gets raised)."""


class Window:
    """At most ``capacity`` requests outstanding; waiters wake when room frees up.

    ``min_read``: once some requests are outstanding, the sender waits for at least this
    much room before reading more input (fewer, fuller POSTs than refilling a few places at
    a time); it never waits on requests it has not sent.
    """

    __slots__ = ("_error", "_waiter", "capacity", "min_read", "used")

    def __init__(self, capacity: int, *, min_read: int = 1) -> None:
        self.capacity = capacity
        self.min_read = max(1, min(min_read, capacity))
        self.used = 0
        self._waiter: asyncio.Event | None = None
        self._error: BaseException | None = None

    def has_room(self) -> bool:
        return self.used < self.capacity

    async def wait_for_room(self, need: int = 1) -> None:
        """Wait until at least ``need`` places are free (``need`` <= the release threshold)."""
        while self.capacity - self.used < need:
            if self._error is not None:
                raise Aborted()
            if self._waiter is None:
                self._waiter = asyncio.Event()
            await self._waiter.wait()

    def abort(self, exc: BaseException) -> None:
        self._error = exc
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter.set()

    def release(self, n: int, *, wake_at: int = 1) -> None:
        """Free ``n`` places; wake the waiter once at least ``wake_at`` are free."""
        self.used -= n
        waiter = self._waiter
        if waiter is not None and self.capacity - self.used >= wake_at:
            self._waiter = None
            waiter.set()


class _Failed:
    """An exception raised by the user's async iterable, passed through the feeder stream."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_DONE: Final = object()


def make_encoder(batch: Batch) -> Callable[[Any, int], tuple[bytes, str]]:
    """``encode(item, index) -> (wire bytes, dedupe key)`` for items that are not a plain
    ``str`` in a generic batch (that common case is inlined in ``_pump``)."""
    if batch.generic:

        def encode_generic(item: Any, index: int) -> tuple[bytes, str]:
            if isinstance(item, GenericRequest):
                return encode_generic_request(item.input, item.user_data), item.user_data
            if isinstance(item, str):
                key = batch.user_data(index)
                return encode_generic_request(str(item), key), key
            raise TypeError(
                f"a generic batch takes str items (or GenericRequest), not "
                f"{type(item).__name__}; use generic=False for hpcsoa.Request"
            )

        return encode_generic

    mid = batch._message_id

    def encode_soap(item: Any, index: int) -> tuple[bytes, str]:
        if not isinstance(item, Request):
            raise TypeError(
                f"a SOAP batch takes hpcsoa.Request items, not {type(item).__name__}; "
                "use generic=True for str"
            )
        message_id = item.message_id or mid(index)
        data = encode_soap_request(
            SoapRequest(
                action=item.action,
                body=item.body,
                message_id=message_id,
                user_data=item.user_data if item.user_data is not None else batch.user_data(index),
            )
        )
        return data, message_id

    return encode_soap


async def pump(
    batch: Batch,
    items: Iterable[Any] | AsyncIterable[Any],
    *,
    track: Callable[[int, list[Any], list[str]], None] | None = None,
    window: Window | None = None,
) -> int:
    """Encode, coalesce and POST ``items``; return how many were sent.

    ``track(first_index, items, keys)`` is called for items before their chunk is posted
    (``keys``: the user data, generic, or message ids, SOAP). With a ``window``, no item
    is read while the window is full (a partial chunk is posted first, so nothing waits
    on requests that were never sent).

    Everything before a failing item is sent; nothing from it on. In-flight POSTs always
    complete (or, if this coroutine is cancelled, are cancelled and awaited) before it
    returns or raises, so no task is left behind.
    """
    encode_other = make_encoder(batch)
    token = batch.token
    generic = batch.generic
    encode_str = encode_generic_request
    limit = batch.session.max_message_size
    adjust = 1 if generic else 0  # the generic record terminator is not "message"
    overhead = 0 if generic else len(REQUEST_ARRAY_OPEN) + len(REQUEST_ARRAY_CLOSE)
    max_count, max_bytes = batch.max_request_count, batch.max_request_bytes
    in_flight = asyncio.Semaphore(batch.max_in_flight)
    tasks: set[asyncio.Task[None]] = set()
    failures: list[BaseException] = []
    chunk: list[bytes] = []  # encoded requests, one or several per element
    count = 0  # requests in ``chunk``
    size = overhead
    index = batch._next_index
    start = index
    error: BaseException | None = None

    def finished(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            assert exc is not None
            failures.append(exc)
            if window is not None:
                window.abort(exc)

    async def post(parts: list[bytes], n: int) -> None:
        try:
            await batch._post(parts, n)
        finally:
            # Free the place as soon as the response is read, not one loop turn later in
            # a done callback: the next POST leaves that much sooner (a task cancelled
            # before it started never gets here; only a cancelled pump does that).
            in_flight.release()

    async def flush() -> None:
        nonlocal chunk, size, count
        parts, n, chunk, size, count = chunk, count, [], overhead, 0
        await in_flight.acquire()
        if failures:
            in_flight.release()
            return
        task = asyncio.create_task(post(parts, n))
        tasks.add(task)
        task.add_done_callback(finished)

    def encode(item: Any, index: int) -> tuple[bytes, str]:
        if generic and type(item) is str:
            key = f"{token}:{index}"
            data = encode_str(item, key)
        else:
            data, key = encode_other(item, index)
        n = len(data) - adjust
        if n > limit:
            raise MessageTooLarge(
                f"item {index - start} is {n} bytes once encoded, over the session's "
                f"MaxMessageSize of {limit} bytes (create the session with a larger "
                "max_message_size=); nothing from it on was sent",
                item_index=index - start,
                size=n,
                limit=limit,
            )
        return data, key

    source = Source(items, buffer=max_count)
    sync_iter = source.sync_iter
    try:
        while not failures:
            if count >= max_count:
                await flush()
            want = max_count - count
            if window is not None:
                room = window.capacity - window.used
                if room <= 0 or (room < window.min_read and not count and window.used):
                    if chunk:
                        await flush()
                    await window.wait_for_room(window.min_read)
                    continue
                want = min(want, room)
            if sync_iter is not None:
                # Bulk path: a slice of the input at a time, encoded with C-level loops.
                part = list(islice(sync_iter, want))
                if not part:
                    break
                blob = None
                keys: list[str] = []
                if generic:
                    keys = [f"{token}:{i}" for i in range(index, index + len(part))]
                    try:
                        blob = encode_generic_request_list(part, keys)
                    except (TypeError, AttributeError, EncodeError):
                        pass  # a non-str or bad item: the per-item path names it
                    # The largest message (input, separator, key): UTF-8 takes at most 4
                    # bytes per code point, a bound that spares measuring small inputs.
                    if blob is not None and (
                        size + len(blob) > max_bytes
                        or (
                            len(blob) > limit  # else no single message can be over it
                            and 4 * max(map(len, part)) + 3 + len(keys[-1]) > limit
                            and max(map(len, map(str.encode, part))) + 3 + len(keys[-1]) > limit
                        )
                    ):
                        blob = None  # the per-item path splits the chunk or names the item
                if blob is not None:
                    chunk.append(blob)
                    count += len(part)
                    size += len(blob)
                    if track is not None:
                        track(index, part, keys)
                    index += len(part)
                    if count >= max_count:
                        await flush()
                    continue
            else:
                item = source.next_nowait()
                if item is _WOULD_BLOCK:
                    if chunk:
                        await flush()
                    item = await source.next()
                if item is _DONE:
                    break
                part = [item]
            for item in part:  # per-item path
                data, key = encode(item, index)
                if chunk and (count >= max_count or size + len(data) > max_bytes):
                    await flush()
                chunk.append(data)
                count += 1
                size += len(data)
                if track is not None:
                    track(index, [item], [key])
                index += 1
        batch._next_index = index
        if chunk and not failures:
            await flush()
    except Exception as exc:  # from the input, the encoder, the size check or a POST
        batch._next_index = index
        error = exc
        if chunk and not failures and not isinstance(exc, Aborted):
            await flush()  # everything before the failing item still goes out
    except BaseException:  # cancelled: stop the POSTs in flight, leave nothing behind
        batch._next_index = index
        for task in tasks:
            task.cancel()
        raise
    finally:
        with anyio.CancelScope(shield=True):
            await source.aclose()
            if tasks:
                await asyncio.wait(set(tasks))
    if failures:
        raise failures[0]
    if error is not None:
        raise error
    return index - start


_WOULD_BLOCK: Final = object()


class Source:
    """Pulls items from a sync or async iterable and says when the next one would block.

    A sync iterable is read directly. An async iterable is read by a feeder task into a
    bounded memory stream, so the sender can flush a partial chunk instead of waiting for a
    slow producer (a request never waits for the ones after it).
    """

    def __init__(self, items: Iterable[Any] | AsyncIterable[Any], *, buffer: int) -> None:
        self.sync_iter: Iterator[Any] | None = None
        self._receive: Any = None
        self._feeder: asyncio.Task[None] | None = None
        obj: Any = items
        if isinstance(obj, AsyncIterable):
            send, self._receive = anyio.create_memory_object_stream[Any](max_buffer_size=buffer)
            self._feeder = asyncio.create_task(self._feed(aiter(obj), send))
        elif isinstance(obj, Iterable) and not isinstance(obj, str | bytes):
            self.sync_iter = iter(obj)
        else:
            raise TypeError(
                f"items must be an iterable or async iterable of requests, not "
                f"{type(obj).__name__} (wrap a single request in a list)"
            )

    @staticmethod
    async def _feed(it: AsyncIterator[Any], send: Any) -> None:
        try:
            async with send:
                try:
                    async for item in it:
                        # send_nowait while there is room: anyio's send() checkpoints on every
                        # item, which would hand control to the sender after each one and turn
                        # a fast async producer into one POST per request.
                        try:
                            send.send_nowait(item)
                        except anyio.WouldBlock:
                            await send.send(item)
                except anyio.BrokenResourceError:
                    return  # the sender stopped reading
                except Exception as exc:
                    with contextlib.suppress(anyio.BrokenResourceError):
                        await send.send(_Failed(exc))
        finally:
            close = getattr(it, "aclose", None)
            if close is not None:
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await close()

    def next_nowait(self) -> Any:
        try:
            item = self._receive.receive_nowait()
        except anyio.WouldBlock:
            return _WOULD_BLOCK
        except anyio.EndOfStream:
            return _DONE
        if type(item) is _Failed:
            raise item.exc
        return item

    async def next(self) -> Any:
        try:
            item = await self._receive.receive()
        except anyio.EndOfStream:
            return _DONE
        if type(item) is _Failed:
            raise item.exc
        return item

    async def aclose(self) -> None:
        if self._receive is not None:
            self._receive.close()
        feeder = self._feeder
        if feeder is not None and not feeder.done():
            feeder.cancel()
            with anyio.CancelScope(shield=True):
                await asyncio.wait({feeder})
