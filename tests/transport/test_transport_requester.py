"""Requester + AiohttpTransport against tiny loopback apps: retries, errors, auth, timeouts.

Retry schedules are asserted through the injected sleep (recorded delays), never wall time.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from aiohttp import web
from transport_support import SleepRecorder, StartApp, make_client

import hpcsoa
from hpcsoa.protocol import Operation, UriForm

FAULT = (
    b'<HpcWebServiceFault xmlns="http://schemas.microsoft.com/HPCS2008R2/common" '
    b'xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><Code>{code}</Code>'
    b'<Message>{msg}</Message><Values i:nil="true"/></HpcWebServiceFault>'
)


def fault(code: int, msg: str) -> bytes:
    return FAULT.replace(b"{code}", str(code).encode()).replace(b"{msg}", msg.encode())


def statuses(*codes: int, headers: dict[str, str] | None = None):
    """A handler answering the given statuses in turn (then 200)."""
    seq = list(codes)

    async def handler(request: web.Request) -> web.Response:
        status = seq.pop(0) if seq else 200
        if status >= 400:
            return web.Response(status=status, body=fault(1, "busy"), headers=headers or {})
        return web.Response(status=status, body=b"3", content_type="application/json")

    return handler


async def test_503_retry_after_is_honoured(start_app: StartApp, sleeps: SleepRecorder) -> None:
    app = await start_app(statuses(503, 503, headers={"Retry-After": "2"}))
    async with make_client(app.base_url, sleeps) as client:
        requester = client.requester
        resp = await requester.call(
            Operation.GET_BATCH_STATUS, path_params={"session_id": 1, "batch": "b"}
        )
    assert resp.status == 200
    assert len(app.requests) == 3
    # max(backoff, Retry-After): the backoff (0.5, 1.0) is below the server's 2 s
    assert sleeps == [2.0, 2.0]
    assert requester.retries == 2


async def test_retry_after_http_date(start_app: StartApp, sleeps: SleepRecorder) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    app = await start_app(statuses(429, headers={"Retry-After": when}))
    async with make_client(app.base_url, sleeps) as client:
        await client.requester.call(
            Operation.GET_BATCH_STATUS, path_params={"session_id": 1, "batch": "b"}
        )
    assert len(sleeps) == 1
    assert 25 <= sleeps[0] <= 31


async def test_retry_after_above_cap_raises_server_busy(
    start_app: StartApp, sleeps: SleepRecorder
) -> None:
    app = await start_app(statuses(503, headers={"Retry-After": "3600"}))
    async with make_client(app.base_url, sleeps) as client:
        with pytest.raises(hpcsoa.ServerBusy) as info:
            await client.requester.call(
                Operation.GET_BATCH_STATUS, path_params={"session_id": 1, "batch": "b"}
            )
    assert info.value.retry_after == 3600
    assert isinstance(info.value.__cause__, hpcsoa.ServiceUnavailable)
    assert len(app.requests) == 1  # no second attempt
    assert sleeps == []


async def test_exhausted_retries_raise_retry_error_with_cause(
    start_app: StartApp, sleeps: SleepRecorder
) -> None:
    app = await start_app(statuses(500, 502, 504, 500))
    async with make_client(app.base_url, sleeps) as client:
        with pytest.raises(hpcsoa.RetryError) as info:
            await client.requester.call(
                Operation.GET_BATCH_STATUS, path_params={"session_id": 1, "batch": "b"}
            )
    err = info.value
    assert err.attempts == 3
    assert err.operation == "get_batch_status"
    assert isinstance(err.__cause__, hpcsoa.ServerError)
    assert err.__cause__.status == 504
    assert sleeps == [0.5, 1.0]  # exponential, no jitter
    assert len(app.requests) == 3


async def test_5xx_on_non_idempotent_operation_is_not_retried(
    start_app: StartApp, sleeps: SleepRecorder
) -> None:
    app = await start_app(statuses(500))
    async with make_client(app.base_url, sleeps) as client:
        with pytest.raises(hpcsoa.ServerError):
            await client.requester.call(Operation.CREATE_SESSION, body=b"{}", expect=(201,))
    assert len(app.requests) == 1


async def test_4xx_faults_are_not_retried_and_carry_the_code(
    start_app: StartApp, sleeps: SleepRecorder
) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=400, body=fault(16777242, "flush rejected {0}"))

    app = await start_app(handler)
    async with make_client(app.base_url, sleeps) as client:
        with pytest.raises(hpcsoa.BadRequest) as info:
            await client.requester.call(
                Operation.GET_BATCH_STATUS, path_params={"session_id": 1, "batch": "b"}
            )
    assert info.value.code == 16777242
    assert info.value.code_name == "Broker_FlushRejected"
    assert len(app.requests) == 1
    assert sleeps == []


async def test_retry_disabled_sends_once(start_app: StartApp, sleeps: SleepRecorder) -> None:
    app = await start_app(statuses(503))
    async with make_client(app.base_url, sleeps, retry=None) as client:
        with pytest.raises(hpcsoa.ServiceUnavailable):
            await client.requester.call(
                Operation.GET_BATCH_STATUS, path_params={"session_id": 1, "batch": "b"}
            )
    assert len(app.requests) == 1


async def test_connection_refused_is_retried_then_retry_error(
    free_port: int, sleeps: SleepRecorder
) -> None:
    async with make_client(f"http://127.0.0.1:{free_port}", sleeps) as client:
        with pytest.raises(hpcsoa.RetryError) as info:
            await client.create_session("CcpEchoSvc")  # even Create Session: never sent
    assert isinstance(info.value.__cause__, hpcsoa.ConnectError)
    assert len(sleeps) == 2


async def test_slow_headers_raise_read_timeout(start_app: StartApp, sleeps: SleepRecorder) -> None:
    async def handler(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.Response(status=200)

    app = await start_app(handler)
    timeouts = hpcsoa.Timeouts(read=0.2, total=10)
    async with make_client(app.base_url, sleeps, timeouts=timeouts, retry=None) as client:
        with pytest.raises(hpcsoa.ReadTimeout) as info:
            await client.requester.call(Operation.CREATE_SESSION, body=b"{}", expect=(201,))
    assert isinstance(info.value, TimeoutError)  # generic handlers still match


async def test_total_timeout_bounds_a_call_with_retries(
    start_app: StartApp, sleeps: SleepRecorder
) -> None:
    async def handler(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(status=200)

    app = await start_app(handler)
    timeouts = hpcsoa.Timeouts(read=5, total=0.3)
    async with make_client(app.base_url, sleeps, timeouts=timeouts) as client:
        with pytest.raises(hpcsoa.ReadTimeout, match="total timeout"):
            await client.requester.call(
                Operation.GET_BATCH_STATUS, path_params={"session_id": 1, "batch": "b"}
            )


async def test_credentials_only_for_configured_origin_and_trusted_brokers(
    start_app: StartApp, sleeps: SleepRecorder
) -> None:
    head = await start_app(statuses())
    other = await start_app(statuses())
    async with make_client(head.base_url, sleeps) as client:
        params = {"session_id": 1, "batch": "b"}
        await client.requester.call(Operation.GET_BATCH_STATUS, path_params=params)
        authority = f"127.0.0.1:{other.port}"
        await client.requester.call(
            Operation.GET_BATCH_STATUS, path_params=params, authority=authority
        )
        assert "Authorization" in head.requests[0].headers
        assert head.requests[0].headers["Authorization"].startswith("Basic ")
        assert "Authorization" not in other.requests[0].headers
        client.requester.trust_authority(authority)  # a broker node the service named
        await client.requester.call(
            Operation.GET_BATCH_STATUS, path_params=params, authority=authority
        )
        assert "Authorization" in other.requests[1].headers


async def test_request_shape_api_version_and_content_length(
    start_app: StartApp, sleeps: SleepRecorder
) -> None:
    app = await start_app(statuses())
    async with make_client(app.base_url, sleeps, api_version="2012-11-01.4.0") as client:
        await client.requester.call(
            Operation.PURGE, path_params={"session_id": 7, "batch": "b 1"}, accept="x/y"
        )
        await client.requester.call(
            Operation.GET_BATCH_STATUS,
            path_params={"session_id": 7, "batch": "b"},
            api_version="2011-11-01",
        )
    first, second = app.requests
    assert first.method == "POST"
    assert first.raw_path == "/WindowsHPC/Session/7/batch/b%201/Purge"
    assert first.headers["api-version"] == "2012-11-01.4.0"
    assert first.headers["Content-Length"] == "0"
    assert first.headers["Accept"] == "x/y"
    assert second.headers["api-version"] == "2011-11-01"


async def test_uri_form_detection_falls_back_to_2016(
    start_app: StartApp, sleeps: SleepRecorder
) -> None:
    async def handler(request: web.Request) -> web.Response:
        if request.path.lower() == "/windowshpc/clusters":
            return web.Response(status=404, body=fault(1, "no"))
        return web.Response(status=200, body=b"1", content_type="application/json")

    app = await start_app(handler)
    async with make_client(app.base_url, sleeps, cluster=None) as client:
        await client.requester.call(
            Operation.GET_BATCH_STATUS, path_params={"session_id": 1, "batch": "b"}
        )
        assert client.requester.uri_form is UriForm.HPC2016
    assert app.requests[-1].path == "/WindowsHPC/Session/1/batch/b/Status"


async def test_debug_logs_redact_credentials(
    start_app: StartApp, sleeps: SleepRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    app = await start_app(statuses(503))
    secret = "top-Secret-pw"
    with caplog.at_level(logging.DEBUG, logger="hpcsoa"):
        async with make_client(app.base_url, sleeps, password=secret) as client:
            await client.requester.call(
                Operation.GET_BATCH_STATUS, path_params={"session_id": 1, "batch": "b"}
            )
    assert "GET /WindowsHPC/Session/1/batch/b/Status -> 503" in caplog.text
    assert "retrying get_batch_status (attempt 2 of 3)" in caplog.text
    assert secret not in caplog.text
    assert "Authorization" not in caplog.text
    assert secret not in repr(client)


async def test_stream_opening_and_chunks(start_app: StartApp, sleeps: SleepRecorder) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        for part in (b"ab", b"cd", b"ef"):
            await resp.write(part)
            await asyncio.sleep(0.01)
        await resp.write_eof()
        return resp

    app = await start_app(handler)
    async with make_client(app.base_url, sleeps) as client:
        params = {"session_id": 1, "batch": "b"}
        async with client.requester.stream(Operation.GET_RESPONSES, path_params=params) as s:
            assert s.status == 200
            chunks = [c async for c in s.iter_chunks()]
        assert b"".join(chunks) == b"abcdef"
        assert client.pool_stats()["in_use"] == 0


async def test_stream_error_status_raises_api_error(
    start_app: StartApp, sleeps: SleepRecorder
) -> None:
    app = await start_app(statuses(404))
    async with make_client(app.base_url, sleeps) as client:
        with pytest.raises(hpcsoa.NotFound):
            await client.requester.stream(
                Operation.GET_RESPONSES, path_params={"session_id": 1, "batch": "b"}
            )
        assert client.pool_stats()["in_use"] == 0


async def test_pool_limit_bounds_concurrent_calls(
    start_app: StartApp, sleeps: SleepRecorder
) -> None:
    active = 0
    peak = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.02)
        active -= 1
        return web.Response(status=200)

    app = await start_app(handler)
    limits = hpcsoa.PoolLimits(max_connections=3)
    async with make_client(app.base_url, sleeps, limits=limits) as client:
        params = {"session_id": 1, "batch": "b"}
        await asyncio.gather(
            *(
                client.requester.call(Operation.GET_BATCH_STATUS, path_params=params)
                for _ in range(12)
            )
        )
        assert "3 max" in repr(client)
    assert peak == 3


async def test_pool_timeout_when_every_connection_is_busy(
    start_app: StartApp, sleeps: SleepRecorder
) -> None:
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b"x")
        await release.wait()
        await resp.write_eof()
        return resp

    app = await start_app(handler)
    limits = hpcsoa.PoolLimits(max_connections=1)
    timeouts = hpcsoa.Timeouts(pool=0.1)
    async with make_client(app.base_url, sleeps, limits=limits, timeouts=timeouts) as client:
        params = {"session_id": 1, "batch": "b"}
        async with client.requester.stream(Operation.GET_RESPONSES, path_params=params):
            with pytest.raises(hpcsoa.RetryError) as info:  # never sent: retried, then given up
                await client.requester.call(Operation.GET_BATCH_STATUS, path_params=params)
            assert isinstance(info.value.__cause__, hpcsoa.PoolTimeout)
            assert isinstance(info.value.__cause__, TimeoutError)
            release.set()
        # the slot came back with the stream
        await client.requester.call(Operation.GET_BATCH_STATUS, path_params=params)
