"""Frozen client configuration: one object per concern (STYLE §5).

``Timeouts``, ``PoolLimits`` and ``RetryPolicy`` are frozen, slotted, keyword-only dataclasses
validated in ``__post_init__``; ``ClientConfig`` holds them. Per-call overrides use
``dataclasses.replace`` and the :data:`USE_DEFAULT` sentinel, so that "not given" differs from
``None`` ("disabled"). Nothing here touches the event loop, the environment or any file.
"""

from __future__ import annotations

import enum
import math
import os
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, Literal, TypeAlias

__all__ = [
    "USE_DEFAULT",
    "BasicAuth",
    "ClientConfig",
    "PoolLimits",
    "RetryPolicy",
    "Timeouts",
    "UseDefault",
    "VerifyTypes",
]


class UseDefault(enum.Enum):
    """Type of :data:`USE_DEFAULT`: "use the client's configured value" (httpx style)."""

    USE_DEFAULT = "USE_DEFAULT"

    def __repr__(self) -> str:
        return "USE_DEFAULT"


USE_DEFAULT: Final = UseDefault.USE_DEFAULT

VerifyTypes: TypeAlias = bool | str | os.PathLike[str] | ssl.SSLContext


def _check_timeout(name: str, value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"Timeouts.{name} must be a number of seconds or None, not {value!r}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"Timeouts.{name} must be a positive finite number or None, not {value}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """Timeouts in seconds; ``None`` disables one.

    Args:
        connect: establishing a TCP/TLS connection.
        read: waiting for data on a control call (anything but a response stream).
        pool: waiting for a free connection in the pool. ``None`` waits as long as ``total``.
        total: deadline of one logical call, retries and backoff included (google api-core
            style); it cuts short whatever attempt is running when it expires. Response
            streams are exempt: they are long-lived by design.
        stream_read: idle time allowed between two chunks of a Get Responses stream (the .NET
            client uses 300 s). When it expires the page is treated as broken and reopened
            with ``reset=true``.
    """

    connect: float | None = 10.0
    read: float | None = 60.0
    pool: float | None = None
    total: float | None = 120.0
    stream_read: float | None = 300.0

    def __post_init__(self) -> None:
        for name in ("connect", "read", "pool", "total", "stream_read"):
            _check_timeout(name, getattr(self, name))


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolLimits:
    """Connection pool limits (aiohttp ``TCPConnector(limit, limit_per_host)``).

    Args:
        max_connections: connections open at once, across all hosts. Bounds the number of
            concurrent HTTP calls, hence Send Requests POSTs in flight plus open streams.
        max_per_host: per-host cap; ``0`` means only ``max_connections`` applies.
        keepalive_expiry: seconds an idle connection is kept for reuse.
    """

    max_connections: int = 16
    max_per_host: int = 0
    keepalive_expiry: float = 15.0

    def __post_init__(self) -> None:
        if isinstance(self.max_connections, bool) or not isinstance(self.max_connections, int):
            raise TypeError("PoolLimits.max_connections must be an int")
        if self.max_connections < 1:
            raise ValueError("PoolLimits.max_connections must be at least 1")
        if isinstance(self.max_per_host, bool) or not isinstance(self.max_per_host, int):
            raise TypeError("PoolLimits.max_per_host must be an int")
        if self.max_per_host < 0:
            raise ValueError("PoolLimits.max_per_host must be >= 0 (0 = no per-host cap)")
        if not (self.keepalive_expiry > 0 and math.isfinite(self.keepalive_expiry)):
            raise ValueError("PoolLimits.keepalive_expiry must be a positive number of seconds")


SleepFn: TypeAlias = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """When and how long to retry (research §3.4; built into tenacity in ``transport/_retry.py``).

    Which failures are retried is decided per operation (connect failures always; ambiguous
    failures and 5xx only where a repeat is harmless); this object sets the schedule.

    Args:
        max_attempts: attempts per call, the first included (``1`` disables retrying).
        backoff_initial: base of the exponential backoff, in seconds.
        backoff_max: cap of one backoff step.
        jitter: full jitter (``uniform(0, step)``); ``False`` sleeps exactly the step, which
            tests use to assert the schedule.
        retry_after_cap: the longest server ``Retry-After`` honoured; a longer one raises
            :class:`~hpcsoa.ServerBusy` instead of sleeping.
        deadline: total seconds one call may spend retrying (``None``: only ``Timeouts.total``
            and ``max_attempts`` bound it). No sleep is started that would end past it.
        sleep: the coroutine used to wait between attempts (default ``asyncio.sleep``); tests
            inject a recorder and assert the recorded delays instead of wall time.
    """

    max_attempts: int = 4
    backoff_initial: float = 0.5
    backoff_max: float = 20.0
    jitter: bool = True
    retry_after_cap: float = 120.0
    deadline: float | None = None
    sleep: SleepFn | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise TypeError("RetryPolicy.max_attempts must be an int")
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1")
        for name in ("backoff_initial", "backoff_max", "retry_after_cap"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"RetryPolicy.{name} must be a finite number >= 0")
        if self.backoff_max < self.backoff_initial:
            raise ValueError("RetryPolicy.backoff_max must be >= backoff_initial")
        if self.deadline is not None and not (self.deadline > 0 and math.isfinite(self.deadline)):
            raise ValueError("RetryPolicy.deadline must be a positive number of seconds or None")

    def backoff(self, attempt: int, *, rand: Callable[[], float] | None = None) -> float:
        """The backoff before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        step = min(self.backoff_initial * (2.0 ** (attempt - 1)), self.backoff_max)
        if self.jitter:
            import random

            return float(step * (rand or random.random)())
        return float(step)


@dataclass(frozen=True, slots=True)
class BasicAuth:
    """HTTP Basic credentials. The password never appears in ``repr`` or ``str``.

    ``username`` is usually ``DOMAIN\\user``.
    """

    username: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        if ":" in self.username:
            raise ValueError("a Basic auth username cannot contain ':'")

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password='***')"

    __str__ = __repr__


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientConfig:
    """Everything an :class:`~hpcsoa.HpcClient` is configured with.

    Args:
        base_url: ``scheme://host[:port][/prefix]`` of the REST web service (head node).
        cluster: ``None`` detects the URI form (Get Clusters, cached; not supported → the HPC
            Pack 2016 form); a name forces the pre-2016 form with that cluster segment;
            ``""`` forces the 2016 form.
        api_version: sent as the ``api-version`` header on every call.
        auth: Basic credentials, sent only to the configured origin and broker nodes the
            service names.
        verify: ``True`` (system trust store), ``False`` (no verification: only for
            emulators), a CA bundle path, or an ``ssl.SSLContext``.
        pin_sha256: hex SHA-256 of the server certificate (DER); replaces CA verification.
    """

    base_url: str
    cluster: str | None = None
    api_version: str = "2011-11-01"
    auth: BasicAuth | None = None
    verify: VerifyTypes = True
    pin_sha256: str | None = None
    limits: PoolLimits = field(default_factory=PoolLimits)
    retry: RetryPolicy | None = field(default_factory=RetryPolicy)
    timeouts: Timeouts = field(default_factory=Timeouts)

    def __post_init__(self) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"base_url must look like 'https://host[:port]', not {self.base_url!r}"
            )
        if parts.username is not None or parts.password is not None:
            raise ValueError("put credentials in username=/password= or auth=, not in base_url")
        if parts.query or parts.fragment:
            raise ValueError("base_url cannot have a query or fragment")
        # Sent verbatim as a header: a control character would be refused by aiohttp on the
        # first call with a bare ValueError (or, elsewhere, inject a header).
        version: object = self.api_version
        if not isinstance(version, str) or not version or not all("!" <= c <= "~" for c in version):
            raise ValueError(
                f"api_version must be a non-empty token of visible ASCII, like '2011-11-01', "
                f"not {version!r}"
            )
        if self.pin_sha256 is not None:
            pin = self.pin_sha256.replace(":", "").strip().lower()
            if len(pin) != 64 or any(c not in "0123456789abcdef" for c in pin):
                raise ValueError("pin_sha256 must be 64 hex digits (colons allowed)")
            object.__setattr__(self, "pin_sha256", pin)

    @property
    def scheme(self) -> Literal["http", "https"]:
        return "https" if self.base_url.lower().startswith("https:") else "http"
