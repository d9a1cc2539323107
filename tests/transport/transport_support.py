"""Shared helpers of the transport tests (conftest modules cannot be imported reliably)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

import hpcsoa

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class SleepRecorder(list[float]):
    async def __call__(self, delay: float) -> None:
        self.append(delay)
        await asyncio.sleep(0)


class App:
    """A loopback aiohttp.web server whose every request goes to ``handler``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[web.Request] = []
        self.bodies: list[bytes] = []
        self.base_url = ""
        self.port = 0

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        self.bodies.append(await request.read())
        return await self.handler(request)


StartApp = Callable[[Handler], Awaitable[App]]


def make_client(base_url: str, sleeps: SleepRecorder, **kw: Any) -> hpcsoa.HpcClient:
    kw.setdefault("retry", hpcsoa.RetryPolicy(max_attempts=3, jitter=False, sleep=sleeps))
    kw.setdefault("cluster", "")  # 2016 form: no Get Clusters round trip
    kw.setdefault("username", "CONTOSO\\alice")
    kw.setdefault("password", "pw")
    return hpcsoa.HpcClient(base_url, **kw)
