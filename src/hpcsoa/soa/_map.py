"""``session.map``: every input through the service, each result exactly once, O(window) memory.

Theory of operation. One map uses one batch and one background *runner* task, which runs two
cooperating tasks in an anyio task group:

* the **sender** reads the inputs lazily (sync or async iterable, possibly endless), waits
  while ``window`` requests are outstanding, records each input under the key it is sent
  with (user data or MessageID) and POSTs chunks (``commit=false``, several in flight)
  through ``_sender.pump``; when the input ends it waits for the POSTs and commits the batch;
* the **receiver** keeps a Get Responses page open (``count = min(window, 10 000)``),
  reopening with ``reset=false`` after a clean page (which acknowledges it) and
  ``reset=true`` after a broken one (``PageReader``). A response whose key is not
  outstanding any more is a duplicate (a resent request, or a page replayed after a reset)
  and is dropped; the others become :class:`MapResult` s and go to the consumer through a
  bounded memory stream (in input order, through a reorder buffer, when ``ordered``). It
  ends at ``EndOfResponses``, checking that nothing is still outstanding.

"Outstanding" means sent but not yet handed to the consumer, so the inputs held, the
results buffered and the reorder buffer are all bounded by ``window``. The consumer frees
window room as it takes results. Closing the map (``aclose()``, leaving ``async with``,
breaking out of ``async for``, cancelling the consuming task) cancels the runner: it stops
sending, closes its connections and purges the batch on the broker (best effort).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterable, Iterable
from itertools import compress, repeat
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio

from .._exceptions import ClientClosed, HpcError, SessionError, StreamConsumed
from ..protocol import EndOfResponsesReason, Operation
from ._requests import MapRecord, MapResult
from ._responses import PageReader
from ._sender import Window, pump

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    from ._batch import Batch
    from ._session import SoaSession

__all__ = ["MapStream"]

# A result on its way to the consumer: (index, input, time queued, time received, record).
# The MapResult is built only when it is handed out, so the objects the garbage collector
# tracks live for one loop iteration instead of waiting in buffers.
_Ready = tuple[int, Any, float, float, MapRecord]
_new_result = MapResult.__new__

logger = logging.getLogger("hpcsoa.soa")

_PURGE_TIMEOUT = 2.0
_CHANNEL_LISTS = 16


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    DONE = "done"
    CLOSED = "closed"


def _first_error(exc: BaseException) -> BaseException:
    """The first real error inside (possibly nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup):
        inner = [e for e in exc.exceptions if not isinstance(e, asyncio.CancelledError)]
        exc = inner[0] if inner else exc.exceptions[0]
    return exc


class _Engine:
    """The runner's state. Holds no reference to the :class:`MapStream` facade, so that a
    consumer dropping the facade (``break``) lets it be collected and stop the runner."""

    def __init__(
        self,
        session: SoaSession,
        batch: Batch,
        inputs: Iterable[Any] | AsyncIterable[Any],
        *,
        window: int,
        ordered: bool,
        page_size: int,
        refill: int,
        send: MemoryObjectSendStream[list[_Ready]],
    ) -> None:
        self.session = session
        self.batch = batch
        self.inputs: Iterable[Any] | AsyncIterable[Any] | None = inputs
        self.room = Window(window, min_read=refill)
        self.refill = refill
        self.ordered = ordered
        self.page_size = page_size
        self.base = batch._next_index
        # wire key (user data / MessageID) → (index, input, time queued); O(window). The
        # tuples hold no containers (for str inputs), so the garbage collector untracks them.
        # wire key (user data / MessageID) → index / input / time queued; O(window). Three
        # dicts of plain values rather than one of tuples: a dict holding only str, int and
        # float values is untracked by the garbage collector, while one holding fresh tuples
        # is tracked again on every insert and rescanned (all 10 000 entries) by every
        # young-generation collection.
        self.indexes: dict[str | None, int] = {}
        self.held: dict[str | None, Any] = {}  # the inputs themselves
        self.queued: dict[str | None, float] = {}
        self.reorder: dict[int, _Ready] = {}
        self.next_ordered = 0
        self.send = send
        self.error: BaseException | None = None
        self.completed = False
        self.peak_outstanding = 0

    async def run(self) -> None:
        send = self.send
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._receive_all)
                await self._send_all()
            self.completed = True
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.error = _first_error(exc)
        finally:
            self.inputs = None
            send.close()
            if not self.completed:
                await self._purge_quietly()

    async def _send_all(self) -> None:
        batch = self.batch
        inputs = self.inputs
        assert inputs is not None
        await pump(batch, inputs, track=self._track, window=self.room)
        await batch.commit()
        logger.debug("map on batch %r: all %d inputs sent and committed", batch.name, batch.sent)

    def _track(self, index: int, items: list[Any], keys: list[str]) -> None:
        n = len(items)
        first = index - self.base
        self.indexes.update(zip(keys, range(first, first + n), strict=True))
        self.held.update(zip(keys, items, strict=True))
        self.queued.update(zip(keys, repeat(time.monotonic(), n), strict=True))
        room = self.room
        room.used += n
        if room.used > self.peak_outstanding:
            self.peak_outstanding = room.used

    async def _receive_all(self) -> None:
        batch = self.batch
        generic = batch.generic
        # Generic records arrive as (action, output, user_data) tuples: no model object per
        # response, and nothing for the garbage collector to keep scanning.
        reader = PageReader(batch, page_size=self.page_size, fields=generic)
        take_index, take_input, take_queued = self.indexes.pop, self.held.pop, self.queued.pop
        send = self.send
        try:
            while True:
                records = await reader.read()
                if not records:
                    break
                now = time.monotonic()
                # The key each request was sent with: user data (generic) or MessageID.
                if generic:
                    keys = [r[2] for r in records]
                else:
                    keys = [r.relates_to or r.user_data for r in records]
                # Popping answers "still outstanding?" and claims the request in one step: a
                # resent request's second answer, a page replayed after a reset or a repeat
                # within this chunk finds nothing.
                indexes: list[Any] = list(map(take_index, keys, repeat(None)))
                dropped = indexes.count(None)
                if dropped:
                    keep = [i is not None for i in indexes]
                    indexes = list(compress(indexes, keep))
                    keys = list(compress(keys, keep))
                    records = list(compress(records, keep))
                    batch._count_duplicates(dropped)
                if indexes:
                    results: list[_Ready] = list(
                        zip(
                            indexes,
                            map(take_input, keys),
                            map(take_queued, keys),
                            repeat(now),
                            records,
                        )
                    )
                    reader.progress()
                    batch._count_received(len(results))
                    if self.ordered:
                        results = self._in_order(results)
                    if results:
                        await send.send(results)
        finally:
            with anyio.CancelScope(shield=True):
                await reader.aclose()
        if reader.end_reason is not EndOfResponsesReason.SUCCESS:
            raise SessionError(
                f"map on batch {batch.name!r} ended early: the broker reported "
                f"{reader.end_reason.wire_name if reader.end_reason else 'no reason'} with "
                f"{len(self.indexes)} results missing"
            )
        if self.indexes or self.reorder:
            raise SessionError(
                f"map on batch {batch.name!r}: the broker ended the batch with "
                f"{len(self.indexes) + len(self.reorder)} results missing"
            )

    def _in_order(self, results: list[_Ready]) -> list[_Ready]:
        buf = self.reorder
        for r in results:
            buf[r[0]] = r
        out: list[_Ready] = []
        nxt = self.next_ordered
        while nxt in buf:
            out.append(buf.pop(nxt))
            nxt += 1
        self.next_ordered = nxt
        return out

    async def _purge_quietly(self) -> None:
        """Best effort: free the abandoned batch on the broker (never raises)."""
        session = self.session
        requester = session._requester
        if requester.transport.is_closed():
            return
        with anyio.CancelScope(shield=True), anyio.move_on_after(_PURGE_TIMEOUT):
            with contextlib.suppress(HpcError, OSError):
                await requester.call(
                    Operation.PURGE,
                    path_params={"session_id": session.id, "batch": self.batch.name},
                    authority=session.broker_node,
                    retry=False,
                )
                logger.debug("map on batch %r stopped early: batch purged", self.batch.name)


class MapStream:
    """The results of ``session.map(...)``: an async iterator and an async context manager.

    Attributes:
        batch: the :class:`Batch` used (its counters: ``sent``, ``received``, ``retried``,
            ``duplicates_dropped``, ``bytes_sent``, ``bytes_received``).
        window: the most requests outstanding at once.
    """

    def __init__(
        self,
        session: SoaSession,
        inputs: Iterable[Any] | AsyncIterable[Any],
        *,
        window: int,
        ordered: bool,
        generic: bool,
        batch_name: str | None,
        page_size: int | None,
        max_request_count: int,
        max_request_bytes: int,
        max_in_flight: int,
    ) -> None:
        obj: Any = inputs
        if not isinstance(obj, Iterable | AsyncIterable) or isinstance(obj, str | bytes):
            raise TypeError(
                f"inputs must be an iterable or async iterable, not {type(obj).__name__}"
            )
        self._session = session
        self._inputs: Iterable[Any] | AsyncIterable[Any] | None = inputs
        self.window = window
        self._ordered = ordered
        self.batch: Batch = session.batch(
            batch_name or f"map-{uuid.uuid4().hex[:16]}",
            generic=generic,
            max_request_count=max_request_count,
            max_request_bytes=max_request_bytes,
            max_in_flight=max_in_flight,
        )
        self._page_size = page_size or min(window, 10_000)
        # Refill in chunks, not one request at a time, once the window is full.
        self._refill = max(1, min(max_request_count, window // 8))
        self._engine: _Engine | None = None
        self._ready: deque[_Ready] = deque()
        self._recv: MemoryObjectReceiveStream[list[_Ready]] | None = None
        self._runner: asyncio.Task[None] | None = None
        self._state = _State.NEW
        self._iterating = False
        self._taken = 0  # results moved from the channel to ``_ready``
        self._released = 0

    @property
    def peak_outstanding(self) -> int:
        """The highest number of requests outstanding at once so far."""
        return self._engine.peak_outstanding if self._engine is not None else 0

    @property
    def outstanding(self) -> int:
        """Requests sent (or queued to send) whose results were not handed out yet."""
        if self._engine is None:
            return 0
        return self._engine.room.used - (self.yielded - self._released)

    # -- consumer side ----------------------------------------------------------------------------

    def __aiter__(self) -> MapStream:
        if self._iterating or self._state in (_State.DONE, _State.CLOSED):
            raise StreamConsumed(
                "this map was already iterated; each session.map() call yields its results once"
            )
        self._iterating = True
        return self

    async def __anext__(self) -> MapResult:
        ready = self._ready
        if not ready:
            await self._more()
        index, item, queued, received, record = ready.popleft()
        result = _new_result(MapResult)
        result.index = index
        result.input = item
        result.latency = received - queued
        result._record = record
        return result

    @property
    def yielded(self) -> int:
        """Results handed out so far."""
        return self._taken - len(self._ready)

    def _release(self) -> None:
        """Give the window the places of the results handed out since the last call."""
        handed = self.yielded - self._released
        if handed:
            self._released = self.yielded
            engine = self._engine
            if engine is not None:
                engine.room.release(handed, wake_at=self._refill)

    async def _more(self) -> None:
        self._release()
        if self._state is _State.NEW:
            self._start()
        if self._state is not _State.RUNNING:
            if self._state is _State.DONE:
                raise StopAsyncIteration
            raise ClientClosed("this map was closed (aclose(), or its session/client closed)")
        recv = self._recv
        assert recv is not None
        try:
            results = await recv.receive()
        except anyio.EndOfStream:
            await self._finished()
            raise StopAsyncIteration from None
        except anyio.ClosedResourceError:
            raise ClientClosed("this map was closed while waiting for results") from None
        except BaseException:  # the consumer was cancelled: stop everything
            self._cancel_runner()
            raise
        self._ready.extend(results)
        self._taken += len(results)

    async def _finished(self) -> None:
        """The runner closed the channel: raise its error, or mark the map done."""
        runner = self._runner
        try:
            if runner is not None:
                await asyncio.wait({runner})
        except BaseException:
            self._cancel_runner()
            raise
        engine = self._engine
        error = engine.error if engine is not None else None
        if error is not None:
            await self.aclose()
            raise error
        self._state = _State.DONE
        self._retire()

    def _retire(self) -> None:
        """Close the channel and the map's batch object (its counters stay readable)."""
        if self._recv is not None:
            self._recv.close()
        self.batch._close_local()
        self._session._forget_batch(self.batch)
        self._session._maps.discard(self)

    # -- lifecycle ---------------------------------------------------------------------------------

    def _start(self) -> None:
        self._session._check_usable()
        send, self._recv = anyio.create_memory_object_stream[list[_Ready]](
            max_buffer_size=_CHANNEL_LISTS
        )
        inputs, self._inputs = self._inputs, None
        assert inputs is not None
        self._engine = _Engine(
            self._session,
            self.batch,
            inputs,
            window=self.window,
            ordered=self._ordered,
            page_size=self._page_size,
            refill=self._refill,
            send=send,
        )
        self._state = _State.RUNNING
        self._runner = asyncio.create_task(self._engine.run(), name=f"hpcsoa map {self.batch.name}")
        # Closes the channel even if the runner is cancelled before its first step.
        self._runner.add_done_callback(lambda _task: send.close())

    def _cancel_runner(self) -> None:
        runner = self._runner
        if runner is not None and not runner.done():
            runner.cancel()
        self._state = _State.CLOSED
        if self._recv is not None:
            self._recv.close()

    async def aclose(self) -> None:
        """Stop the map (idempotent): no more sends, connections closed, batch purged."""
        if self._state is _State.CLOSED:
            return
        finished = self._state is _State.DONE
        self._cancel_runner()
        if finished:
            self._state = _State.DONE
        runner = self._runner
        if runner is not None and not runner.done():
            with anyio.CancelScope(shield=True):
                await asyncio.wait({runner})
        self._taken -= len(self._ready)
        self._ready.clear()
        self._retire()

    async def __aenter__(self) -> MapStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __del__(self) -> None:
        # ``break`` out of a bare ``async for``: the runner stops and cleans up by itself.
        runner = getattr(self, "_runner", None)
        if runner is not None and not runner.done():
            runner.cancel()
        recv = getattr(self, "_recv", None)
        if recv is not None:
            recv.close()

    def __repr__(self) -> str:
        return (
            f"<MapStream batch={self.batch.name!r} {self._state.value} window={self.window} "
            f"outstanding={self.outstanding} yielded={self.yielded} sent={self.batch.sent} "
            f"duplicates_dropped={self.batch.duplicates_dropped}>"
        )
