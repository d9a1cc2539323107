"""The aiohttp transport: the only module of the client that imports aiohttp.

It owns one ``aiohttp.ClientSession`` with a ``TCPConnector(limit=...)`` (created lazily, on the
first request, so configuration never touches the event loop), or borrows a caller's session
and then never closes it. Credentials are added to a request's headers only when it goes to
the configured origin or a broker node the service named (redirects are never followed).
Every aiohttp failure is translated here, in :func:`translate_error`, into the
``TransportError`` family, most specific first.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import ssl
import time
import warnings
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .._exceptions import (
    ClientClosed,
    ConnectError,
    ConnectTimeout,
    NetworkError,
    PoolTimeout,
    ReadError,
    ReadTimeout,
    TLSVerificationError,
    TransportError,
    WriteError,
)
from ._base import HttpResponse

if TYPE_CHECKING:
    from .._config import ClientConfig
    from ..protocol import HttpRequest

__all__ = ["AiohttpTransport", "translate_error"]

logger = logging.getLogger("hpcsoa.transport")


def _version() -> str:
    # Not `from hpcsoa import __version__`: the package __init__ imports this module first.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hpcsoa")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


_USER_AGENT: Final = f"hpcsoa/{_version()} aiohttp/{aiohttp.__version__}"
_SKIP_AUTO: Final = frozenset({"Accept-Encoding"})


_SECRET_HEADERS: Final = frozenset({"authorization", "proxy-authorization", "cookie"})


def _redact_request_info(exc: BaseException) -> None:
    """Mask credentials in the ``request_info`` of aiohttp errors chained from ``exc``.

    ``ClientResponseError`` (e.g. a malformed status line) keeps the request's headers,
    ``Authorization`` included, and shows them in its ``repr``; we chain it as ``__cause__``,
    so it must not keep them. Redacted in place: the rest stays useful for debugging.
    """
    seen = 0
    todo: list[BaseException | None] = [exc]
    while todo and seen < 16:
        e = todo.pop()
        if e is None:
            continue
        seen += 1
        info = getattr(e, "request_info", None)
        headers = getattr(info, "headers", None)
        if info is not None and headers is not None and hasattr(info, "_replace"):
            if any(k.lower() in _SECRET_HEADERS for k in headers):
                clean = CIMultiDict(
                    (k, "<redacted>" if k.lower() in _SECRET_HEADERS else v)
                    for k, v in headers.items()
                )
                with contextlib.suppress(AttributeError, TypeError):
                    e.request_info = info._replace(headers=CIMultiDictProxy(clean))  # type: ignore[attr-defined]
        todo += [e.__cause__, e.__context__]


def translate_error(exc: BaseException, *, what: str, response_started: bool) -> TransportError:
    """Map an aiohttp/OS error to our tree (caller raises it ``from exc``).

    Credentials held by the aiohttp error (its ``request_info`` headers) are redacted first,
    since the error stays reachable as ``__cause__``.

    Args:
        what: ``"METHOD path"`` for the message (never contains credentials).
        response_started: the status line was received, so a failure is a read failure.
    """
    _redact_request_info(exc)
    # Most specific first: several of these subclass each other.
    if isinstance(exc, aiohttp.ServerFingerprintMismatch):
        return TLSVerificationError(
            f"{what}: the server certificate does not match the pinned SHA-256 fingerprint"
        )
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return TLSVerificationError(
            f"{what}: certificate verification failed ({exc.certificate_error}); "
            "pass verify='/path/to/ca.pem' or pin_sha256=... for a self-signed certificate"
        )
    if isinstance(exc, aiohttp.ClientConnectorSSLError):
        return ConnectError(f"{what}: TLS handshake failed: {exc.os_error}")
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return ConnectTimeout(f"{what}: connecting timed out")
    if isinstance(exc, aiohttp.ServerTimeoutError):  # SocketTimeoutError and older spellings
        return ReadTimeout(f"{what}: no data from the server within the read timeout")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ConnectError(f"{what}: cannot connect: {exc.os_error}")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return ReadError(f"{what}: the server closed the connection before answering")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return ReadError(f"{what}: the response body was cut off ({exc})")
    if isinstance(exc, aiohttp.InvalidURL):
        return ConnectError(f"{what}: invalid URL")
    if isinstance(exc, aiohttp.ClientResponseError):
        return ReadError(f"{what}: malformed HTTP response ({exc.message})")
    if isinstance(exc, aiohttp.ClientOSError | ConnectionError | OSError):
        cls = ReadError if response_started else WriteError
        return cls(f"{what}: connection failed: {exc}")
    if isinstance(exc, asyncio.TimeoutError):
        return ReadTimeout(f"{what}: timed out")
    if isinstance(exc, aiohttp.ClientError):
        return NetworkError(f"{what}: {type(exc).__name__}: {exc}")
    return NetworkError(f"{what}: {type(exc).__name__}")


def _basic_header(username: str, password: str) -> str:
    # aiohttp.BasicAuth is deprecated in 3.14 (warnings are errors in our tests): build it.
    encoder = getattr(aiohttp, "encode_basic_auth", None)
    if encoder is not None:
        return str(encoder(username, password))
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _origin_key(scheme: str, authority: str) -> tuple[str, str, int | None]:
    url = URL(f"{scheme}://{authority}")
    return (url.scheme, (url.host or "").lower(), url.port)


_Target = tuple[URL, tuple[tuple[str, str], ...], str]
_NO_KWARGS: Final[dict[str, Any]] = {}


class _AiohttpStream:
    """An open aiohttp response read chunk by chunk (see ``StreamingResponse``)."""

    __slots__ = ("_closed", "_on_close", "_resp", "_what")

    def __init__(
        self,
        resp: aiohttp.ClientResponse,
        what: str,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._resp = resp
        self._what = what
        self._closed = False
        self._on_close = on_close

    @property
    def status(self) -> int:
        return self._resp.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._resp.headers

    async def read_chunk(self) -> bytes:
        """The next chunk, as soon as any bytes arrive; ``b""`` at the end of the body."""
        try:
            return await self._resp.content.readany()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise translate_error(exc, what=self._what, response_started=True) from exc

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        while chunk := await self.read_chunk():
            yield chunk

    async def read(self, limit: int | None = None) -> bytes:
        parts: list[bytes] = []
        size = 0
        while chunk := await self.read_chunk():
            parts.append(chunk)
            size += len(chunk)
            if limit is not None and size >= limit:
                break
        return b"".join(parts)[:limit] if limit is not None else b"".join(parts)

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Drop the connection now (synchronous; for ``__del__`` and cancellation paths)."""
        if not self._closed:
            self._closed = True
            self._resp.close()
            if self._on_close is not None:
                self._on_close()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._resp.content.is_eof() and self._resp.content.exception() is None:
            self._resp.release()  # body fully read: the connection goes back to the pool
        else:
            self._resp.close()  # unread body: the connection cannot be reused
        if self._on_close is not None:
            self._on_close()

    def __del__(self) -> None:
        if not self._closed:
            self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<stream {self._what} {self.status} {state}>"


class AiohttpTransport:
    """HTTP over aiohttp. See the module docstring.

    Args:
        config: the client configuration (TLS, limits, timeouts, credentials).
        session: a caller-owned ``aiohttp.ClientSession`` to borrow; it is never closed here,
            and its own connector limits apply instead of ``config.limits``.
    """

    def __init__(
        self, config: ClientConfig, *, session: aiohttp.ClientSession | None = None
    ) -> None:
        self._config = config
        self._borrowed = session
        self._session: aiohttp.ClientSession | None = session
        self._connector: aiohttp.TCPConnector | None = None
        self._closed = False
        self._ssl: Any = None
        self._auth_header = (
            _basic_header(config.auth.username, config.auth.password) if config.auth else None
        )
        base = URL(config.base_url)
        self._scheme = base.scheme
        self._prefix = base.path.rstrip("/")
        self._trusted: set[tuple[str, str, int | None]] = {
            (base.scheme, (base.host or "").lower(), base.port)
        }
        self._timeouts: dict[float | None, aiohttp.ClientTimeout] = {}
        self._urls: dict[tuple[object, ...], _Target] = {}
        t = config.timeouts
        # aiohttp's "connect" timeout covers the pool wait and the connection together, so
        # the pool wait gets its own bound here: a semaphore of the pool size.
        self._pool_wait = t.pool if session is None else None
        self._slots: asyncio.Semaphore | None = None
        self.requests_sent = 0

    # -- configuration helpers -------------------------------------------------------------

    def _ssl_param(self) -> Any:
        if self._ssl is not None:
            return self._ssl
        cfg = self._config
        value: Any
        if cfg.pin_sha256 is not None:
            # Pinning replaces CA validation (the SSH known-hosts model).
            value = aiohttp.Fingerprint(bytes.fromhex(cfg.pin_sha256))
        elif cfg.verify is True:
            value = True
        elif cfg.verify is False:
            logger.warning("TLS certificate verification is disabled for %s", cfg.base_url)
            value = False
        elif isinstance(cfg.verify, ssl.SSLContext):
            value = cfg.verify
        else:
            value = ssl.create_default_context(cafile=str(cfg.verify))
        self._ssl = value
        return value

    def _client_timeout(self, read: float | None) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(read)
        if timeout is None:
            t = self._config.timeouts
            timeout = aiohttp.ClientTimeout(
                total=None, connect=None, sock_connect=t.connect, sock_read=read
            )
            self._timeouts[read] = timeout
        return timeout

    def trust_authority(self, authority: str) -> None:
        """Allow credentials for ``authority`` over the configured scheme (broker nodes)."""
        self._trusted.add(_origin_key(self._scheme, authority))
        self._urls.clear()  # cached targets of that authority were built without credentials

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ClientClosed(
                "this client is closed; create a new HpcClient (or use it inside 'async with')"
            )
        session = self._session
        if session is None:
            limits = self._config.limits
            self._connector = aiohttp.TCPConnector(
                limit=limits.max_connections,
                limit_per_host=limits.max_per_host,
                keepalive_timeout=limits.keepalive_expiry,
                ssl=self._ssl_param(),
            )
            session = aiohttp.ClientSession(
                connector=self._connector,
                headers={"User-Agent": _USER_AGENT},
                skip_auto_headers=_SKIP_AUTO,
                auto_decompress=False,
                timeout=self._client_timeout(self._config.timeouts.read),
            )
            self._session = session
        return session

    # -- sending -------------------------------------------------------------------------------

    def _target(self, request: HttpRequest, authority: str) -> _Target:
        """The URL and headers to send ``request`` to ``authority`` with, and its name for
        logs and errors (method and path, never the query or credentials).

        Credentials go only to trusted origins (the base URL's, and broker nodes the service
        named): redirects are never followed, so the header cannot travel further. Cached per
        request shape: batch traffic repeats a few shapes with new bodies.
        """
        key = (authority, request.path, request.query, request.headers)
        target = self._urls.get(key)
        if target is None:
            url = URL(f"{self._scheme}://{authority}{self._prefix}{request.target}", encoded=True)
            headers = request.headers
            header = self._auth_header
            if (
                header is not None
                and not any(name.lower() == "authorization" for name, _ in headers)
                and (url.scheme, (url.host or "").lower(), url.port) in self._trusted
            ):
                headers = (*headers, ("Authorization", header))
            target = (url, headers, f"{request.method} {url.path}")
            if len(self._urls) >= 256:
                self._urls.clear()
            self._urls[key] = target
        return target

    async def _acquire_slot(self, what: str) -> bool:
        """Wait at most ``Timeouts.pool`` for a pool slot; ``False`` when not bounded."""
        wait = self._pool_wait
        if wait is None:
            return False
        slots = self._slots
        if slots is None:
            slots = self._slots = asyncio.Semaphore(self._config.limits.max_connections)
        if not slots.locked():
            await slots.acquire()  # free: returns at once, no timer needed
            return True
        try:
            async with asyncio.timeout(wait):
                await slots.acquire()
        except TimeoutError:
            raise PoolTimeout(
                f"{what}: no connection became free within {wait:g}s "
                f"({self._config.limits.max_connections} in use)"
            ) from None
        return True

    def _release_slot(self) -> None:
        if self._slots is not None:
            self._slots.release()

    async def _start(
        self, request: HttpRequest, authority: str, read_timeout: float | None
    ) -> tuple[aiohttp.ClientResponse, str, float, bool]:
        session = self._ensure_session()
        url, headers, what = self._target(request, authority)
        kwargs: dict[str, Any] = _NO_KWARGS
        if self._borrowed is not None:
            kwargs = {"ssl": self._ssl_param()}
        slot = await self._acquire_slot(what)
        started = time.monotonic()
        self.requests_sent += 1
        try:
            resp = await session.request(
                request.method,
                url,
                data=request.body if request.body or request.method != "GET" else None,
                headers=headers,
                allow_redirects=False,
                timeout=self._client_timeout(read_timeout),
                **kwargs,
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            if slot:
                self._release_slot()
            raise translate_error(exc, what=what, response_started=False) from exc
        except BaseException:
            if slot:
                self._release_slot()
            raise
        return resp, what, started, slot

    async def send(
        self,
        request: HttpRequest,
        *,
        authority: str,
        read_timeout: float | object | None = ...,
    ) -> HttpResponse:
        """Send ``request`` to ``authority`` and read the whole response body.

        Raises:
            TransportError: a subclass telling whether the request may have been processed.
        """
        timeout = self._config.timeouts.read if read_timeout is ... else read_timeout
        assert timeout is None or isinstance(timeout, int | float)
        resp, what, started, slot = await self._start(request, authority, timeout)
        try:
            body = await resp.read()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            resp.close()
            raise translate_error(exc, what=what, response_started=True) from exc
        except BaseException:
            resp.close()
            raise
        finally:
            if slot:
                self._release_slot()
        resp.release()
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s -> %d (%d bytes out, %d bytes in, %.1f ms)",
                what,
                resp.status,
                len(request.body),
                len(body),
                (time.monotonic() - started) * 1000,
            )
        return HttpResponse(resp.status, resp.headers, body)

    async def open_stream(
        self,
        request: HttpRequest,
        *,
        authority: str,
        read_timeout: float | object | None = ...,
    ) -> _AiohttpStream:
        """Send ``request``; return once the status line and headers have arrived."""
        timeout = self._config.timeouts.stream_read if read_timeout is ... else read_timeout
        assert timeout is None or isinstance(timeout, int | float)
        resp, what, started, slot = await self._start(request, authority, timeout)
        logger.debug(
            "%s -> %d (stream opened in %.1f ms)",
            what,
            resp.status,
            (time.monotonic() - started) * 1000,
        )
        return _AiohttpStream(resp, what, self._release_slot if slot else None)

    # -- lifecycle -------------------------------------------------------------------------------

    def is_closed(self) -> bool:
        return self._closed

    @property
    def connector(self) -> aiohttp.BaseConnector | None:
        """The connector in use (ours or the borrowed session's), for statistics and tests."""
        if self._session is None:
            return None
        return self._session.connector

    def pool_stats(self) -> dict[str, int]:
        """``{"limit": ..., "in_use": ..., "idle": ...}`` of the connection pool."""
        conn = self.connector
        if conn is None:
            return {"limit": self._config.limits.max_connections, "in_use": 0, "idle": 0}
        # aiohttp exposes no public counters; these private fields are stable across 3.x.
        in_use = len(getattr(conn, "_acquired", ()))
        idle = sum(len(v) for v in getattr(conn, "_conns", {}).values())
        return {"limit": conn.limit, "in_use": in_use, "idle": idle}

    async def aclose(self) -> None:
        """Close the owned session and its connections (a borrowed session is left open)."""
        if self._closed:
            return
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._borrowed is None:
            await session.close()

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if not self._closed and self._session is not None and self._borrowed is None:
            _warn(
                f"unclosed {self!r}: use 'async with HpcClient(...)' or 'await client.aclose()'",
                ResourceWarning,
                source=self,
                stacklevel=1,
            )

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("idle" if self._session is None else "open")
        stats = self.pool_stats()
        return (
            f"<AiohttpTransport {self._config.base_url} {state} "
            f"connections={stats['in_use']} in use/{stats['idle']} idle/{stats['limit']} max>"
        )
