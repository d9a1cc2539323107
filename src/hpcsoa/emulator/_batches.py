"""Records of the emulator's broker: sessions, batches, their states and the §5.2 matrix.

Plain mutable records changed only by :class:`~._broker.Broker` and
:class:`~._cursor.ResponseStream`; no I/O, no clocks.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, TypeAlias

from ..protocol import BrokerClientStatus, GenericRequest, ServiceVersion, SoaFault, SoapRequest
from ..protocol._errors import SOA_FAULT_CODES
from ._context import FaultError

if TYPE_CHECKING:
    from ._cursor import ResponseStream

__all__ = [
    "LEGALITY",
    "MAX_BATCH_NAME",
    "R_ACTION",
    "R_BODY",
    "R_FAULT",
    "R_OUTPUT",
    "R_RELATES_TO",
    "R_REQUEST_ACTION",
    "R_USER_DATA",
    "BatchCall",
    "BatchState",
    "BrokerBatch",
    "BrokerCounters",
    "BrokerSession",
    "Message",
    "SessionState",
    "StoredResponse",
    "same_user",
    "soa_fault",
    "validate_batch_name",
]

MAX_BATCH_NAME: Final = 128
_BATCH_NAME_RE: Final = re.compile(r"^[0-9a-zA-Z_\-\{\}\s]*$")


def soa_fault(status: int, name: str, message: str) -> FaultError:
    """A :class:`FaultError` with the §3.7 code called ``name``."""
    return FaultError(status, SOA_FAULT_CODES[name], message)


def validate_batch_name(name: str) -> None:
    """The broker's client-id check (§3.2, G35).

    Raises:
        FaultError: 400 ``ArgumentError`` when longer than 128 or outside the allowed set.
    """
    if len(name) <= MAX_BATCH_NAME and _BATCH_NAME_RE.match(name):
        return
    if len(name) > MAX_BATCH_NAME:
        raise soa_fault(
            400, "ArgumentError", "ClientId is too long. The maximum length is 128 characters."
        )
    if not _BATCH_NAME_RE.match(name):
        raise soa_fault(
            400,
            "ArgumentError",
            f"Invalid clientId {name!r}: only letters, digits, '_', '-', '{{', '}}' and "
            "white space are allowed.",
        )


class SessionState(enum.Enum):
    ACTIVE = "active"
    INACTIVE = "inactive"  # durable broker unloaded after SessionIdleTimeout (§5.1)
    CLOSED = "closed"


class BatchState(enum.Enum):
    """Broker client states (§5.2); values are the broker's names."""

    READY = "ClientConnected"
    PROCESSING = "EndRequests"
    FINISHED = "AllRequestDone"
    GET_RESPONSE = "GetResponse"  # re-loaded after it had completed
    DISCONNECTED = "Disconnected"

    @property
    def status(self) -> BrokerClientStatus:
        return _STATUS[self]


_STATUS: Final = {
    BatchState.READY: BrokerClientStatus.READY,
    BatchState.PROCESSING: BrokerClientStatus.PROCESSING,
    BatchState.FINISHED: BrokerClientStatus.FINISHED,
    BatchState.GET_RESPONSE: BrokerClientStatus.FINISHED,
    BatchState.DISCONNECTED: BrokerClientStatus.UNKNOWN,
}


class BatchCall(enum.Enum):
    """The batch calls the legality matrix constrains."""

    SEND = "send"
    SEND_COMMIT = "send+commit"
    COMMIT = "commit"
    GET_RESPONSES = "get_responses"


_TIMEOUT: Final = ("ClientTimeout", "The BrokerClient has timed out. Retry later.")
_FLUSH: Final = ("Broker_FlushRejected", "Flush rejected: the batch is in the {state} state.")
_EOM_END: Final = ("Broker_EOMReject_EndRequests", "EndRequests was already called for this batch.")
_EOM_DONE: Final = (
    "Broker_EOMRejected",
    "EndRequests rejected. The client is in the AllRequestDone state.",
)
_EOM_GR: Final = (
    "Broker_EOMReject_GetResponse",
    "EndRequests rejected. The client is in the GetResponse state.",
)

# The §5.2 legality matrix: (call, state) → fault (name, message), or None = proceed.
# A call on an absent batch creates it in READY first, so "absent" rows equal READY rows.
LEGALITY: Final[dict[tuple[BatchCall, BatchState], tuple[str, str] | None]] = {
    (BatchCall.SEND, BatchState.READY): None,
    (BatchCall.SEND, BatchState.PROCESSING): _FLUSH,
    (BatchCall.SEND, BatchState.FINISHED): _FLUSH,
    (BatchCall.SEND, BatchState.GET_RESPONSE): _FLUSH,
    (BatchCall.SEND, BatchState.DISCONNECTED): _TIMEOUT,
    (BatchCall.SEND_COMMIT, BatchState.READY): None,
    (BatchCall.SEND_COMMIT, BatchState.PROCESSING): _EOM_END,
    (BatchCall.SEND_COMMIT, BatchState.FINISHED): _EOM_DONE,
    (BatchCall.SEND_COMMIT, BatchState.GET_RESPONSE): _EOM_GR,
    (BatchCall.SEND_COMMIT, BatchState.DISCONNECTED): _TIMEOUT,
    (BatchCall.COMMIT, BatchState.READY): None,
    (BatchCall.COMMIT, BatchState.PROCESSING): _EOM_END,
    (BatchCall.COMMIT, BatchState.FINISHED): _EOM_DONE,
    (BatchCall.COMMIT, BatchState.GET_RESPONSE): _EOM_GR,
    (BatchCall.COMMIT, BatchState.DISCONNECTED): _TIMEOUT,
    (BatchCall.GET_RESPONSES, BatchState.READY): None,
    (BatchCall.GET_RESPONSES, BatchState.PROCESSING): None,
    (BatchCall.GET_RESPONSES, BatchState.FINISHED): None,
    (BatchCall.GET_RESPONSES, BatchState.GET_RESPONSE): None,
    (BatchCall.GET_RESPONSES, BatchState.DISCONNECTED): _TIMEOUT,
}


@dataclass(slots=True)
class BrokerCounters:
    """Totals since start, for tests and ``/hpcsoa-admin/stats``."""

    sessions_created: int = 0
    sessions_closed: int = 0
    sessions_timed_out: int = 0
    batches_created: int = 0
    batches_purged: int = 0
    batches_timed_out: int = 0
    requests_received: int = 0  # every message of every accepted Send Requests body
    duplicates_dropped: int = 0
    stale_instance_dropped: int = 0  # durable: from an older batch instance than the newest
    unflushed_discarded: int = 0  # durable: an older instance's unflushed, discarded by a newer
    responses_stored: int = 0
    responses_delivered: int = 0
    streams_opened: int = 0


#: One stored answer: ``(action, request_action, relates_to, user_data, output, body, fault)``.
#: ``action`` is the reply (or fault) action; ``relates_to`` the request's MessageID ("" for
#: generic requests); ``output`` the generic output / typed result / fault reason; ``body``
#: the SOAP reply body (``None``: a generic reply, rendered on demand; or a fault); ``fault``
#: set for failed requests.
StoredResponse: TypeAlias = tuple[str, str, str, str | None, str, str | None, SoaFault | None]
R_ACTION: Final = 0
R_REQUEST_ACTION: Final = 1
R_RELATES_TO: Final = 2
R_USER_DATA: Final = 3
R_OUTPUT: Final = 4
R_BODY: Final = 5
R_FAULT: Final = 6


#: One request as the broker sees it: ``(message_id, action, payload)``. Generic requests
#: have an empty message id (the REST front end assigns one only when it renders SOAP).
Message: TypeAlias = tuple[str, str, GenericRequest | SoapRequest]


@dataclass(slots=True, eq=False)
class BrokerBatch:
    """One broker client (§3.2). Mutated only by :class:`Broker` and :class:`ResponseStream`."""

    name: str
    session: BrokerSession
    owner: str
    state: BatchState = BatchState.READY
    received: int = 0
    answered: int = 0
    responses: list[StoredResponse | None] = field(default_factory=list)
    message_ids: set[str] = field(default_factory=set)  # of the current instance (§3.3)
    instance_id: int = -1  # durable: newest ClientInstanceIdNS seen; -1 = header absent
    scan_from: int = 0  # the watermark: every entry below it is delivered or deleted
    sparse: set[int] = field(default_factory=set)  # delivered above the watermark (filters)
    filtered: bool = False  # a filtered call delivered past the watermark: scan from now on
    first_live: int = 0  # no live entry below this index (a hint)
    last_delivered: list[tuple[int, int]] = field(default_factory=list)  # ranges, latest call
    since_reset: int = 0  # EndOfResponses.Count
    stream: ResponseStream | None = None
    last_activity: float = 0.0
    disconnected_at: float = 0.0
    state_before_disconnect: BatchState = BatchState.READY
    alive: bool = True
    uid: int = 0  # unique per broker: seeds the MessageIDs the front end makes up (§3.3)

    @property
    def pending(self) -> int:
        return self.received - self.answered

    @property
    def is_complete(self) -> bool:
        return self.state in (BatchState.FINISHED, BatchState.GET_RESPONSE)

    def held(self) -> int:
        """Responses still stored (not acknowledged); O(n), for tests and reprs."""
        return sum(1 for r in self.responses if r is not None)


@dataclass(slots=True, eq=False)
class BrokerSession:
    """One SOA session (§3.1) and its batches."""

    id: int
    owner: str
    service_name: str
    durable: bool
    max_message_size: int
    service_operation_timeout: int
    client_idle_timeout_ms: int
    session_idle_timeout_ms: int
    share: bool = False
    service_version: ServiceVersion | None = None
    state: SessionState = SessionState.ACTIVE
    batches: dict[str, BrokerBatch] = field(default_factory=dict)
    last_activity: float = 0.0
    open_streams: int = 0

    def batch(self, name: str) -> BrokerBatch | None:
        return self.batches.get(name.casefold())


def same_user(a: str, b: str) -> bool:
    return a.casefold() == b.casefold()
