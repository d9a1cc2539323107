"""The whole hpcsoa error tree.

Errors are grouped by what a caller can do about them, above all by retry safety:
"the request never left" versus "the request may have been processed".

::

    HpcError
    ├─ TransportError                     no usable HTTP response
    │  ├─ ConnectError                    request certainly not sent: safe to retry
    │  │  └─ TLSVerificationError         certificate / pin rejected: never retried
    │  ├─ NetworkError                    request may have been processed
    │  │  ├─ ReadError
    │  │  └─ WriteError
    │  └─ TransportTimeout (also builtin TimeoutError)
    │     ├─ ConnectTimeout               (also ConnectError: never sent)
    │     ├─ ReadTimeout
    │     └─ PoolTimeout
    ├─ ProtocolError                      malformed wire data
    │  ├─ DecodeError                     bytes that do not parse (framing, XML, JSON)
    │  │  └─ UnsafeXMLError               DTD / entity declarations (never resolved)
    │  ├─ EncodeError (also ValueError)   a value that cannot be put on the wire
    │  ├─ FieldTooLarge                   one field / message beyond a configured cap
    │  └─ IncompletePage                  a streamed page ended early / count mismatch
    ├─ ApiError (.status .code .message .operation .values)
    │  ├─ BadRequest (400)
    │  ├─ AuthenticationError (401)       wrong or missing credentials
    │  ├─ Forbidden (403)
    │  ├─ NotFound (404)
    │  ├─ Conflict (409)
    │  ├─ PayloadTooLarge (413)
    │  ├─ TooManyRequests (429, .retry_after)
    │  └─ ServerError (5xx)
    │     └─ ServiceUnavailable (503, .retry_after)
    ├─ ServerBusy (.retry_after)           Retry-After above the policy's cap
    ├─ SessionError
    │  ├─ SessionNotFound
    │  ├─ SessionClosed
    │  ├─ BatchCommitted
    │  └─ MessageTooLarge (.item_index)   one request over the session's MaxMessageSize
    ├─ RequestFault (.fault)              one SOA request failed (Response.raise_for_fault())
    ├─ RetryError                         retries exhausted; __cause__ = last attempt's error
    └─ UsageError (also RuntimeError)
       ├─ ClientClosed
       ├─ StreamConsumed
       └─ PagerAlreadyStarted

Credentials never appear in any message, attribute or repr of these errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = [
    "ApiError",
    "AuthenticationError",
    "BadRequest",
    "BatchCommitted",
    "ClientClosed",
    "Conflict",
    "ConnectError",
    "ConnectTimeout",
    "DecodeError",
    "EncodeError",
    "FieldTooLarge",
    "Forbidden",
    "HpcError",
    "IncompletePage",
    "MessageTooLarge",
    "NetworkError",
    "NotFound",
    "PagerAlreadyStarted",
    "PayloadTooLarge",
    "PoolTimeout",
    "ProtocolError",
    "ReadError",
    "ReadTimeout",
    "RequestFault",
    "RetryError",
    "ServerBusy",
    "ServerError",
    "ServiceUnavailable",
    "SessionClosed",
    "SessionError",
    "SessionNotFound",
    "StreamConsumed",
    "TLSVerificationError",
    "TooManyRequests",
    "TransportError",
    "TransportTimeout",
    "UnsafeXMLError",
    "UsageError",
    "WriteError",
    "status_error_class",
]


class HpcError(Exception):
    """Base class of every error raised by hpcsoa."""


# --- transport -------------------------------------------------------------------------------


class TransportError(HpcError):
    """No usable HTTP response was received."""


class ConnectError(TransportError):
    """The connection could not be made: the request certainly was not sent."""


class TLSVerificationError(ConnectError):
    """The server's certificate (or pinned fingerprint) was rejected. Never retried."""


class NetworkError(TransportError):
    """The connection failed after the request may have been (partly) sent."""


class ReadError(NetworkError):
    """Reading the response failed (reset, truncated body, payload error)."""


class WriteError(NetworkError):
    """Writing the request failed part-way."""


class TransportTimeout(TransportError, TimeoutError):
    """A transport timeout. Also a builtin ``TimeoutError`` so generic handlers match."""


class ConnectTimeout(TransportTimeout, ConnectError):
    """Connecting timed out: the request was not sent."""


class ReadTimeout(TransportTimeout):
    """No data arrived within the read timeout: the request may have been processed."""


class PoolTimeout(TransportTimeout):
    """No connection became free in the pool within the pool timeout."""


# --- protocol --------------------------------------------------------------------------------


class ProtocolError(HpcError):
    """Malformed or unsafe wire data. The only error family the sans-IO layer raises."""


class DecodeError(ProtocolError):
    """Bytes that do not parse as the expected framing, XML or JSON."""


class UnsafeXMLError(DecodeError):
    """XML with a DTD or entity declarations. Such XML is rejected, never resolved."""


class EncodeError(ProtocolError, ValueError):
    """A value that cannot be represented on the wire (e.g. U+FFFF in a generic field)."""


class FieldTooLarge(DecodeError):
    """A single field or message is larger than the configured cap."""


class IncompletePage(DecodeError):
    """A streamed response page ended early or its EndOfResponses count did not match."""


# --- API (HTTP status + HpcWebServiceFault) -----------------------------------------------------


class ApiError(HpcError):
    """The service answered with an error status.

    Attributes:
        status: HTTP status code.
        code: the ``HpcWebServiceFault`` ``Code`` (``None`` for a legacy ``<string>`` body).
        code_name: symbolic name of ``code`` (spec §3.7) when known.
        message: the fault message with ``{0}``-style placeholders filled from ``values``.
        operation: the operation name (e.g. ``"create_session"``) when known.
        values: the fault's ``Values`` pairs, in order.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: int | None = None,
        code_name: str | None = None,
        operation: str | None = None,
        values: Sequence[tuple[str, str]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.code_name = code_name
        self.message = message
        self.operation = operation
        self.values = tuple(values)
        self.headers: Mapping[str, str] = dict(headers or {})
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [f"HTTP {self.status}"]
        if self.operation:
            parts.append(f"in {self.operation}")
        if self.code is not None:
            name = f" {self.code_name}" if self.code_name else ""
            parts.append(f"(fault {self.code}{name})")
        head = " ".join(parts)
        return f"{head}: {self.message}" if self.message else head

    def __reduce__(self) -> tuple[object, ...]:  # keep pickling (e.g. across processes) working
        return (
            _rebuild_api_error,
            (
                type(self),
                self.message,
                self.status,
                self.code,
                self.code_name,
                self.operation,
                self.values,
            ),
        )


def _rebuild_api_error(
    cls: type[ApiError],
    message: str,
    status: int,
    code: int | None,
    code_name: str | None,
    operation: str | None,
    values: Sequence[tuple[str, str]],
) -> ApiError:
    return cls(
        message, status=status, code=code, code_name=code_name, operation=operation, values=values
    )


class BadRequest(ApiError):
    """400: invalid argument, malformed body, or an operation illegal in the current state."""


class AuthenticationError(ApiError):
    """401: credentials missing or rejected. The password never appears in the message."""


class Forbidden(ApiError):
    """403: authenticated but not allowed (e.g. another user's session or batch)."""


class NotFound(ApiError):
    """404: unknown session, job, task, node, node group or cluster segment."""


class Conflict(ApiError):
    """409."""


class PayloadTooLarge(ApiError):
    """413: the request body exceeded the server's limit."""


class _RetryAfterMixin:
    retry_after: float | None


class TooManyRequests(ApiError, _RetryAfterMixin):
    """429, with the server's ``Retry-After`` in seconds when it sent one."""

    retry_after: float | None = None


class ServerError(ApiError):
    """5xx."""


class ServiceUnavailable(ServerError, _RetryAfterMixin):
    """503, with the server's ``Retry-After`` in seconds when it sent one."""

    retry_after: float | None = None


_STATUS_CLASSES: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: AuthenticationError,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    429: TooManyRequests,
    503: ServiceUnavailable,
}


def status_error_class(status: int) -> type[ApiError]:
    """The ``ApiError`` subclass for an HTTP status (plain dict lookup, api-core style)."""
    cls = _STATUS_CLASSES.get(status)
    if cls is not None:
        return cls
    if status >= 500:
        return ServerError
    return ApiError


class ServerBusy(HpcError):
    """The server asked us to wait longer than the retry policy allows (``retry_after`` s)."""

    def __init__(self, message: str, *, retry_after: float | None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


# --- SOA session state ----------------------------------------------------------------------------


class SessionError(HpcError):
    """A session or batch is not in a state that allows the call."""


class SessionNotFound(SessionError):
    """The session does not exist (or no longer exists) on the service."""


class SessionClosed(SessionError):
    """The session was closed; no further calls can be made through it."""


class BatchCommitted(SessionError):
    """The batch was already committed; nothing more can be sent to it."""


class MessageTooLarge(SessionError, ValueError):
    """One request is larger than the session's ``MaxMessageSize``. Nothing was sent.

    Attributes:
        item_index: position of the offending item in the input (0-based).
        size: encoded size in bytes.
        limit: the session's ``MaxMessageSize``.
    """

    def __init__(self, message: str, *, item_index: int, size: int, limit: int) -> None:
        self.item_index = item_index
        self.size = size
        self.limit = limit
        super().__init__(message)


class RequestFault(HpcError):
    """One SOA request came back as a fault (raised only by ``raise_for_fault()``).

    Attributes:
        fault: the :class:`~hpcsoa.protocol.SoaFault` (``kind``, ``code``, ``reason``).
        user_data: the request's user data.
        message_id: the request's ``MessageID`` (SOAP only).
    """

    def __init__(
        self, fault: object, *, user_data: str | None = None, message_id: str | None = None
    ) -> None:
        self.fault = fault
        self.user_data = user_data
        self.message_id = message_id
        kind = getattr(fault, "kind", "Fault")
        code = getattr(fault, "code", "")
        reason = getattr(fault, "reason", "")
        where = f" (user data {user_data!r})" if user_data is not None else ""
        head = f"{kind} {code}".strip()
        super().__init__(f"request failed{where}: {head}: {reason}" if reason else head)

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_request_fault, (self.fault, self.user_data, self.message_id))


def _rebuild_request_fault(
    fault: object, user_data: str | None, message_id: str | None
) -> RequestFault:
    return RequestFault(fault, user_data=user_data, message_id=message_id)


# --- retries and misuse -----------------------------------------------------------------------


class RetryError(HpcError):
    """Retries were exhausted. ``__cause__`` is the last attempt's error.

    Attributes:
        attempts: number of attempts made.
        operation: the operation that was retried.
    """

    def __init__(self, message: str, *, attempts: int, operation: str | None = None) -> None:
        self.attempts = attempts
        self.operation = operation
        super().__init__(message)


class UsageError(HpcError, RuntimeError):
    """The API was used in a way it does not support."""


class ClientClosed(UsageError):
    """The client (or session, or stream) was used after ``aclose()``."""


class StreamConsumed(UsageError):
    """A response stream or pager was iterated a second time."""


class PagerAlreadyStarted(UsageError):
    """``by_page()`` was called on a pager that is already being iterated."""
