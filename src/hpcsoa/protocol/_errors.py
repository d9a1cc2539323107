"""Error responses → exceptions, and the pure retry table (spec §2.7, §3.7; reliability §3.1–§3.4).

:func:`error_from_response` turns ``(status, headers, body)`` into the right :class:`ApiError`
subclass, decoding whichever fault body the service sent (legacy ``<string>``,
``HpcWebServiceFault`` XML or its JSON form). Callers should branch on ``code`` (the fault
``Code``), not on the exact 4xx status (§2.7).

:func:`is_retryable` answers "may this failure of this operation be retried blindly?". It
classifies by how far the request got (reliability §3.2):

1. *never sent* (:class:`ConnectError`, :class:`PoolTimeout`): safe for every operation,
   except a TLS verification failure, which is never retried;
2. *sent, no usable response* (reset, read timeout): only for operations whose repetition has
   the same effect (:data:`OPERATION_RETRY_SAFETY`);
3. *response received*: 408/429/500/502/503/504 for those same operations; 429 and 503 (the
   service refused before doing any work) for every operation; nothing else.

Pure: the current time is passed in (``now``), never read.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Final

from .._exceptions import (
    ApiError,
    AuthenticationError,
    ConnectError,
    PoolTimeout,
    ServiceUnavailable,
    TLSVerificationError,
    TooManyRequests,
    TransportError,
    status_error_class,
)
from ._datacontract import decode_fault
from ._models import WebServiceFault
from ._routes import Operation

__all__ = [
    "IDEMPOTENT_OPERATIONS",
    "OPERATION_RETRY_SAFETY",
    "RETRYABLE_STATUSES",
    "SCHEDULER_FAULT_CODES",
    "SEND_RETRY_SAFE",
    "SOA_FAULT_CATEGORIES",
    "SOA_FAULT_CODES",
    "RetrySafety",
    "error_from_response",
    "fault_category",
    "fault_code_name",
    "is_retryable",
    "parse_retry_after",
    "retry_after_from_headers",
]

# --- fault codes (§3.7) ------------------------------------------------------------------------

#: SOA fault codes of the open-sourced SOA client library (spec §3.7), name → code.
SOA_FAULT_CODES: Final[Mapping[str, int]] = {
    "OperationTimeout": 0x01000002,
    "Broker_EOMRejected": 0x0100000B,
    "Broker_EOMReject_GetResponse": 0x01000018,
    "Broker_EOMReject_EndRequests": 0x01000019,
    "Broker_FlushRejected": 0x0100001A,
    "Broker_AlreadyClosed": 0x0100001B,
    "Broker_EOMReject_NoRequest": 0x0100001E,
    "NoAvailableBrokerNodes": 0x02000000,
    "Broker_SessionFailure": 0x0200000B,
    "WebAPI_BrokerNotActive": 0x0200000F,
    "WebAPI_FailedToSendRequest": 0x02000010,
    "ClientPurged": 0x04000000,
    "Broker_RetryLimitExceeded": 0x04000001,
    "ClientTimeout": 0x04000003,
    "InvalidArgument": 0x03000000,
    "InvalidSessionId": 0x03000001,
    "AuthenticationFailure": 0x03000002,
    "AccessDenied_BrokerQueue": 0x03000005,
    "InvalidAttachDurableSession": 0x0300000A,
    "InvalidAttachInteractiveSession": 0x0300000B,
    "Broker_InvalidSessionId": 0x03000010,
    "Broker_InvalidClientIdOrTooLong": 0x03000016,
    "Service_NotFound": 0x0300001E,
    "ServiceVersion_NotFound": 0x03000020,
    "Azure_NotSupportDurableSession": 0x03000032,
    "WebAPI_APIVersionIncorrect": 0x03000034,
    "WebAPI_AccessDenied": 0x03000035,
    "UnknownError": 0x0F000000,
    "ArgumentError": 0x0F00FFFF,
}

#: Category of an SOA code = its top byte (spec §3.7).
SOA_FAULT_CATEGORIES: Final[Mapping[int, str]] = {
    0x01000000: "SessionConnectionError",
    0x02000000: "SessionError",
    0x03000000: "SessionFatalError",
    0x04000000: "ApplicationError",
    0x0F000000: "Unknown",
}

#: Scheduler (HRESULT-style) codes seen in the docs. The official constant names are not
#: public; these names are ours and describe the documented situation.
SCHEDULER_FAULT_CODES: Final[Mapping[str, int]] = {
    # "Jobs in the Canceled state cannot be canceled." (0x80040208, §2.7)
    "Scheduler_InvalidJobState": -2147220984,
}

_CODE_NAMES: Final[dict[int, str]] = {
    **{code: name for name, code in SOA_FAULT_CODES.items()},
    **{code: name for name, code in SCHEDULER_FAULT_CODES.items()},
}


def fault_code_name(code: int) -> str | None:
    """The §3.7 (or known scheduler) name of a fault ``Code``, else ``None``."""
    return _CODE_NAMES.get(code)


def fault_category(code: int) -> str | None:
    """The category of a fault ``Code``.

    SOA codes (``0x01…``–``0x0F…``) map to ``SessionConnectionError``, ``SessionError``,
    ``SessionFatalError``, ``ApplicationError`` or ``Unknown`` by their top byte; negative
    ``0x8004xxxx`` HRESULTs (the scheduler's facility) give ``SchedulerError``; anything else
    ``None``.
    """
    if 0 <= code <= 0x0FFFFFFF:
        return SOA_FAULT_CATEGORIES.get(code & 0x0F000000)
    if code < 0 and (code & 0xFFFF0000) == 0x80040000:
        return "SchedulerError"
    return None


# --- Retry-After ------------------------------------------------------------------------------

_DELTA_RE: Final = re.compile(r"[0-9]+(\.[0-9]+)?")


def parse_retry_after(value: str, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value, relative to ``now`` (epoch seconds).

    Accepts delay-seconds (an integer, or a decimal fraction as some servers send) and an
    HTTP-date. A date in the past gives ``0.0``. Anything unparseable gives ``None``.
    """
    text = value.strip()
    if _DELTA_RE.fullmatch(text):
        return _seconds(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" / obsolete zones: RFC 9110 dates are always GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def _seconds(text: str, scale: float = 1.0) -> float | None:
    """A delay-seconds value (already matched by ``_DELTA_RE``); ``None`` if it overflows."""
    seconds = float(text) * scale
    return seconds if math.isfinite(seconds) else None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def retry_after_from_headers(
    headers: Mapping[str, str], *, now: float | None = None
) -> float | None:
    """The server's requested delay in seconds: ``retry-after-ms`` first, then ``Retry-After``.

    ``now`` (epoch seconds) is needed only for the HTTP-date form; without it such a value is
    ignored (the protocol layer reads no clock). Header names match case-insensitively.
    """
    ms = (_header(headers, "retry-after-ms") or "").strip()
    if _DELTA_RE.fullmatch(ms):
        return _seconds(ms, 0.001)
    value = _header(headers, "retry-after")
    if value is None:
        return None
    if now is None:
        text = value.strip()
        return _seconds(text) if _DELTA_RE.fullmatch(text) else None
    return parse_retry_after(value, now=now)


# --- error_from_response ---------------------------------------------------------------------

_EXCERPT_LIMIT: Final = 200
_MESSAGE_LIMIT: Final = 2000  # a fault message is shown in full up to here
_NON_PRINTABLE: Final = re.compile(r"[^\x20-\x7e\u00a0-\ud7ff\ue000-\ufffd]+")
_TAGS: Final = re.compile(r"<[^>]{0,500}>")


def _excerpt(body: bytes) -> str:
    """A short, single-line, printable excerpt of a body that is not a fault."""
    text = body[: _EXCERPT_LIMIT * 8].decode("utf-8", "replace")
    if text.lstrip().startswith("<"):
        text = _TAGS.sub(" ", text)  # an HTML error page: keep the words, drop the markup
    text = " ".join(_NON_PRINTABLE.sub(" ", text).split())
    if len(text) > _EXCERPT_LIMIT:
        text = text[: _EXCERPT_LIMIT - 1] + "…"
    return text


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"


_KNOWN_AUTH_SCHEMES: Final = {
    s.lower(): s for s in ("Basic", "NTLM", "Negotiate", "Digest", "Bearer", "Kerberos")
}


def _auth_schemes(headers: Mapping[str, str]) -> str:
    """Known scheme names offered by ``WWW-Authenticate``: never realms or other data."""
    value = _header(headers, "www-authenticate") or ""
    found = [
        _KNOWN_AUTH_SCHEMES[token.lower()]
        for token in re.split(r"[\s,]+", value)
        if token.lower() in _KNOWN_AUTH_SCHEMES
    ]
    return ", ".join(dict.fromkeys(found))


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    operation: str | None = None,
    now: float | None = None,
) -> ApiError:
    """Build the exception for an error response.

    Args:
        status: the HTTP status (>= 400).
        headers: response headers (any case).
        body: the response body (may be empty, a fault in any of the three forms, or an
            unrelated page such as a proxy's HTML).
        operation: the operation name, carried on the error.
        now: epoch seconds, used only to resolve an HTTP-date ``Retry-After``.

    Returns:
        an instance of the class :func:`status_error_class` picks for ``status``. ``code``,
        ``code_name`` and ``values`` come from the fault; ``message`` is the fault message with
        its ``{0}`` placeholders filled, or a short printable excerpt of a non-fault body.
        429/503 errors carry ``retry_after`` (seconds) when the server sent one.

    For 401 the message is fixed text (plus the offered auth schemes): nothing from the body
    is echoed, so a server that reflects the request cannot leak credentials into logs.
    """
    cls = status_error_class(status)
    fault = decode_fault(body)
    code: int | None = None
    values: tuple[tuple[str, str], ...] = ()
    if isinstance(fault, WebServiceFault):
        code = fault.code
        values = fault.values or ()
        message = fault.formatted_message()
    elif isinstance(fault, str):
        message = fault
    else:
        message = _excerpt(body) or _reason(status)
    if issubclass(cls, AuthenticationError):
        schemes = _auth_schemes(headers)
        message = "credentials missing or rejected" + (
            f" (server accepts: {schemes})" if schemes else ""
        )
        values = ()
    else:
        message = " ".join(_NON_PRINTABLE.sub(" ", message[: _MESSAGE_LIMIT * 4]).split())
        if len(message) > _MESSAGE_LIMIT:
            message = message[: _MESSAGE_LIMIT - 1] + "…"
        message = message or _reason(status)
    error = cls(
        message,
        status=status,
        code=code,
        code_name=fault_code_name(code) if code is not None else None,
        operation=operation,
        values=values,
        headers=headers,
    )
    if isinstance(error, TooManyRequests | ServiceUnavailable):
        error.retry_after = retry_after_from_headers(headers, now=now)
    return error


# --- retryability (reliability §3.1–§3.2, STYLE §6) -------------------------------------------


class RetrySafety(enum.Enum):
    """What repeating an operation after an ambiguous failure does."""

    IDEMPOTENT = "idempotent"  # same outcome however often it runs
    DEDUPLICATED = "deduplicated"  # duplicates are filtered (MessageID / user data)
    UNSAFE = "unsafe"  # a repeat creates something twice or faults on the second call


#: Blind retry of ``send_requests`` after the body may have reached the server. True because
#: (a) the broker drops a request whose ``MessageID`` it already received in the batch
#: (spec §3.3) and the client keeps each request's MessageID across attempts, and (b) the
#: client de-duplicates responses by user data anyway (generic mode has no MessageID, so
#: a retry may run a request twice, but its result is delivered once). Reliability §3.1.
SEND_RETRY_SAFE: Final = True

_I, _D, _U = RetrySafety.IDEMPOTENT, RetrySafety.DEDUPLICATED, RetrySafety.UNSAFE

#: Per-operation retry safety, keyed by :class:`Operation` value. Every operation has a row.
OPERATION_RETRY_SAFETY: Final[Mapping[str, RetrySafety]] = {
    # SOA (§4). Create Session twice = two service jobs (orphan): only when never sent.
    Operation.CREATE_SESSION.value: _U,
    Operation.ATTACH_SESSION.value: _I,
    Operation.CLOSE_SESSION.value: _I,  # the outcome is the same either way
    Operation.SEND_REQUESTS.value: _D if SEND_RETRY_SAFE else _U,
    # A second commit faults (Broker_EOMReject_EndRequests); after an ambiguous failure the
    # client asks Get Request Status instead of repeating it.
    Operation.COMMIT.value: _U,
    # A read with a cursor: the client reopens with reset=true itself (reliability §3.3).
    Operation.GET_RESPONSES.value: _I,
    Operation.GET_BATCH_STATUS.value: _I,
    Operation.PURGE.value: _I,
    Operation.GET_SERVICE_VERSIONS.value: _I,
    # cluster / nodes / templates (§6): all GETs
    Operation.GET_CLUSTERS.value: _I,
    Operation.GET_VERSION.value: _I,
    Operation.GET_ACTIVE_HEAD_NODE.value: _I,
    Operation.GET_NODE.value: _I,
    Operation.LIST_NODES.value: _I,
    Operation.LIST_NODE_GROUPS.value: _I,
    Operation.GET_NODE_GROUP_MEMBERS.value: _I,
    Operation.LIST_JOB_TEMPLATES.value: _I,
    # jobs (§7). Creating twice makes two jobs; state transitions fault the second time
    # ("Jobs in the Canceled state cannot be canceled."). Setting properties/env overwrites
    # values (PUT semantics), so a repeat leaves the same state.
    Operation.CREATE_JOB.value: _U,
    Operation.CREATE_JOB_FROM_XML.value: _U,
    Operation.LIST_JOBS.value: _I,
    Operation.GET_JOB.value: _I,
    Operation.SET_JOB_PROPERTIES.value: _I,
    Operation.SUBMIT_JOB.value: _U,
    Operation.CANCEL_JOB.value: _U,
    Operation.REQUEUE_JOB.value: _U,
    Operation.GET_JOB_CUSTOM_PROPERTIES.value: _I,
    Operation.SET_JOB_CUSTOM_PROPERTIES.value: _I,
    Operation.GET_JOB_ENV.value: _I,
    Operation.SET_JOB_ENV.value: _I,
    # tasks and subtasks (§8)
    Operation.ADD_TASK.value: _U,
    Operation.LIST_TASKS.value: _I,
    Operation.GET_TASK.value: _I,
    Operation.SET_TASK_PROPERTIES.value: _I,
    Operation.CANCEL_TASK.value: _U,
    Operation.REQUEUE_TASK.value: _U,
    Operation.GET_TASK_CUSTOM_PROPERTIES.value: _I,
    Operation.SET_TASK_CUSTOM_PROPERTIES.value: _I,
    Operation.GET_TASK_ENV.value: _I,
    Operation.SET_TASK_ENV.value: _I,
    Operation.GET_SUBTASK.value: _I,
    Operation.SET_SUBTASK_PROPERTIES.value: _I,
    Operation.CANCEL_SUBTASK.value: _U,
    Operation.REQUEUE_SUBTASK.value: _U,
}

#: Operations whose repetition has the same effect as one call.
IDEMPOTENT_OPERATIONS: Final[frozenset[str]] = frozenset(
    op for op, safety in OPERATION_RETRY_SAFETY.items() if safety is RetrySafety.IDEMPOTENT
)

#: Statuses that mean "try again" for operations that may be repeated.
RETRYABLE_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})
# The service refused before doing any work: retryable for every operation.
_REFUSED_STATUSES: Final = frozenset({429, 503})
# Fault categories that no retry can fix, even when they arrive with a 5xx status.
_PERMANENT_CATEGORIES: Final = frozenset({"SessionFatalError"})


def _may_repeat(operation: str) -> bool:
    safety = OPERATION_RETRY_SAFETY.get(str(operation))
    return safety is RetrySafety.IDEMPOTENT or safety is RetrySafety.DEDUPLICATED


def is_retryable(error: BaseException, operation: str) -> bool:
    """Whether ``error`` from one attempt of ``operation`` may be retried blindly.

    Pure table, no I/O. Unknown operations are treated as unsafe. Errors outside the
    transport/API families (decode errors, auth failures, usage errors, cancellation,
    ``KeyboardInterrupt``) are never retried.
    """
    if isinstance(error, TLSVerificationError):
        return False
    if isinstance(error, ConnectError | PoolTimeout):
        return True  # the request certainly never left
    if isinstance(error, TransportError):  # NetworkError, ReadTimeout: may have been processed
        return _may_repeat(operation)
    if isinstance(error, ApiError):
        if error.code is not None and (
            fault_category(error.code) in _PERMANENT_CATEGORIES
            or error.code == SOA_FAULT_CODES["ArgumentError"]
        ):
            return False
        if error.status in _REFUSED_STATUSES:
            return True
        return error.status in RETRYABLE_STATUSES and _may_repeat(operation)
    return False
