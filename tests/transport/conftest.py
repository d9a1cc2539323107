"""Fixtures of the transport tests: tiny aiohttp.web apps on 127.0.0.1 for faults the
emulator cannot produce (refused connections, slow headers, odd statuses), plus a sleep
recorder so retry schedules are asserted instead of waited for.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from transport_support import App, Handler, SleepRecorder, StartApp


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
async def start_app() -> AsyncIterator[StartApp]:
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> App:
        app = App(handler)
        web_app = web.Application()
        web_app.router.add_route("*", "/{tail:.*}", app._dispatch)
        runner = web.AppRunner(web_app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        app.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        app.base_url = f"http://127.0.0.1:{app.port}"
        return app

    yield start
    for runner in runners:
        with contextlib.suppress(Exception):
            await runner.cleanup()


@pytest.fixture
def free_port() -> int:
    """A port with nothing listening (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port
