"""Fixtures of the SOA client tests: a real emulator on 127.0.0.1 and clients talking to it.

* ``server``: an ``EmulatorServer`` (cluster ``HPCLAB``, user ``CONTOSO\\alice``, zero latency,
  plus test services: ``FlakySvc`` raises for inputs starting with ``boom``, ``SlowSvc``
  sleeps 20 ms per request).
* ``sleeps``: the retry delays the client *would* have slept (the injected sleep records them
  and yields once), so tests assert the schedule instead of wall time.
* ``client``: an ``HpcClient`` on ``server`` with that recording sleep; closed at teardown.
* ``make_client(**overrides)``: more clients (closed at teardown).

Helpers shared with the test modules live in ``client_support.py``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from client_support import PASSWORD, USER, MakeClient, SleepRecorder, flaky, slow

import hpcsoa
from hpcsoa.emulator._server import EmulatorServer


@pytest.fixture
async def server() -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer(
        users={USER: PASSWORD},
        cores=8,
        latency_ms=0,
        services={"FlakySvc": flaky, "SlowSvc": slow},
        client_idle_timeout_ms=60_000,
        session_idle_timeout_ms=60_000,
    ) as srv:
        yield srv


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
async def make_client(server: EmulatorServer, sleeps: SleepRecorder) -> AsyncIterator[MakeClient]:
    clients: list[hpcsoa.HpcClient] = []

    async def make(**overrides: Any) -> hpcsoa.HpcClient:
        kwargs: dict[str, Any] = {
            "username": USER,
            "password": PASSWORD,
            "retry": hpcsoa.RetryPolicy(max_attempts=4, jitter=False, sleep=sleeps),
        }
        kwargs.update(overrides)
        base_url = kwargs.pop("base_url", server.base_url)
        c = hpcsoa.HpcClient(base_url, **kwargs)
        clients.append(c)
        return c

    yield make
    for c in clients:
        for s in list(c.sessions):
            with contextlib.suppress(hpcsoa.HpcError):
                await s.aclose()
        await c.aclose()


@pytest.fixture
async def client(make_client: MakeClient) -> hpcsoa.HpcClient:
    return await make_client()
