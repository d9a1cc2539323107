"""Fixtures of the integration (fault and chaos) tests: a real emulator, a TCP fault proxy in
front of it, and ``HpcClient`` s talking through the proxy with a tiny retry backoff.

* ``server``: an ``EmulatorServer`` on 127.0.0.1 port 0 (zero service latency).
* ``proxy``: a :class:`fault_proxy.FaultProxy` relaying to ``server`` (no toxics).
* ``sleeps``: the retry delays the client asked for (recorded; each real sleep is capped at
  5 ms so Retry-After values cost no wall time).
* ``make_client(attempts=6, base_url=proxy.url, **overrides)``: clients with a tiny retry
  backoff (``attempts`` = ``RetryPolicy.max_attempts``), closed at teardown.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from fault_proxy import FaultProxy

import hpcsoa
from hpcsoa.emulator._server import EmulatorServer

USER = "CONTOSO\\carol"
PASSWORD = "chaos-pw-1"

MakeClient = Callable[..., Awaitable[hpcsoa.HpcClient]]


class SleepRecorder(list[float]):
    """Injectable retry sleep: records the delay, sleeps at most 5 ms."""

    async def __call__(self, delay: float) -> None:
        self.append(delay)
        await asyncio.sleep(min(delay, 0.005))


def fast_retry(sleeps: SleepRecorder, *, attempts: int = 6) -> hpcsoa.RetryPolicy:
    return hpcsoa.RetryPolicy(
        max_attempts=attempts,
        backoff_initial=0.001,
        backoff_max=0.01,
        retry_after_cap=5.0,
        sleep=sleeps,
    )


@pytest.fixture
async def server() -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer(
        host="127.0.0.1",
        users={USER: PASSWORD},
        cores=8,
        latency_ms=0,
        client_idle_timeout_ms=60_000,
        session_idle_timeout_ms=60_000,
    ) as srv:
        yield srv


@pytest.fixture
async def proxy(server: EmulatorServer) -> AsyncIterator[FaultProxy]:
    async with FaultProxy("127.0.0.1", server.port, seed=7, idle_timeout=20.0) as p:
        yield p


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
async def make_client(proxy: FaultProxy, sleeps: SleepRecorder) -> AsyncIterator[MakeClient]:
    clients: list[hpcsoa.HpcClient] = []

    async def make(*, attempts: int = 6, **overrides: Any) -> hpcsoa.HpcClient:
        kwargs: dict[str, Any] = {
            "username": USER,
            "password": PASSWORD,
            "retry": fast_retry(sleeps, attempts=attempts),
            "timeouts": hpcsoa.Timeouts(connect=5, read=10, total=30, stream_read=5),
        }
        kwargs.update(overrides)
        base_url = kwargs.pop("base_url", proxy.url)
        c = hpcsoa.HpcClient(base_url, **kwargs)
        clients.append(c)
        return c

    yield make
    proxy.clear()
    for c in clients:
        for s in list(c.sessions):
            with contextlib.suppress(hpcsoa.HpcError, TimeoutError):
                async with asyncio.timeout(5):
                    await s.aclose()
        await c.aclose()
