"""``Batch``: one broker client of a session (spec §3.2): send, commit, responses, status, purge.

Theory of operation. A batch object moves through three local states::

    OPEN ──commit()──► COMMITTED            purge(): OPEN | COMMITTED ──► OPEN (fresh batch)
      └──────────────────┴──aclose() / session closed──► CLOSED (every call: ClientClosed)

``send()`` in COMMITTED raises :class:`~hpcsoa.BatchCommitted`; ``commit()`` in COMMITTED is
a no-op. The broker's own state (Ready / Processing / Finished) is read with ``status()``.

Sending goes through ``_sender.pump`` (lazy input, coalescing, POSTs in flight). A POST is
retried after ambiguous failures: the broker drops a repeated ``MessageID``, and in generic
mode the response reader drops repeated user data.
"""

from __future__ import annotations

import enum
import logging
import re
import uuid
import weakref
from collections.abc import AsyncIterable, Awaitable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar

from .._exceptions import (
    ApiError,
    BatchCommitted,
    ClientClosed,
    EncodeError,
    HpcError,
    NetworkError,
    RetryError,
    ServerError,
    SessionError,
    SessionNotFound,
    TransportTimeout,
)
from ..protocol import BrokerClientStatus, Operation, SoapResponse
from ..protocol._errors import SOA_FAULT_CODES
from ..protocol._session_codec import decode_broker_status
from ..protocol._soap import REQUEST_ARRAY_CLOSE, REQUEST_ARRAY_OPEN
from ._responses import DeliveredKeys, Key, ResponseStream, generic_key
from ._sender import pump

if TYPE_CHECKING:
    from ._requests import Record
    from ._session import SoaSession

__all__ = ["DEFAULT_MAX_REQUEST_BYTES", "DEFAULT_MAX_REQUEST_COUNT", "Batch", "BatchState"]

logger = logging.getLogger("hpcsoa.soa")

T = TypeVar("T")

DEFAULT_MAX_REQUEST_COUNT: Final = 1000
DEFAULT_MAX_REQUEST_BYTES: Final = 4 * 1024 * 1024
DEFAULT_MAX_IN_FLIGHT: Final = 8
_BATCH_NAME_RE: Final = re.compile(r"[0-9a-zA-Z_\-{}\s]*")
_CODE_FLUSH_REJECTED: Final = SOA_FAULT_CODES["Broker_FlushRejected"]
_CODE_CLIENT_TIMEOUT: Final = SOA_FAULT_CODES["ClientTimeout"]
_SEND_QUERY_GENERIC: Final = (("genericservice", "true"), ("commit", "false"))
_SEND_QUERY_SOAP: Final = (("genericservice", "false"), ("commit", "false"))
_CODES_SESSION_GONE: Final = frozenset(
    {SOA_FAULT_CODES["InvalidSessionId"], SOA_FAULT_CODES["Broker_InvalidSessionId"]}
)
_CODES_ALREADY_COMMITTED: Final = frozenset(
    {
        SOA_FAULT_CODES["Broker_EOMReject_EndRequests"],
        SOA_FAULT_CODES["Broker_EOMRejected"],
        SOA_FAULT_CODES["Broker_EOMReject_GetResponse"],
    }
)


class BatchState(enum.Enum):
    """Local state of a :class:`Batch` (see the module docstring)."""

    OPEN = "open"
    COMMITTED = "committed"
    CLOSED = "closed"


def validate_batch_name(name: str) -> str:
    """Check a batch name against the broker's rule (spec §3.2).

    Raises:
        EncodeError: longer than 128 characters or outside ``[0-9a-zA-Z_-{}\\s]``.
    """
    if not isinstance(name, str):
        raise TypeError(f"batch name must be str, not {type(name).__name__}")
    if len(name) > 128:
        raise EncodeError(f"batch name is {len(name)} characters long; the maximum is 128")
    if not _BATCH_NAME_RE.fullmatch(name) or not name.strip():
        raise EncodeError(
            f"invalid batch name {name!r}: use letters, digits, '_', '-', '{{', '}}' and spaces"
        )
    return name


class Batch:
    """One batch (broker client) of a session. Create with ``session.batch(name)``.

    Args:
        session: the owning session.
        name: the batch name (the broker's client id; compared case-insensitively).
        generic: ``True`` for a generic service (``str`` in, ``str`` out), ``False`` for
            typed SOAP requests (:class:`~hpcsoa.Request`).
        max_request_count: most requests per Send Requests POST.
        max_request_bytes: most body bytes per Send Requests POST.
        max_in_flight: most Send Requests POSTs in flight at once.

    Counters (also summed on the session): ``sent``, ``received``, ``retried``,
    ``duplicates_dropped``, ``bytes_sent``, ``bytes_received``.
    """

    def __init__(
        self,
        session: SoaSession,
        name: str,
        *,
        generic: bool = True,
        max_request_count: int = DEFAULT_MAX_REQUEST_COUNT,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> None:
        if max_request_count < 1 or max_request_bytes < 1 or max_in_flight < 1:
            raise ValueError("max_request_count, max_request_bytes and max_in_flight must be >= 1")
        self.session = session
        self.name = validate_batch_name(name)
        self.generic = generic
        self.max_request_count = max_request_count
        self.max_request_bytes = max_request_bytes
        self.max_in_flight = max_in_flight
        self._state = BatchState.OPEN
        self._next_index = 0
        hexid = uuid.uuid4().hex
        # Request ids of this batch object: a random token plus the request's position. The
        # token keeps them unique when several objects (processes, clients, or this client
        # later) send to the same batch name, and the position lets the response reader
        # keep what it has delivered compactly (a low-water mark per token).
        self.token = hexid[20:28]
        self._mid_prefix = f"urn:uuid:{hexid[:8]}-{hexid[8:12]}-{hexid[12:16]}-{hexid[16:20]}-"
        self._delivered = DeliveredKeys()
        self._streams: weakref.WeakSet[ResponseStream] = weakref.WeakSet()
        self._purged_by_us = False
        self.sent = 0
        self.received = 0
        self.retried = 0
        self.duplicates_dropped = 0
        self.bytes_sent = 0
        self.bytes_received = 0

    # -- state ------------------------------------------------------------------------------------

    @property
    def state(self) -> BatchState:
        return self._state

    def is_closed(self) -> bool:
        return self._state is BatchState.CLOSED

    def _check_usable(self) -> None:
        if self._state is BatchState.CLOSED:
            raise ClientClosed(
                f"batch {self.name!r} is closed (by aclose() or because its session or client "
                "closed); get a new one with session.batch(name)"
            )
        self.session._check_usable()

    # -- counters (batch and session) --------------------------------------------------------------

    def _count_retry(self, exc: BaseException) -> None:
        self.retried += 1
        self.session.retried += 1

    def _count_received(self, n: int) -> None:
        self.received += n
        self.session.received += n

    def _count_duplicates(self, n: int) -> None:
        self.duplicates_dropped += n
        self.session.duplicates_dropped += n

    def _bytes_received(self, n: int) -> None:
        self.bytes_received += n
        self.session.bytes_received += n

    def _count_sent(self, n: int, nbytes: int) -> None:
        self.sent += n
        self.bytes_sent += nbytes
        session = self.session
        session.sent += n
        session.bytes_sent += nbytes

    # -- keys ------------------------------------------------------------------------------------

    def _message_id(self, index: int) -> str:
        return f"{self._mid_prefix}{index:012x}"

    def user_data(self, index: int) -> str:
        """The user data this batch object gives request ``index`` when the caller gave none."""
        return f"{self.token}:{index}"

    def _key(self, event: Record) -> Key:
        """De-duplication key of a response (see ``_responses`` module docstring)."""
        if self.generic or type(event) is not SoapResponse:
            return generic_key(event)
        mid = event.relates_to
        if mid:
            prefix = self._mid_prefix
            tail = mid[len(prefix) :]
            if mid.startswith(prefix) and len(tail) == 12 and tail.isalnum() and tail.isascii():
                try:
                    return (prefix, int(tail, 16))
                except ValueError:
                    return mid
            return mid
        return generic_key(event)

    async def _call_guard(self, call: Awaitable[T]) -> T:
        """Await a service call, turning batch-specific faults into clearer errors."""
        try:
            return await call
        except ApiError as exc:
            error = self._clearer(exc)
            if error is exc:
                raise
            raise error from exc

    def _clearer(self, exc: ApiError) -> ApiError | HpcError:
        """The error to raise for a failed batch call: batch-specific faults made clearer."""
        if exc.code == _CODE_FLUSH_REJECTED:
            self._state = BatchState.COMMITTED
            return BatchCommitted(f"batch {self.name!r} is already committed; send to a new batch")
        if exc.code in _CODES_SESSION_GONE:
            return SessionNotFound(
                f"session {self.session.id} does not exist any more (closed or timed out)"
            )
        if exc.code == _CODE_CLIENT_TIMEOUT:
            return SessionError(
                f"batch {self.name!r} timed out on the broker (ClientIdleTimeout) and was "
                "discarded; purge it and send again"
            )
        return exc

    # -- sending ---------------------------------------------------------------------------------

    async def _post(self, parts: list[bytes], count: int) -> None:
        """POST ``count`` encoded requests (``parts``: their bytes, in one or more pieces)."""
        if self.generic:
            body = b"".join(parts)
        else:
            body = REQUEST_ARRAY_OPEN + b"".join(parts) + REQUEST_ARRAY_CLOSE
        session = self.session
        try:
            await session._requester.call(
                Operation.SEND_REQUESTS,
                path_params={"session_id": session.id, "batch": self.name},
                query=_SEND_QUERY_GENERIC if self.generic else _SEND_QUERY_SOAP,
                body=body,
                content_type="application/octet-stream",
                expect=(200, 201),
                authority=session.broker_node,
                on_retry=self._count_retry,
            )
        except ApiError as exc:
            error = self._clearer(exc)
            if error is exc:
                raise
            raise error from exc
        self._count_sent(count, len(body))

    async def send(self, items: Iterable[Any] | AsyncIterable[Any], *, commit: bool = False) -> int:
        """Send requests, consuming ``items`` lazily; return how many were sent.

        Args:
            items: ``str`` (generic batch) or :class:`~hpcsoa.Request` (SOAP batch), from any
                iterable or async iterable. Without explicit user data (``GenericRequest`` /
                ``Request.user_data``) request number ``i`` of this batch object gets
                ``f"{batch.token}:{i}"``: unique even when several senders share the batch
                name, which the exactly-once delivery of ``responses()`` relies on.
            commit: commit the batch after the last POST.

        Raises:
            MessageTooLarge: an item is over the session's ``MaxMessageSize``
                (``item_index`` names it; every item before it was sent, none after).
            EncodeError: an item cannot be encoded (e.g. U+FFFF in a generic input).
            BatchCommitted: the batch was already committed.
            RetryError / ApiError / TransportError: a POST failed for good.
        """
        self._check_usable()
        if self._state is BatchState.COMMITTED:
            raise BatchCommitted(f"batch {self.name!r} is already committed")
        self._purged_by_us = False  # a ClientPurged from now on comes from someone else
        sent = await pump(self, items)
        if commit:
            await self.commit()
        return sent

    # -- commit, status, purge ---------------------------------------------------------------------

    async def commit(self) -> None:
        """Indicate the end of requests (spec §4.5). Idempotent on this object.

        After an ambiguous failure (the commit may or may not have arrived) the batch status
        decides: Processing or Finished means it was committed; Ready means it was not, and
        the commit is sent again, where a ``Broker_EOMReject_EndRequests`` fault now means
        the first one did arrive.

        Raises:
            BatchCommitted: the broker says the batch was committed earlier (by another client).
            SessionNotFound, ApiError, TransportError, RetryError.
        """
        self._check_usable()
        if self._state is BatchState.COMMITTED:
            return
        try:
            await self._commit_once()
        except ApiError as exc:
            if exc.code in _CODES_ALREADY_COMMITTED:
                self._state = BatchState.COMMITTED
                raise BatchCommitted(
                    f"batch {self.name!r} was already committed on the broker"
                ) from exc
            raise
        except (NetworkError, TransportTimeout, ServerError, RetryError) as exc:
            logger.warning(
                "batch %r: commit outcome unknown (%s); checking the batch status",
                self.name,
                type(exc).__name__,
            )
            status = await self.status()
            if status is BrokerClientStatus.READY:
                try:
                    await self._commit_once()
                except ApiError as again:
                    if again.code not in _CODES_ALREADY_COMMITTED:
                        raise
            elif status not in (BrokerClientStatus.PROCESSING, BrokerClientStatus.FINISHED):
                raise SessionError(
                    f"batch {self.name!r}: commit outcome unknown and the batch status is "
                    f"{status.wire_name}"
                ) from exc
        self._state = BatchState.COMMITTED

    async def _commit_once(self) -> None:
        session = self.session
        await self._call_guard(
            session._requester.call(
                Operation.COMMIT,
                path_params={"session_id": session.id, "batch": self.name},
                expect=(201, 200),
                authority=session.broker_node,
                on_retry=self._count_retry,
            )
        )

    async def status(self) -> BrokerClientStatus:
        """The broker's status of this batch (spec §4.7): Ready, Processing or Finished.

        Raises:
            SessionNotFound, ApiError, TransportError, RetryError.
        """
        self._check_usable()
        session = self.session
        resp = await self._call_guard(
            session._requester.call(
                Operation.GET_BATCH_STATUS,
                path_params={"session_id": session.id, "batch": self.name},
                accept="application/json",
                authority=session.broker_node,
                on_retry=self._count_retry,
            )
        )
        return decode_broker_status(resp.body, resp.content_type)

    async def purge(self) -> None:
        """Delete the batch's requests and responses on the broker (spec §4.8).

        Open response streams of this batch end (``end_reason`` ``CLIENT_PURGED``). The
        batch is then fresh and open again under the same name.

        Raises:
            SessionNotFound, ApiError, TransportError, RetryError.
        """
        self._check_usable()
        session = self.session
        self._purged_by_us = True  # the broker's ClientPurged on our open streams is expected
        await self._call_guard(
            session._requester.call(
                Operation.PURGE,
                path_params={"session_id": session.id, "batch": self.name},
                authority=session.broker_node,
                on_retry=self._count_retry,
            )
        )
        from ..protocol import EndOfResponsesReason

        for stream in list(self._streams):
            stream._reader.finish(EndOfResponsesReason.CLIENT_PURGED)
        self._delivered.clear()
        self._state = BatchState.OPEN

    # -- responses --------------------------------------------------------------------------------

    def responses(
        self,
        count: int | None = None,
        *,
        page_size: int | None = 1000,
        action: str | None = None,
        client_data: str | None = None,
    ) -> ResponseStream:
        """The batch's responses, each once, as they arrive (spec §4.6).

        ``async for r in batch.responses()`` or ``async with batch.responses() as stream``.
        The stream ends at ``EndOfResponses`` (after the commit, once every response has been
        delivered) or after ``count`` responses.

        Args:
            count: stop after this many responses (``None``: until the end of the batch).
            page_size: ``count`` of each Get Responses call (``None``: one call for all).
            action: only responses to requests with this action.
            client_data: opaque string the broker echoes in SOAP responses.

        Raises (while iterating):
            SessionError: the batch was purged by someone else or timed out on the broker.
            RetryError: pages kept failing.
            ClientClosed: the stream, batch, session or client was closed.
        """
        self._check_usable()
        if count is not None and count < 0:
            raise ValueError("count must be >= 0 or None")
        if page_size is not None and page_size < 1:
            raise ValueError("page_size must be >= 1 or None")
        return ResponseStream(
            self,
            count=count,
            page_size=page_size,
            action=action or "",
            client_data=client_data or "",
        )

    # -- lifecycle --------------------------------------------------------------------------------

    def _close_local(self) -> None:
        self._state = BatchState.CLOSED
        for stream in list(self._streams):
            stream._close_now()
        self._streams.clear()

    async def aclose(self) -> None:
        """Close this batch object and its open response streams (idempotent).

        Nothing happens on the broker: the batch, its requests and responses stay there.
        """
        if self._state is BatchState.CLOSED:
            return
        streams = list(self._streams)
        self._state = BatchState.CLOSED
        for stream in streams:
            await stream.aclose()
        self.session._forget_batch(self)

    async def __aenter__(self) -> Batch:
        self._check_usable()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        mode = "generic" if self.generic else "soap"
        return (
            f"<Batch {self.name!r} session={self.session.id} {mode} {self._state.value} "
            f"sent={self.sent} received={self.received} retried={self.retried} "
            f"duplicates_dropped={self.duplicates_dropped} streams={len(self._streams)}>"
        )


# --- input adapter --------------------------------------------------------------------------------
