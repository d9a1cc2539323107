"""The requester: one call of one operation, with routing, errors and retries applied.

Everything above the transport (``soa/``, ``scheduler/``) talks to the service through
:meth:`Requester.call` (whole body) and :meth:`Requester.stream` (Get Responses). The
requester knows the base URL, the URI form and cluster name (detected once and cached), the
``api-version``, the retry policy and the timeouts; it builds requests with the protocol
layer's ``build_request``, maps an unexpected status to an :class:`~hpcsoa.ApiError` with
``error_from_response`` and retries with the tenacity controller of ``_retry.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Generator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar

from .._config import USE_DEFAULT, ClientConfig, UseDefault
from .._exceptions import (
    ApiError,
    BadRequest,
    ConnectError,
    NotFound,
    PoolTimeout,
    ReadTimeout,
    ServerBusy,
    ServiceUnavailable,
    TLSVerificationError,
    TooManyRequests,
    TransportError,
    TransportTimeout,
)
from ..protocol import HttpRequest, Operation, UriForm, build_request
from ..protocol._datacontract import decode_object_array
from ..protocol._errors import error_from_response, is_retryable
from ._retry import call_with_retry

if TYPE_CHECKING:
    from .._config import RetryPolicy
    from ._aiohttp import AiohttpTransport, _AiohttpStream
    from ._base import HttpResponse

__all__ = ["Requester", "StreamContext"]

logger = logging.getLogger("hpcsoa.transport")

_ERROR_BODY_LIMIT = 64 * 1024
_NO_DEADLINE: Final = contextlib.nullcontext()
_SHAPE_CACHE_SIZE = 256
_T = TypeVar("_T")


def _authority_of(base_url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(base_url).netloc


class Requester:
    """Sends operations to the service. Shared by ``HpcClient``, SOA sessions and scheduler APIs.

    Args:
        config: the client configuration.
        transport: the HTTP transport (owned by the caller, usually ``HpcClient``).

    Attributes:
        calls: operations sent (attempts included).
        retries: retries made (all operations).
    """

    def __init__(self, config: ClientConfig, transport: AiohttpTransport) -> None:
        self._config = config
        self._transport = transport
        self._authority = _authority_of(config.base_url)
        if config.cluster is None:
            self._cluster: str | None = None
            self._form: UriForm | None = None  # not detected yet
        elif config.cluster == "":
            self._cluster, self._form = None, UriForm.HPC2016
        else:
            self._cluster, self._form = config.cluster, UriForm.PRE_2016
        self._detect_lock: asyncio.Lock | None = None
        self._shapes: dict[tuple[object, ...], HttpRequest] = {}
        self.calls = 0
        self.retries = 0

    # -- read-only state ----------------------------------------------------------------------

    @property
    def config(self) -> ClientConfig:
        return self._config

    @property
    def transport(self) -> AiohttpTransport:
        return self._transport

    @property
    def authority(self) -> str:
        """``host[:port]`` of the head node (the base URL's authority)."""
        return self._authority

    @property
    def api_version(self) -> str:
        return self._config.api_version

    @property
    def cluster(self) -> str | None:
        """The cluster segment in use (``None`` in the 2016 form or before detection)."""
        return self._cluster

    @property
    def uri_form(self) -> UriForm | None:
        """The URI form in use; ``None`` until :meth:`resolve_uri_form` ran."""
        return self._form

    def trust_authority(self, authority: str) -> None:
        """Let credentials go to ``authority`` too (a broker node named by the service)."""
        if authority != self._authority:
            self._transport.trust_authority(authority)

    # -- URI form detection (§2.1) --------------------------------------------------------------

    async def resolve_uri_form(self) -> UriForm:
        """Detect the URI form once: Get Clusters, else (404/400/405) the HPC Pack 2016 form.

        Raises:
            AuthenticationError: the credentials were rejected.
            HpcError: the service could not be reached (after retries).
        """
        if self._form is not None:
            return self._form
        if self._detect_lock is None:
            self._detect_lock = asyncio.Lock()
        async with self._detect_lock:
            known = self.uri_form  # another task may have detected it while we waited
            if known is not None:
                return known
            cluster: str | None = None
            try:
                resp = await self._call_resolved(
                    Operation.GET_CLUSTERS,
                    cluster=None,
                    accept="application/xml",
                )
            except (NotFound, BadRequest) as exc:
                logger.debug("Get Clusters unsupported (%s): using the 2016 URI form", exc.status)
            except ApiError as exc:
                if exc.status != 405:
                    raise
            else:
                for props in decode_object_array(resp.body):
                    for name, value in props:
                        if name.lower() == "name" and value:
                            cluster = value
                            break
                    if cluster:
                        break
            self._cluster = cluster
            self._form = UriForm.PRE_2016 if cluster else UriForm.HPC2016
            logger.debug("URI form %s (cluster %r)", self._form.value, cluster)
            return self._form

    # -- calls ------------------------------------------------------------------------------------

    def _should_retry(
        self, operation: Operation, idempotent: bool | None
    ) -> Callable[[BaseException], bool]:
        if idempotent is None:
            return lambda exc: is_retryable(exc, operation.value)

        def decide(exc: BaseException) -> bool:
            if isinstance(exc, TLSVerificationError | ServerBusy):
                return False
            if isinstance(exc, ConnectError | PoolTimeout):
                return True
            if isinstance(exc, TooManyRequests | ServiceUnavailable):
                return True  # refused before any work was done
            if not idempotent:
                return False
            if isinstance(exc, TransportError):
                return True
            return isinstance(exc, ApiError) and is_retryable(exc, Operation.GET_BATCH_STATUS)

        return decide

    def _counting(
        self, on_retry: Callable[[BaseException], None] | None
    ) -> Callable[[BaseException], None]:
        """The retry callback: count the retry, then tell the caller's ``on_retry``."""

        def counted(exc: BaseException) -> None:
            self.retries += 1
            if on_retry is not None:
                on_retry(exc)

        return counted

    def _check_retry_after(self, error: ApiError, will_retry: bool, *, bounded: bool) -> None:
        """Raise ServerBusy when the server's ``Retry-After`` cannot be honoured: above the
        policy's cap, or (``bounded``: a call under ``Timeouts.total``) above the time the
        whole call may take."""
        retry_after = getattr(error, "retry_after", None)
        policy = self._config.retry
        if not (will_retry and policy is not None and policy.max_attempts > 1 and retry_after):
            return
        # A wait longer than the whole call may take (Timeouts.total, RetryPolicy.deadline)
        # could only end in a timeout after sleeping: report the server's answer now.
        limits = [(policy.retry_after_cap, "the policy's cap")]
        if bounded and self._config.timeouts.total is not None:
            limits.append((self._config.timeouts.total, "the total timeout"))
        if policy.deadline is not None:
            limits.append((policy.deadline, "the retry deadline"))
        cap, what = min(limits, key=lambda item: item[0])
        if retry_after > cap:
            raise ServerBusy(
                f"{error.operation or 'call'}: the server asked to retry after {retry_after:g}s, "
                f"more than {what} of {cap:g}s",
                retry_after=retry_after,
            ) from error

    def _build(
        self,
        operation: Operation,
        *,
        cluster: str | None,
        path_params: Mapping[str, str | int] | None,
        query: Sequence[tuple[str, str]],
        body: bytes,
        content_type: str | None,
        accept: str | None,
        api_version: str | UseDefault | None,
    ) -> HttpRequest:
        version = self._config.api_version if api_version is USE_DEFAULT else api_version
        assert not isinstance(version, UseDefault)
        # Batch traffic repeats the same request shape with new bodies (one Send Requests
        # POST per chunk): build the shape once and only swap the body.
        key = (
            operation,
            cluster,
            tuple(path_params.items()) if path_params else (),
            tuple(query),
            content_type,
            accept,
            version,
        )
        shape = self._shapes.get(key)
        if shape is None:
            shape = build_request(
                operation,
                cluster=cluster,
                path_params=path_params,
                query=query,
                content_type=content_type,
                accept=accept,
                api_version=version,
            )
            if len(self._shapes) >= _SHAPE_CACHE_SIZE:
                self._shapes.clear()
            self._shapes[key] = shape
        if not body:
            return shape
        return HttpRequest(
            shape.method, shape.path, shape.query, shape.headers, body, shape.operation
        )

    async def call(
        self,
        operation: Operation,
        *,
        path_params: Mapping[str, str | int] | None = None,
        query: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
        accept: str | None = None,
        expect: Collection[int] = (200,),
        authority: str | None = None,
        api_version: str | UseDefault | None = USE_DEFAULT,
        retry: bool = True,
        idempotent: bool | None = None,
        on_retry: Callable[[BaseException], None] | None = None,
    ) -> HttpResponse:
        """Send one operation and return its response (status in ``expect``).

        Args:
            operation: the REST operation (selects method and path template).
            path_params: values of the route's ``{name}`` segments.
            query: query parameters, in order.
            body: request body bytes.
            content_type / accept: the ``Content-Type`` / ``Accept`` headers, if any.
            expect: success statuses; any other status raises.
            authority: ``host[:port]`` to send to (a broker node); default: the base URL's.
            api_version: override of the configured ``api-version`` (``None`` omits it).
            retry: ``False`` sends exactly once.
            idempotent: override of the operation table: ``True`` if repeating this call
                after an ambiguous failure is harmless (the caller de-duplicates), ``False`` to
                retry only failures where the request provably did no work.
            on_retry: called with the failed attempt's error before each retry.

        Raises:
            ApiError: an unexpected status (the subclass for it), with the operation set.
            ServerBusy: the server asked for a ``Retry-After`` above the policy's cap.
            TransportError: no usable response (the request may or may not have been sent).
            RetryError: retries exhausted; ``__cause__`` is the last error.
        """
        form = self._form if self._form is not None else await self.resolve_uri_form()
        cluster = self._cluster if form is UriForm.PRE_2016 else None
        return await self._call_resolved(
            operation,
            cluster=cluster,
            path_params=path_params,
            query=query,
            body=body,
            content_type=content_type,
            accept=accept,
            expect=expect,
            authority=authority,
            api_version=api_version,
            retry=retry,
            idempotent=idempotent,
            on_retry=on_retry,
        )

    async def _call_resolved(
        self,
        operation: Operation,
        *,
        cluster: str | None,
        path_params: Mapping[str, str | int] | None = None,
        query: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
        accept: str | None = None,
        expect: Collection[int] = (200,),
        authority: str | None = None,
        api_version: str | UseDefault | None = USE_DEFAULT,
        retry: bool = True,
        idempotent: bool | None = None,
        on_retry: Callable[[BaseException], None] | None = None,
    ) -> HttpResponse:
        request = self._build(
            operation,
            cluster=cluster,
            path_params=path_params,
            query=query,
            body=body,
            content_type=content_type,
            accept=accept,
            api_version=api_version,
        )
        target = authority or self._authority
        should_retry = self._should_retry(operation, idempotent)
        policy = self._config.retry if retry else None
        transport = self._transport

        async def attempt() -> HttpResponse:
            self.calls += 1
            resp = await transport.send(request, authority=target)
            if resp.status in expect:
                return resp
            error = error_from_response(
                resp.status, resp.headers, resp.body, operation=operation.value, now=time.time()
            )
            self._check_retry_after(error, policy is not None and should_retry(error), bounded=True)
            raise error

        return await self._run(
            attempt,
            operation,
            policy=policy,
            should_retry=should_retry,
            on_retry=on_retry,
            total=self._config.timeouts.total,
        )

    async def _run(
        self,
        attempt: Callable[[], Awaitable[_T]],
        operation: Operation,
        *,
        policy: RetryPolicy | None,
        should_retry: Callable[[BaseException], bool],
        on_retry: Callable[[BaseException], None] | None,
        total: float | None,
    ) -> _T:
        """Run ``attempt`` under the retry policy, all of it within ``total`` seconds."""
        scope = asyncio.timeout(total) if total is not None else None
        try:
            async with scope if scope is not None else _NO_DEADLINE:
                return await call_with_retry(
                    attempt,
                    policy=policy,
                    operation=operation.value,
                    should_retry=should_retry,
                    on_retry=self._counting(on_retry),
                )
        except TimeoutError as exc:
            if scope is not None and scope.expired() and not isinstance(exc, TransportTimeout):
                raise ReadTimeout(
                    f"{operation.value} did not complete within the total timeout of {total:g}s"
                ) from None
            raise

    def stream(self, operation: Operation, **kwargs: Any) -> StreamContext:
        """:meth:`open_stream` as ``async with requester.stream(...) as s`` (leaving the block
        closes the stream; ``s = await requester.stream(...)`` also works). Same arguments.
        """
        return StreamContext(lambda: self.open_stream(operation, **kwargs))

    async def open_stream(
        self,
        operation: Operation,
        *,
        path_params: Mapping[str, str | int] | None = None,
        query: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        accept: str | None = None,
        expect: Collection[int] = (200,),
        authority: str | None = None,
        api_version: str | UseDefault | None = USE_DEFAULT,
        retry: bool = True,
        idempotent: bool | None = False,
        read_timeout: float | UseDefault | None = USE_DEFAULT,
        on_retry: Callable[[BaseException], None] | None = None,
    ) -> _AiohttpStream:
        """Open a streamed response (Get Responses); the caller must ``aclose()`` it (or use
        :meth:`stream`, its context-manager form).

        Opening is retried only where the request provably did no work (connect failures,
        429/503) unless ``idempotent=True``: a Get Responses call with ``reset=false``
        acknowledges the previous page, so blindly repeating it could lose responses.

        Returns a :class:`StreamingResponse` (``status``, ``headers``, ``iter_chunks()``,
        ``read_chunk()``, ``aclose()``); the connection is reused only if the body was read
        to its end.

        Raises:
            the same errors as :meth:`call`.
        """
        form = self._form if self._form is not None else await self.resolve_uri_form()
        request = self._build(
            operation,
            cluster=self._cluster if form is UriForm.PRE_2016 else None,
            path_params=path_params,
            query=query,
            body=body,
            content_type=None,
            accept=accept,
            api_version=api_version,
        )
        target = authority or self._authority
        should_retry = self._should_retry(operation, idempotent)
        policy = self._config.retry if retry else None
        timeout: Any = ... if read_timeout is USE_DEFAULT else read_timeout

        async def attempt() -> _AiohttpStream:
            self.calls += 1
            stream = await self._transport.open_stream(
                request, authority=target, read_timeout=timeout
            )
            if stream.status in expect:
                return stream
            try:
                err_body = await stream.read(_ERROR_BODY_LIMIT)
            except TransportError:
                err_body = b""
            finally:
                await stream.aclose()
            error = error_from_response(
                stream.status, stream.headers, err_body, operation=operation.value, now=time.time()
            )
            # Streams are exempt from Timeouts.total (long-lived by design).
            self._check_retry_after(
                error, policy is not None and should_retry(error), bounded=False
            )
            raise error

        # Streams are exempt from Timeouts.total (long-lived by design).
        return await self._run(
            attempt,
            operation,
            policy=policy,
            should_retry=should_retry,
            on_retry=on_retry,
            total=None,
        )

    def __repr__(self) -> str:
        form = self._form.value if self._form else "undetected"
        return (
            f"<Requester {self._config.base_url} form={form} cluster={self._cluster!r} "
            f"api-version={self._config.api_version} calls={self.calls} retries={self.retries}>"
        )


class StreamContext:
    """``async with requester.stream(...) as s`` (or ``s = await requester.stream(...)``)."""

    __slots__ = ("_opener", "_stream")

    def __init__(self, opener: Callable[[], Awaitable[_AiohttpStream]]) -> None:
        self._opener = opener
        self._stream: _AiohttpStream | None = None

    async def _open(self) -> _AiohttpStream:
        self._stream = await self._opener()
        return self._stream

    def __await__(self) -> Generator[Any, None, _AiohttpStream]:
        return self._open().__await__()

    async def __aenter__(self) -> _AiohttpStream:
        return await self._open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._stream is not None:
            await self._stream.aclose()
