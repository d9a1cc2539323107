"""Regression tests of defects found in review of the SOA client (issue 4).

Each test failed before its fix:

* credentials leaked through an aiohttp ``ClientResponseError`` chained as ``__cause__``
  (its ``request_info.headers`` hold the ``Authorization`` header);
* a ``BrokerNode`` that is not a plain ``host[:port]`` (bad port, userinfo, path) escaped as
  a raw ``ValueError`` or silently redirected batch calls (and credentials) elsewhere;
* credentials follow the ``BrokerNode`` the service names (a different origin than the
  head node): explicit policy, tested against the real emulator behind a forwarding "head";
* ``HpcClient.aclose()`` left the connection pool open when detaching a session failed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiohttp import web
from client_support import PASSWORD, USER, MakeClient

import hpcsoa

if TYPE_CHECKING:
    from hpcsoa.emulator._server import EmulatorServer

pytestmark = pytest.mark.timeout(60)

TOKEN = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def _chain(exc: BaseException) -> list[BaseException]:
    """Every exception reachable through ``__cause__`` / ``__context__`` (bounded)."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo and len(seen) < 50:
        e = todo.pop()
        if e is None or any(e is s for s in seen):
            continue
        seen.append(e)
        todo += [e.__cause__, e.__context__]
    return seen


def _assert_no_secret(text: str) -> None:
    assert PASSWORD not in text
    assert TOKEN not in text


# --- 1. aiohttp ClientResponseError carries the Authorization header --------------------------


@pytest.fixture
async def garbage_server() -> AsyncIterator[str]:
    """A TCP server answering every request with a malformed HTTP status line."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 abc Garbage\r\n\r\n")
            await writer.drain()
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.close()
        await srv.wait_closed()


@pytest.mark.parametrize("attempts", [1, 2])
async def test_malformed_response_error_does_not_reach_credentials(
    make_client: MakeClient,
    garbage_server: str,
    caplog: pytest.LogCaptureFixture,
    attempts: int,
) -> None:
    client = await make_client(
        base_url=garbage_server,
        retry=hpcsoa.RetryPolicy(max_attempts=attempts, jitter=False, backoff_initial=0),
    )
    caplog.set_level(logging.DEBUG, logger="hpcsoa")
    async with client:
        with pytest.raises(hpcsoa.HpcError) as info:
            await client.uri_form()  # Get Clusters: a GET, retried when attempts > 1
    chain = _chain(info.value)
    assert any(isinstance(e, hpcsoa.ReadError) for e in chain)
    for e in chain:
        _assert_no_secret(repr(e))
        _assert_no_secret(str(e))
        for value in vars(e).values() if hasattr(e, "__dict__") else ():
            _assert_no_secret(repr(value))
    for record in caplog.records:
        _assert_no_secret(record.getMessage())


# --- 2. BrokerNode: credentials follow it; malformed values are typed errors -------------------


def _forwarding_head(target: str, seen: list[str]) -> web.Application:
    """A "head node" that forwards every request to ``target`` (the emulator). The emulator
    names the authority it was reached on (``target``) as ``BrokerNode``, which is therefore
    a different origin than this head node."""

    async def forward(request: web.Request) -> web.StreamResponse:
        seen.append(f"{request.method} {request.path}")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host",)}
        async with (
            aiohttp.ClientSession() as http,
            http.request(
                request.method,
                f"{target}{request.rel_url}",
                data=await request.read(),
                headers=headers,
                allow_redirects=False,
            ) as resp,
        ):
            body = await resp.read()
            keep = {
                k: v
                for k, v in resp.headers.items()
                if k.lower() in ("content-type", "retry-after", "www-authenticate")
            }
            return web.Response(status=resp.status, body=body, headers=keep)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


@contextlib.asynccontextmanager
async def _serve(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_credentials_follow_the_broker_node(
    make_client: MakeClient, server: EmulatorServer
) -> None:
    seen: list[str] = []
    async with _serve(_forwarding_head(server.base_url, seen)) as head:
        # "localhost" for the head, "127.0.0.1" (the emulator) for the broker: other origins.
        head_url = head.replace("127.0.0.1", "localhost")
        client = await make_client(base_url=head_url, cluster="")
        async with client:
            session = await client.create_session("CcpEchoSvc")
            assert session.broker_node == server.authority
            async with session:
                batch = session.batch("b1")
                # The emulator demands Basic auth: these calls only work because the
                # credentials follow the BrokerNode the (authenticated) head node named.
                assert await batch.send(["a", "b"]) == 2
                await batch.commit()
                outputs = sorted([r.output async for r in batch.responses()])
            assert [o[-1:] for o in outputs] == ["a", "b"]  # echo: "<node> (...): a"
    assert any(s.endswith("/Sessions/Create") for s in seen)
    assert not any("/Batch/" in s or "/Response" in s for s in seen)  # batch calls: broker


def _fixed_head(broker_node: str, closed: list[str]) -> web.Application:
    async def create(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "Id": 42,
                "BrokerNode": broker_node,
                "IsDurable": False,
                "MaxMessageSize": 65536,
                "ServiceOperationTimeout": 60000,
            },
            status=201,
        )

    async def close(request: web.Request) -> web.Response:
        closed.append(request.match_info["sid"])
        return web.Response(status=200)

    async def attach(request: web.Request) -> web.Response:
        response = await create(request)
        response.set_status(200)
        return response

    app = web.Application()
    app.router.add_post("/WindowsHPC/Sessions/Create", create)
    app.router.add_get("/WindowsHPC/Session/{sid}/Attach", attach)
    app.router.add_post("/WindowsHPC/Session/{sid}/Close", close)
    return app


@pytest.mark.parametrize(
    "broker_node",
    ["broker:notaport", "broker:99999", "user:pw@evil.example:80", "broker/other/path", ""],
)
async def test_malformed_broker_node_is_a_typed_error(
    make_client: MakeClient, broker_node: str
) -> None:
    closed: list[str] = []
    async with _serve(_fixed_head(broker_node, closed)) as head:
        client = await make_client(base_url=head, cluster="")
        async with client:
            with pytest.raises(hpcsoa.DecodeError, match="BrokerNode"):
                await client.create_session("CcpEchoSvc")
            assert list(client.sessions) == []
            # Attach: the same check; the session is someone else's, so it is not closed.
            with pytest.raises(hpcsoa.DecodeError, match="BrokerNode"):
                await client.attach_session(42)
            assert list(client.sessions) == []
        # The session Create Session started is not left behind (best effort).
        assert closed == ["42"]


# --- 3. aclose() closes the pool even when detaching a session fails ---------------------------


async def test_client_aclose_closes_pool_when_detach_fails(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await make_client()
    session = await client.create_session("CcpEchoSvc")
    session_id = session.id

    async def broken_detach() -> None:
        raise RuntimeError("detach failed")

    monkeypatch.setattr(session, "detach", broken_detach)
    with pytest.raises(RuntimeError, match="detach failed"):
        await client.aclose()
    assert client.is_closed()
    transport: Any = client._transport
    assert transport.is_closed()
    # Clean up on the service through a fresh client.
    other = await make_client()
    async with other:
        again = await other.attach_session(session_id)
        await again.aclose()
    session._closed = True  # it was detached in spirit; silence the unclosed warning


# --- 4. a Retry-After longer than the whole call budget is ServerBusy at once ----------------


async def test_retry_after_beyond_total_timeout_is_server_busy(make_client: MakeClient) -> None:
    calls: list[str] = []

    async def busy(request: web.Request) -> web.Response:
        calls.append(request.path)
        return web.Response(status=503, headers={"Retry-After": "50"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", busy)
    sleeps: list[float] = []

    async def record(delay: float) -> None:
        sleeps.append(delay)

    async with _serve(app) as url:
        client = await make_client(
            base_url=url,
            # The cap (120 s) allows 50 s, but the whole call may only take 5 s: sleeping
            # 50 s could only end in a timeout, so the server's answer is raised at once.
            retry=hpcsoa.RetryPolicy(max_attempts=4, jitter=False, sleep=record),
            timeouts=hpcsoa.Timeouts(total=5.0),
        )
        async with client:
            with pytest.raises(hpcsoa.ServerBusy) as info:
                await client.uri_form()
    assert info.value.retry_after == 50
    assert sleeps == []
    assert len(calls) == 1


# --- 5. contradictory / unsafe configuration is refused at construction ------------------------


@pytest.mark.parametrize("version", ["2011-11-01\r\nX-Injected: 1", "", "2011 11 01", "v\x00"])
def test_api_version_must_be_a_header_token(version: str) -> None:
    # Before: accepted, then a raw ValueError from aiohttp on the first call.
    with pytest.raises(ValueError, match="api_version"):
        hpcsoa.HpcClient("http://127.0.0.1:1", api_version=version)
