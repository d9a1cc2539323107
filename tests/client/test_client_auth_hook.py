"""Authentication other than Basic (spec G34: NTLM through a pluggable hook).

The hook is aiohttp's own: a client middleware on a caller-owned ``aiohttp.ClientSession``
passed as ``HpcClient(session=...)``, with no ``username``/``password``. The emulator speaks
Basic only, so the middleware here computes a Basic header itself, standing in for an NTLM or
Kerberos handshake; what matters is that every call, batch traffic included, goes through it.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import aiohttp
import pytest
from client_support import PASSWORD, USER

import hpcsoa

if TYPE_CHECKING:
    from hpcsoa.emulator._server import EmulatorServer

pytestmark = pytest.mark.integration


async def test_a_session_middleware_authenticates_every_call(server: EmulatorServer) -> None:
    seen: list[str] = []
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    async def authenticate(
        req: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        seen.append(req.url.path)
        req.headers["Authorization"] = f"Basic {token}"
        return await handler(req)

    async with (
        aiohttp.ClientSession(middlewares=(authenticate,)) as http,
        hpcsoa.HpcClient(server.base_url, session=http) as client,
        # The service job's run-as account goes in the start info (spec §4.1) as usual.
        await client.create_session("CcpEchoSvc", username=USER, password=PASSWORD) as session,
    ):
        results = [r async for r in session.map((f"m{i}" for i in range(300)), window=64)]
        assert sorted(r.index for r in results) == list(range(300))
        assert all(r.ok for r in results)
    assert any(p.endswith("/Sessions/Create") for p in seen)
    assert any("/batch/" in p and p.endswith("/Response") for p in seen)
    assert sum("/batch/" in p for p in seen) >= 3  # sends, commit, response pages


async def test_without_credentials_or_hook_the_service_says_401(server: EmulatorServer) -> None:
    async with hpcsoa.HpcClient(server.base_url) as client:
        with pytest.raises(hpcsoa.AuthenticationError):
            await client.create_session("CcpEchoSvc")
