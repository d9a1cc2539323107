"""``SoaSession``: a live SOA session (spec §3.1, §4.1–§4.3) and the calls that make one.

A session is created (Create Session, 201) or attached to (Attach, 200) through the head node;
batch calls then go to the ``BrokerNode`` the service returned (spec §2.1). Closing a session
(``close()`` / ``aclose()`` / leaving ``async with``) ends its service job on the cluster and
deletes its responses; ``detach()`` only releases the local resources and leaves the session
running, e.g. for a durable session that another process will attach to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
import weakref
from collections.abc import AsyncIterable, Iterable
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .._exceptions import ApiError, ClientClosed, DecodeError, HpcError, SessionNotFound
from ..protocol import Operation, SessionInfo, SessionStartInfo
from ..protocol._errors import SOA_FAULT_CODES
from ..protocol._session_codec import decode_session_info, encode_session_start_info_json
from ._batch import (
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_MAX_REQUEST_COUNT,
    Batch,
)

if TYPE_CHECKING:
    from .._config import BasicAuth
    from ..transport import Requester
    from ._map import MapStream

__all__ = ["SoaSession", "attach_session", "create_session"]

logger = logging.getLogger("hpcsoa.soa")

_JSON = "application/json"
#: ``MaxMessageSize`` sent when the caller gives none: the WCF / SOA library default.
DEFAULT_MAX_MESSAGE_SIZE = 65536
#: Seconds allowed to close a just-created session whose answer cannot be used.
_ABANDON_TIMEOUT = 5.0
_SESSION_GONE = frozenset(
    {SOA_FAULT_CODES["InvalidSessionId"], SOA_FAULT_CODES["Broker_InvalidSessionId"]}
)


class SoaSession:
    """A live SOA session. Get one from ``HpcClient.create_session`` / ``attach_session``.

    ``async with session:`` closes the session on exit. Counters (``sent``, ``received``,
    ``retried``, ``duplicates_dropped``, ``bytes_sent``, ``bytes_received``) sum those of the
    session's batches.

    Attributes:
        info: the ``WebSessionInfo`` the service returned.
        service: the service name (``None`` for an attached session: the service does not say).
    """

    def __init__(
        self,
        requester: Requester,
        info: SessionInfo,
        *,
        service: str | None = None,
        on_close: Any = None,
    ) -> None:
        self._requester = requester
        self.info = info
        self.service = service
        self._on_close = on_close
        self._closed = False
        self._batches: dict[str, Batch] = {}
        self._maps: weakref.WeakSet[MapStream] = weakref.WeakSet()
        self.sent = 0
        self.received = 0
        self.retried = 0
        self.duplicates_dropped = 0
        self.bytes_sent = 0
        self.bytes_received = 0

    # -- the session's identity -------------------------------------------------------------------

    @property
    def id(self) -> int:
        return self.info.id

    @property
    def broker_node(self) -> str:
        """``host[:port]`` of the broker: where batch calls go."""
        return self.info.broker_node

    @property
    def is_durable(self) -> bool:
        return self.info.is_durable

    @property
    def max_message_size(self) -> int:
        """The largest request message (bytes) the session accepts."""
        return self.info.max_message_size

    def is_closed(self) -> bool:
        return self._closed

    def _check_usable(self) -> None:
        if self._closed:
            raise ClientClosed(
                f"session {self.id} is closed (or detached) in this client; attach to it "
                "again with client.attach_session(id) if it still runs"
            )
        if self._requester.transport.is_closed():
            raise ClientClosed(f"the HpcClient of session {self.id} is closed")

    # -- batches -----------------------------------------------------------------------------------

    def batch(
        self,
        name: str = "default",
        *,
        generic: bool = True,
        max_request_count: int = DEFAULT_MAX_REQUEST_COUNT,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> Batch:
        """The batch ``name`` of this session (created on the broker on first use).

        The same object is returned for the same name (case-insensitively) while it is open.

        Args:
            name: batch name (≤ 128 characters of ``[0-9a-zA-Z_-{}]`` and spaces).
            generic: generic service (``str``) or typed SOAP requests (``Request``).
            max_request_count / max_request_bytes: bounds of one Send Requests POST.
            max_in_flight: Send Requests POSTs in flight at once.

        Raises:
            EncodeError: invalid name.  ValueError: the name is open in the other mode.
        """
        self._check_usable()
        key = name.casefold()
        existing = self._batches.get(key)
        if existing is not None and not existing.is_closed():
            if existing.generic != generic:
                raise ValueError(
                    f"batch {name!r} is already open as a "
                    f"{'generic' if existing.generic else 'SOAP'} batch"
                )
            return existing
        batch = Batch(
            self,
            name,
            generic=generic,
            max_request_count=max_request_count,
            max_request_bytes=max_request_bytes,
            max_in_flight=max_in_flight,
        )
        self._batches[key] = batch
        return batch

    def _forget_batch(self, batch: Batch) -> None:
        key = batch.name.casefold()
        if self._batches.get(key) is batch:
            del self._batches[key]

    def map(
        self,
        inputs: Iterable[Any] | AsyncIterable[Any],
        *,
        window: int = 10_000,
        ordered: bool = False,
        generic: bool = True,
        batch: str | None = None,
        page_size: int | None = None,
        max_request_count: int = DEFAULT_MAX_REQUEST_COUNT,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> MapStream:
        """Run every input through the service; ``async for r in session.map(inputs)``.

        Inputs are read lazily (any iterable or async iterable, even an endless one); at most
        ``window`` requests are outstanding (sent, result not yet handed out); the batch is
        committed when the input ends; every input yields exactly one
        :class:`~hpcsoa.MapResult` (a failed request has ``r.fault`` set). Memory is
        O(window). Breaking out of the loop or cancelling stops sending, purges the batch and
        closes its connections.

        Args:
            inputs: ``str`` (generic) or :class:`~hpcsoa.Request` (``generic=False``).
            window: most requests outstanding at once.
            ordered: yield results in input order (a reorder buffer of at most ``window``).
            generic: generic service or typed SOAP requests.
            batch: batch name (default: a fresh unique name).
            page_size: ``count`` of each Get Responses page (default ``min(window, 10000)``).
            max_request_count / max_request_bytes / max_in_flight: see :meth:`batch`.

        Raises (while iterating): MessageTooLarge, EncodeError, RetryError, ApiError,
            TransportError, SessionError, ClientClosed.
        """
        from ._map import MapStream

        self._check_usable()
        if window < 1:
            raise ValueError("window must be >= 1")
        stream = MapStream(
            self,
            inputs,
            window=window,
            ordered=ordered,
            generic=generic,
            batch_name=batch,
            page_size=page_size,
            max_request_count=max_request_count,
            max_request_bytes=max_request_bytes,
            max_in_flight=max_in_flight,
        )
        self._maps.add(stream)
        return stream

    # -- lifecycle ------------------------------------------------------------------------------

    async def _close_local(self) -> None:
        self._closed = True
        maps, self._maps = list(self._maps), weakref.WeakSet()
        for m in maps:
            await m.aclose()
        batches, self._batches = list(self._batches.values()), {}
        for b in batches:
            b._close_local()
        if self._on_close is not None:
            self._on_close(self)

    async def close(self) -> None:
        """Close the session on the service (spec §4.3) and locally. Idempotent.

        Ends the service job and deletes its responses; open streams and maps are closed.
        A session the service no longer knows counts as closed.

        Raises:
            ApiError / TransportError / RetryError: the service could not be told.
        """
        if self._closed:
            return
        await self._close_local()
        try:
            await self._requester.call(
                Operation.CLOSE_SESSION,
                path_params={"session_id": self.id},
                accept=_JSON,
            )
        except ApiError as exc:
            if exc.status == 404 or exc.code in _SESSION_GONE:
                logger.debug("session %d was already closed on the service", self.id)
                return
            raise
        logger.info("closed session %d", self.id)

    async def aclose(self) -> None:
        """Same as :meth:`close` (the ``async with`` exit)."""
        await self.close()

    async def detach(self) -> None:
        """Release local resources only; the session keeps running on the cluster."""
        if not self._closed:
            await self._close_local()

    async def __aenter__(self) -> SoaSession:
        self._check_usable()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._closed:
            return
        if self._requester.transport.is_closed():
            await self._close_local()
            return
        await self.close()

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if not getattr(self, "_closed", True):
            _warn(
                f"unclosed {self!r}: use 'async with session' or 'await session.aclose()' "
                "(or 'await session.detach()' to keep it running)",
                ResourceWarning,
                source=self,
                stacklevel=1,
            )

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        kind = "durable" if self.is_durable else "interactive"
        return (
            f"<SoaSession id={self.id} {kind} {state} broker={self.broker_node} "
            f"batches={len(self._batches)} maps={len(self._maps)} sent={self.sent} "
            f"received={self.received} retried={self.retried}>"
        )


# --- create / attach (called by HpcClient) --------------------------------------------------------


def check_broker_node(node: str) -> str:
    """Validate a ``BrokerNode``: a plain ``host[:port]``, nothing else.

    Batch calls go to it (spec §2.1) and the client's Basic credentials follow them (a broker
    node authenticates like the head node; the head node, reached over the configured scheme
    and trust settings, is what names it). A value with userinfo, a path, a query or a bad
    port would silently move those calls, and the credentials, elsewhere, or fail later with
    an untyped error: it is refused here.

    Raises:
        DecodeError: ``node`` is not a ``host[:port]`` authority.
    """
    from urllib.parse import urlsplit

    ok = bool(node) and node.isprintable() and not any(c.isspace() for c in node)
    if ok:
        try:
            parts = urlsplit(f"//{node}")
            ok = (
                parts.netloc == node
                and not parts.path
                and not parts.query
                and not parts.fragment
                and "@" not in node
                and bool(parts.hostname)
            )
            _ = parts.port  # raises ValueError for a port that is not 0-65535
        except ValueError:
            ok = False
    if not ok:
        raise DecodeError(f"WebSessionInfo: BrokerNode {node!r} is not a 'host[:port]' authority")
    return node


def _start_info(
    service: str,
    start_info: SessionStartInfo | None,
    members: dict[str, Any],
    auth: BasicAuth | None,
) -> SessionStartInfo:
    if start_info is None:
        info = SessionStartInfo(service_name=service, **members)
    else:
        info = replace(start_info, service_name=service or start_info.service_name, **members)
    # The documented body carries the user's credentials (spec §4.1; the service job runs as
    # that user). It only ever goes to the configured head node, like the Basic header.
    if auth is not None and info.username is None and info.password is None:
        info = replace(info, username=auth.username, password=auth.password)
    if info.max_message_size is None:  # a required member (spec §4.1)
        info = replace(info, max_message_size=DEFAULT_MAX_MESSAGE_SIZE)
    return info


async def create_session(
    requester: Requester,
    service: str,
    *,
    durable: bool,
    start_info: SessionStartInfo | None,
    members: dict[str, Any],
    auth: BasicAuth | None,
) -> SessionInfo:
    """Create Session (spec §4.1): JSON body, JSON answer. Never blindly retried once sent."""
    info = _start_info(service, start_info, members, auth)
    resp = await requester.call(
        Operation.CREATE_SESSION,
        query=(("durable", "true" if durable else "false"),),
        body=encode_session_start_info_json(info),
        content_type="application/json; charset=utf-8",
        accept=_JSON,
        expect=(201, 200),
        # A repeat after the body may have arrived would start a second (orphan) service job.
        idempotent=False,
    )
    session = decode_session_info(resp.body, resp.content_type)
    try:
        requester.trust_authority(check_broker_node(session.broker_node))
    except DecodeError:
        # The service job is running: do not leave it behind (best effort, head node).
        with contextlib.suppress(HpcError, OSError):
            async with asyncio.timeout(_ABANDON_TIMEOUT):
                await requester.call(
                    Operation.CLOSE_SESSION,
                    path_params={"session_id": session.id},
                    accept=_JSON,
                    retry=False,
                )
        raise
    logger.info(
        "created %s session %d for %r (broker %s)",
        "durable" if session.is_durable else "interactive",
        session.id,
        info.service_name,
        session.broker_node,
    )
    return session


async def attach_session(requester: Requester, session_id: int, *, durable: bool) -> SessionInfo:
    """Attach to Session (spec §4.2).

    Raises:
        SessionNotFound: no such session (or it is closed).
    """
    try:
        resp = await requester.call(
            Operation.ATTACH_SESSION,
            path_params={"session_id": int(session_id)},
            query=(("durable", "true" if durable else "false"),),
            accept=_JSON,
        )
    except ApiError as exc:
        if exc.status == 404 or exc.code in _SESSION_GONE:
            raise SessionNotFound(f"session {session_id} does not exist or is closed") from exc
        raise
    session = decode_session_info(resp.body, resp.content_type)
    requester.trust_authority(check_broker_node(session.broker_node))
    logger.info("attached to session %d (broker %s)", session.id, session.broker_node)
    return session
