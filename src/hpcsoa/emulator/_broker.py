"""The SOA broker of the emulator: sessions, batches, responses and cursors (spec §3, §4, §5).

Pure and synchronous: no aiohttp, no asyncio, no sockets. Time comes from an injected
``clock`` (seconds, monotonic), so tests drive timeouts by moving a fake clock and calling
:meth:`Broker.expire`. Failures raise :class:`FaultError` carrying the §3.7 code and the HTTP
status of the §2.7 [PROPOSAL] mapping; handlers render it.

Theory of operation
-------------------

A **session** is ACTIVE from Create Session until Close Session (→ removed) or its
``SessionIdleTimeout`` (interactive → closed; durable → INACTIVE until the next Attach, §5.1).
It holds **batches** keyed by the case-folded batch name (§3.2). A batch comes into existence
on the first call naming it and moves through the §5.2 states::

     (absent) ──any batch call──► READY ──commit──► PROCESSING ──last answer──► FINISHED
        ▲                           │                                             │
        │       purge (any state)   └─────────────── commit, all answered ───────┘
        └────────────────────────── DISCONNECTED ◄── ClientIdleTimeout, nothing pending
                              (tombstone for one more timeout period; a durable batch
                               then comes back as it was, FINISHED → GET_RESPONSE)

``_LEGAL`` is the transition table: for each (call, state) it names the fault to raise, or
``None`` when the call proceeds. Requests accepted by :meth:`Broker.send` are handed back to
the caller for dispatch; :meth:`Broker.complete` stores each answer, in completion order.

In a durable session each request may carry a batch-instance id (§3.3): requests of an
instance older than the newest one seen are discarded, a newer instance discards what the
older one had not flushed yet, and duplicate ``MessageID`` detection is per instance
(:meth:`Broker._accept_durable`). Interactive sessions ignore the instance id.

Get Responses opens a :class:`ResponseStream`, the batch's single cursor (a newer call ends
the older stream without a marker, G25). :meth:`ResponseStream.take` hands out the next
deliverable responses and decides when the stream ends (§4.6): ``count`` reached (with the
end marker only if the batch is also complete), batch complete (marker ``Success``), purge
or close (``ClientPurged``), idle timeout (``ClientTimeout``). Whenever something a stream
may be waiting for changes, the broker calls the stream's ``wake`` callback; the async layer
uses it to set an event.

Acknowledgement (§4.6): a batch's responses live in one list, in completion order; an
acknowledged (deleted) response becomes ``None``. The *watermark* ``scan_from`` splits the
list: everything below it was delivered in the current cursor epoch (or deleted). A new call
with ``reset=false`` deletes (interactive) what the previous call delivered and continues at
the watermark; ``reset=true`` moves the watermark back to the oldest response still held
(interactive: acknowledged ones are gone; durable: everything is replayed) and restarts the
cumulative ``EndOfResponses.Count``. Without an ``action`` filter delivery is always a
contiguous run from the watermark, so :meth:`ResponseStream.take` is a list slice. A filtered
call can deliver past unmatched responses; those indices go into ``sparse`` and the batch
uses the general (scanning) path from then on.

Stored responses are plain tuples of strings (:data:`StoredResponse`), not objects: a busy
emulator holds millions of them, and CPython's garbage collector stops tracking tuples of
atomic values, which keeps collections cheap.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

from ..protocol import (
    BrokerClientStatus,
    EndOfResponses,
    EndOfResponsesReason,
    ServiceVersion,
    SoapRequest,
)
from ._batches import (
    LEGALITY,
    R_ACTION,
    R_BODY,
    R_FAULT,
    R_OUTPUT,
    R_RELATES_TO,
    R_REQUEST_ACTION,
    R_USER_DATA,
    BatchCall,
    BatchState,
    BrokerBatch,
    BrokerCounters,
    BrokerSession,
    Message,
    SessionState,
    StoredResponse,
    same_user,
    soa_fault,
    validate_batch_name,
)
from ._cursor import ResponseStream

__all__ = [
    "R_ACTION",
    "R_BODY",
    "R_FAULT",
    "R_OUTPUT",
    "R_RELATES_TO",
    "R_REQUEST_ACTION",
    "R_USER_DATA",
    "BatchState",
    "Broker",
    "BrokerBatch",
    "BrokerCounters",
    "BrokerSession",
    "Message",
    "ResponseStream",
    "SessionState",
    "StoredResponse",
    "soa_fault",
    "validate_batch_name",
]


class Broker:
    """All SOA sessions of one emulator.

    Args:
        clock: monotonic time in seconds.
        allocate_id: returns the next session id (the lead wires the job-id sequence, G28).
        on_session_created: called with ``(session_id, owner, service_name, job_name)``
            (``job_name``: the start info's ``ServiceJobName``, else the service name).
        on_session_closed: called with ``(session_id, finished)``; ``finished`` is true when
            every batch had completed (the service job ends Finished, else Canceled).

    The three callables are plain attributes and may be replaced after construction.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        allocate_id: Callable[[], int] | None = None,
        on_session_created: Callable[[int, str, str, str], None] | None = None,
        on_session_closed: Callable[[int, bool], None] | None = None,
    ) -> None:
        self.clock = clock
        ids = itertools.count(1)
        self.allocate_id: Callable[[], int] = allocate_id or (lambda: next(ids))
        self.on_session_created = on_session_created
        self.on_session_closed = on_session_closed
        self.sessions: dict[int, BrokerSession] = {}
        self.counters = BrokerCounters()
        self._batch_uids = 0

    # --- sessions (§4.1–§4.3, §5.1) -------------------------------------------------------

    def create_session(
        self,
        *,
        owner: str,
        service_name: str,
        durable: bool,
        max_message_size: int,
        service_operation_timeout: int,
        client_idle_timeout_ms: int,
        session_idle_timeout_ms: int,
        share: bool = False,
        service_version: ServiceVersion | None = None,
        job_name: str | None = None,
    ) -> BrokerSession:
        """Start a session; the caller has validated the start info."""
        sid = self.allocate_id()
        if sid in self.sessions:
            raise RuntimeError(f"session id {sid} allocated twice")
        session = BrokerSession(
            id=sid,
            owner=owner,
            service_name=service_name,
            durable=durable,
            max_message_size=max_message_size,
            service_operation_timeout=service_operation_timeout,
            client_idle_timeout_ms=client_idle_timeout_ms,
            session_idle_timeout_ms=session_idle_timeout_ms,
            share=share,
            service_version=service_version,
            last_activity=self.clock(),
        )
        self.sessions[sid] = session
        self.counters.sessions_created += 1
        if self.on_session_created is not None:
            self.on_session_created(sid, owner, service_name, job_name or service_name)
        return session

    def session(self, session_id: int, user: str, *, for_batch: bool = True) -> BrokerSession:
        """Look up a session for ``user``.

        Raises:
            FaultError: 404 ``InvalidSessionId`` (unknown/closed), 403
                ``AccessDenied_BrokerQueue`` (someone else's, not shared), 400
                ``WebAPI_BrokerNotActive`` (durable session unloaded; batch calls only).
        """
        session = self.sessions.get(session_id)
        if session is None or session.state is SessionState.CLOSED:
            raise soa_fault(
                404, "InvalidSessionId", f"Session {session_id} does not exist or was closed."
            )
        if not session.share and not same_user(session.owner, user):
            raise soa_fault(
                403, "AccessDenied_BrokerQueue", f"Access to session {session_id} is denied."
            )
        if for_batch and session.state is SessionState.INACTIVE:
            raise soa_fault(
                400,
                "WebAPI_BrokerNotActive",
                f"Broker of session {session_id} is not active. "
                "Please try to attach to the session first.",
            )
        return session

    def attach(self, session_id: int, user: str, *, durable: bool) -> BrokerSession:
        """Attach Session (§4.2): re-activates an unloaded durable session.

        Raises:
            FaultError: as :meth:`session`, or 400 ``InvalidAttachDurableSession`` /
                ``InvalidAttachInteractiveSession`` when ``durable`` does not match.
        """
        session = self.session(session_id, user, for_batch=False)
        if session.durable and not durable:
            raise soa_fault(
                400,
                "InvalidAttachDurableSession",
                f"Session {session_id} is durable; attach with durable=true.",
            )
        if not session.durable and durable:
            raise soa_fault(
                400,
                "InvalidAttachInteractiveSession",
                f"Session {session_id} is interactive; attach with durable=false.",
            )
        session.state = SessionState.ACTIVE
        session.last_activity = self.clock()
        return session

    def close_session(self, session_id: int, user: str) -> None:
        """Close Session (§4.3): ends open streams with ``ClientPurged`` and drops all state.

        Raises:
            FaultError: 404 ``InvalidSessionId`` / 403 as :meth:`session`.
        """
        session = self.session(session_id, user, for_batch=False)
        self._close(session)
        self.counters.sessions_closed += 1

    def _close(self, session: BrokerSession) -> None:
        finished = all(
            b.is_complete or (b.received == 0 and b.state is not BatchState.PROCESSING)
            for b in session.batches.values()
        )
        for batch in list(session.batches.values()):
            self._drop_batch(batch, EndOfResponsesReason.CLIENT_PURGED)
        session.state = SessionState.CLOSED
        del self.sessions[session.id]
        if self.on_session_closed is not None:
            self.on_session_closed(session.id, finished)

    # --- batches (§4.4–§4.8, §5.2) ----------------------------------------------------------

    def _batch(self, session: BrokerSession, name: str, user: str) -> BrokerBatch:
        """Find or create (§3.2: the broker creates the client on lookup)."""
        validate_batch_name(name)
        key = name.casefold()
        batch = session.batches.get(key)
        now = self.clock()
        session.last_activity = now
        if batch is None:
            self._batch_uids += 1
            batch = BrokerBatch(
                name=name, session=session, owner=user, last_activity=now, uid=self._batch_uids
            )
            session.batches[key] = batch
            self.counters.batches_created += 1
            return batch
        if not same_user(batch.owner, user):
            raise soa_fault(
                403,
                "AccessDenied_BrokerQueue",
                f"Access to batch {name!r} is denied: it belongs to another user.",
            )
        if batch.state is not BatchState.DISCONNECTED:
            batch.last_activity = now
        return batch

    def _peek(self, session: BrokerSession, name: str, user: str) -> BrokerBatch | None:
        validate_batch_name(name)
        batch = session.batches.get(name.casefold())
        if batch is not None and not same_user(batch.owner, user):
            raise soa_fault(
                403,
                "AccessDenied_BrokerQueue",
                f"Access to batch {name!r} is denied: it belongs to another user.",
            )
        return batch

    @staticmethod
    def _check(call: BatchCall, batch: BrokerBatch | None) -> None:
        state = batch.state if batch is not None else BatchState.READY
        fault = LEGALITY[(call, state)]
        if fault is not None:
            name, message = fault
            raise soa_fault(400, name, message.format(state=state.value))

    def check_send(self, session: BrokerSession, name: str, user: str, *, commit: bool) -> None:
        """Validate a Send Requests call without changing anything (G35).

        Raises:
            FaultError: bad batch name, another user's batch, or illegal in the batch state.
        """
        self._check(
            BatchCall.SEND_COMMIT if commit else BatchCall.SEND, self._peek(session, name, user)
        )

    def send(
        self,
        session: BrokerSession,
        name: str,
        user: str,
        messages: list[Message],
        *,
        commit: bool,
    ) -> tuple[BrokerBatch, list[Message]]:
        """Append ``messages`` to batch ``name``, dropping duplicate message ids (§3.3).

        An empty message id never counts as a duplicate. In a durable session the batch
        instance ids of the messages are applied too (see :meth:`_accept_durable`). Returns
        the batch and the accepted messages, for dispatch. All-or-nothing: validation happens
        before any change (G26).

        Raises:
            FaultError: as :meth:`check_send`.
        """
        self.check_send(session, name, user, commit=commit)
        batch = self._batch(session, name, user)
        self.counters.requests_received += len(messages)
        if session.durable:
            accepted = self._accept_durable(batch, messages)
        else:  # interactive: ClientInstanceIdNS is ignored (§3.3)
            accepted = messages
            if any(m[0] for m in messages):
                seen = batch.message_ids
                accepted = []
                for m in messages:
                    message_id = m[0]
                    if message_id:
                        if message_id in seen:
                            continue
                        seen.add(message_id)
                    accepted.append(m)
            self.counters.duplicates_dropped += len(messages) - len(accepted)
        batch.received += len(accepted)
        if commit:
            self._commit(batch)
        return batch, accepted

    def _accept_durable(self, batch: BrokerBatch, messages: list[Message]) -> list[Message]:
        """Batch-instance tracking of a durable batch (§3.3 table, §3.5 header).

        Each request carries ``HPCServer2008_Broker_ClientInstanceIdNS`` (absent = ``-1``, as
        the broker reads it), and the batch remembers the newest instance seen. Like the
        broker's ``RequestReceived``, messages are taken in body order:

        * older than the newest instance: discarded (``stale_instance_dropped``);
        * newer: the client restarted. The older instance's requests that were not flushed
          yet are discarded (``unflushed_discarded``), and duplicate detection starts over,
          since it is per instance. A Send Requests call flushes when it completes, so the
          unflushed requests are the older instance's messages earlier in the same body;
          those of earlier calls were flushed and stay;
        * same instance: kept unless its ``MessageID`` was already received in this instance.
        """
        current = batch.instance_id
        seen = batch.message_ids
        accepted: list[Message] = []
        stale = unflushed = duplicates = 0
        for m in messages:
            payload = m[2]
            instance = payload.client_instance_id if type(payload) is SoapRequest else None
            if instance is None:
                instance = -1
            if instance < current:
                stale += 1
                continue
            if instance > current:
                unflushed += len(accepted)
                accepted = []
                current = instance
                seen = set()
            message_id = m[0]
            if message_id:
                if message_id in seen:
                    duplicates += 1
                    continue
                seen.add(message_id)
            accepted.append(m)
        batch.instance_id = current
        batch.message_ids = seen
        counters = self.counters
        counters.stale_instance_dropped += stale
        counters.unflushed_discarded += unflushed
        counters.duplicates_dropped += duplicates
        return accepted

    def commit(self, session: BrokerSession, name: str, user: str) -> None:
        """Indicate the End of Requests (§4.5).

        Raises:
            FaultError: per the §5.2 matrix.
        """
        self._check(BatchCall.COMMIT, self._peek(session, name, user))
        self._commit(self._batch(session, name, user))

    def _commit(self, batch: BrokerBatch) -> None:
        batch.state = BatchState.PROCESSING
        self._maybe_finish(batch)

    def _maybe_finish(self, batch: BrokerBatch) -> None:
        if batch.state is BatchState.PROCESSING and batch.answered >= batch.received:
            batch.state = BatchState.FINISHED
            if batch.stream is not None:
                batch.stream.wake()

    def complete(self, batch: BrokerBatch, response: StoredResponse) -> bool:
        """Store one answer; ``False`` when its batch is gone (purged, closed, timed out)."""
        return self.complete_all(batch, [response])

    def complete_all(self, batch: BrokerBatch, responses: list[StoredResponse]) -> bool:
        """Store answers of ``batch`` in completion order and wake its stream once."""
        if not batch.alive:
            return False
        batch.responses.extend(responses)
        batch.answered += len(responses)
        self.counters.responses_stored += len(responses)
        if batch.state is BatchState.PROCESSING and batch.answered >= batch.received:
            batch.state = BatchState.FINISHED
        if batch.stream is not None:
            batch.stream.wake()
        return True

    def open_stream(
        self,
        session: BrokerSession,
        name: str,
        user: str,
        *,
        count: int,
        reset: bool,
        action: str | None = None,
    ) -> ResponseStream:
        """Get Responses (§4.6): apply the reset/acknowledge rules and open the cursor.

        ``count`` is ``-1`` (all) or positive; the caller has validated it.

        Raises:
            FaultError: bad batch name, another user's batch, ``ClientTimeout``.
        """
        self._check(BatchCall.GET_RESPONSES, self._peek(session, name, user))
        batch = self._batch(session, name, user)
        if batch.stream is not None:  # G25: the newer call wins, the older ends without EOR
            batch.stream._end(None)
        responses = batch.responses
        if reset:
            batch.sparse.clear()
            if session.durable:
                batch.scan_from = 0
            else:
                first = batch.first_live
                while first < len(responses) and responses[first] is None:
                    first += 1
                batch.first_live = batch.scan_from = first
            batch.since_reset = 0
        elif not session.durable:
            for start, stop in batch.last_delivered:  # acknowledge the previous call's
                responses[start:stop] = [None] * (stop - start)
        batch.last_delivered = []
        stream = ResponseStream(self, batch, count, action)
        batch.stream = stream
        session.open_streams += 1
        self.counters.streams_opened += 1
        return stream

    def status(self, session: BrokerSession, name: str, user: str) -> BrokerClientStatus:
        """Get Request Status (§4.7); creates a never-used batch (``Ready``)."""
        return self._batch(session, name, user).state.status

    def purge(self, session: BrokerSession, name: str, user: str) -> None:
        """Delete Requests (§4.8): any open stream gets ``ClientPurged``; the name is free."""
        batch = self._peek(session, name, user)
        session.last_activity = self.clock()
        if batch is not None:
            self._drop_batch(batch, EndOfResponsesReason.CLIENT_PURGED)
            self.counters.batches_purged += 1

    def _drop_batch(self, batch: BrokerBatch, reason: EndOfResponsesReason) -> None:
        batch.alive = False
        if batch.stream is not None:
            batch.stream._end(EndOfResponses(batch.since_reset, reason))
        batch.session.batches.pop(batch.name.casefold(), None)

    # --- timeouts (§5.1, §5.2) ---------------------------------------------------------------

    def expire(self) -> None:
        """Apply ``ClientIdleTimeout`` and ``SessionIdleTimeout`` as of ``clock()``."""
        now = self.clock()
        for session in list(self.sessions.values()):
            if session.client_idle_timeout_ms <= 0 and session.session_idle_timeout_ms <= 0:
                continue  # both disabled: nothing to look at
            pending = False
            limit = session.client_idle_timeout_ms / 1000.0
            for batch in list(session.batches.values()):
                if batch.pending:
                    pending = True
                if limit <= 0:
                    continue
                if batch.state is BatchState.DISCONNECTED:
                    if now - batch.disconnected_at >= limit:
                        self._forget(batch)
                elif batch.pending == 0 and now - batch.last_activity >= limit:
                    self._disconnect(batch, now)
            idle = session.session_idle_timeout_ms / 1000.0
            if (
                idle > 0
                and session.state is SessionState.ACTIVE
                and session.open_streams == 0
                and not pending
                and now - session.last_activity >= idle
            ):
                self.counters.sessions_timed_out += 1
                if session.durable:
                    session.state = SessionState.INACTIVE
                else:
                    self._close(session)

    def _disconnect(self, batch: BrokerBatch, now: float) -> None:
        batch.state_before_disconnect = batch.state
        batch.state = BatchState.DISCONNECTED
        batch.disconnected_at = now
        self.counters.batches_timed_out += 1
        if batch.stream is not None:
            reason = EndOfResponsesReason.CLIENT_TIMEOUT
            batch.stream._end(EndOfResponses(batch.since_reset, reason))
        if not batch.session.durable:
            batch.alive = False  # an interactive batch's data is discarded

    def _forget(self, batch: BrokerBatch) -> None:
        session = batch.session
        if session.durable:  # re-loaded from storage on the next call (§5.2)
            before = batch.state_before_disconnect
            batch.state = BatchState.GET_RESPONSE if before is BatchState.FINISHED else before
            batch.last_activity = self.clock()
        else:
            session.batches.pop(batch.name.casefold(), None)

    def next_deadline(self) -> float | None:
        """Smallest configured timeout in seconds (how often :meth:`expire` should run)."""
        values = [
            v / 1000.0
            for s in self.sessions.values()
            for v in (s.client_idle_timeout_ms, s.session_idle_timeout_ms)
            if v > 0
        ]
        return min(values) if values else None

    def end_all_streams(self) -> None:
        """Shutdown: end every open stream without a marker."""
        for session in list(self.sessions.values()):
            for batch in list(session.batches.values()):
                if batch.stream is not None:
                    batch.stream._end(None)

    def iter_batches(self) -> Iterator[BrokerBatch]:
        for session in self.sessions.values():
            yield from session.batches.values()

    def __repr__(self) -> str:
        batches = sum(len(s.batches) for s in self.sessions.values())
        return f"<Broker sessions={len(self.sessions)} batches={batches} {self.counters}>"
