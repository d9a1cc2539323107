"""The Get Responses cursor of a batch: delivery, end conditions, acknowledgement (§4.6).

See the theory of operation in :mod:`._broker`. Pure and synchronous.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..protocol import EndOfResponses
from ._batches import R_REQUEST_ACTION, BrokerBatch, StoredResponse

if TYPE_CHECKING:
    from ._broker import Broker

__all__ = ["ResponseStream"]


class ResponseStream:
    """One Get Responses call: the batch's cursor while it is open (§4.6).

    The async layer calls :meth:`take` repeatedly, writes what it returns, waits for
    ``wake`` when nothing is ready, and stops once :attr:`ended` is true (writing :attr:`eor`
    if set). It calls :meth:`close` when it stops for its own reasons (client gone).
    """

    __slots__ = (
        "_broker",
        "action",
        "batch",
        "count",
        "ended",
        "eor",
        "indices",
        "pos",
        "wake",
        "written",
    )

    def __init__(self, broker: Broker, batch: BrokerBatch, count: int, action: str | None) -> None:
        self._broker = broker
        self.batch = batch
        self.count = count
        self.action = action or None
        self.written = 0
        self.pos = batch.scan_from
        self.ended = False
        self.eor: EndOfResponses | None = None
        self.indices: Sequence[int] = ()
        self.wake: Callable[[], None] = _noop

    def take(self, limit: int = 1 << 30) -> list[StoredResponse]:
        """Hand out up to ``limit`` next deliverable responses, marking them delivered.

        Their batch positions are in :attr:`indices` afterwards, and :attr:`ended` tells
        whether the stream is over.
        """
        if self.ended:
            return []
        b = self.batch
        responses = b.responses
        n = len(responses)
        want = limit if self.count < 0 else min(limit, self.count - self.written)
        out: list[StoredResponse]
        if self.action is None and not b.filtered:
            # Fast path: everything above the watermark is live and undelivered.
            i = b.scan_from
            j = min(n, i + want)
            out = responses[i:j]  # type: ignore[assignment]  # no None above the watermark
            self.indices = range(i, j)
            if j > i:
                b.scan_from = j
                b.last_delivered.append((i, j))
            self.pos = j
        else:
            out, self.indices = self._scan(want)
        if out:
            self.written += len(out)
            b.since_reset += len(out)
            self._broker.counters.responses_delivered += len(out)
            b.last_activity = b.session.last_activity = self._broker.clock()
        done = b.is_complete and not self._more_to_deliver()
        if self.count >= 0 and self.written >= self.count:
            self._end(EndOfResponses(b.since_reset) if done else None)
        elif done:
            self._end(EndOfResponses(b.since_reset))
        return out

    def _scan(self, want: int) -> tuple[list[StoredResponse], list[int]]:
        """The general path: skip deleted, already delivered and unmatched responses."""
        b = self.batch
        responses = b.responses
        sparse = b.sparse
        action = self.action
        out: list[StoredResponse] = []
        indices: list[int] = []
        n = len(responses)
        i = max(self.pos, b.scan_from)
        contiguous = i == b.scan_from
        while i < n and len(out) < want:
            r = responses[i]
            if r is None or i in sparse:
                i += 1
                if contiguous:
                    b.scan_from = i
                    sparse.discard(i - 1)
                continue
            if action is not None and r[R_REQUEST_ACTION] != action:
                contiguous = False
                i += 1
                continue
            out.append(r)
            indices.append(i)
            b.last_delivered.append((i, i + 1))
            i += 1
            if contiguous:
                b.scan_from = i
            else:
                sparse.add(i - 1)
                b.filtered = True
        self.pos = i
        return out, indices

    def _more_to_deliver(self) -> bool:
        b = self.batch
        if self.action is None and not b.filtered:
            return b.scan_from < len(b.responses)
        sparse = b.sparse
        action = self.action
        start = max(self.pos, b.scan_from)
        for i, r in enumerate(itertools.islice(b.responses, start, None), start):
            if (
                r is not None
                and i not in sparse
                and (action is None or r[R_REQUEST_ACTION] == action)
            ):
                return True
        return False

    def _end(self, eor: EndOfResponses | None) -> None:
        if self.ended:
            return
        self.ended = True
        self.eor = eor
        b = self.batch
        if b.stream is self:
            b.stream = None
        b.session.open_streams -= 1
        b.session.last_activity = self._broker.clock()
        self.wake()

    def close(self) -> None:
        """End the stream from the caller's side (client gone); idempotent."""
        self._end(None)

    def __repr__(self) -> str:
        return (
            f"<ResponseStream batch={self.batch.name!r} count={self.count} "
            f"written={self.written} ended={self.ended}>"
        )


def _noop() -> None:
    return None
