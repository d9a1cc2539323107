"""What the layers above need from an HTTP transport, and nothing more.

A transport sends one :class:`~hpcsoa.protocol.HttpRequest` to one authority and returns an
:class:`HttpResponse` (whole body) or a :class:`StreamingResponse` (body read incrementally).
It translates every failure of the HTTP library into the ``TransportError`` family and never
retries: retry decisions live in ``_retry.py`` and ``_requester.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..protocol import HttpRequest

__all__ = ["HttpResponse", "StreamingResponse", "Transport"]


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A complete HTTP response.

    ``headers`` is a case-insensitive mapping (the first value of a repeated header wins).
    """

    status: int
    headers: Mapping[str, str]
    body: bytes = b""

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")

    def __repr__(self) -> str:
        return f"<HttpResponse {self.status} {len(self.body)} bytes>"


class StreamingResponse(Protocol):
    """An open response whose body is read chunk by chunk. Holds a connection until closed."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def iter_chunks(self) -> AsyncIterator[bytes]:
        """Body chunks as they arrive (never waits for the end of the body)."""
        ...

    async def read(self, limit: int | None = None) -> bytes:
        """The rest of the body (up to ``limit`` bytes)."""
        ...

    async def aclose(self) -> None:
        """Give the connection back (body fully read) or drop it (body not fully read)."""
        ...


class Transport(Protocol):
    """Sends requests. Implementations own (or borrow) their connection pool."""

    async def send(
        self,
        request: HttpRequest,
        *,
        authority: str,
        read_timeout: float | None = ...,
    ) -> HttpResponse:
        """Send ``request`` to ``authority`` (``host[:port]``) and read the whole body.

        Raises:
            TransportError: (a subclass naming how far the request got).
        """
        ...

    async def open_stream(
        self,
        request: HttpRequest,
        *,
        authority: str,
        read_timeout: float | None = ...,
    ) -> StreamingResponse:
        """Send ``request`` and return as soon as the status line and headers arrived."""
        ...

    def trust_authority(self, authority: str) -> None:
        """Allow credentials to be sent to ``authority`` (e.g. a broker node the service named)."""
        ...

    def is_closed(self) -> bool: ...

    async def aclose(self) -> None: ...
