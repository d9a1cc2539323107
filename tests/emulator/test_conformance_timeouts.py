"""Conformance: ClientIdleTimeout and SessionIdleTimeout with short knobs (§3.1, §5.1, §5.2, G8).

Knobs: the server's ``client_idle_timeout_ms`` / ``session_idle_timeout_ms`` defaults, and the
``ClientIdleTimeout`` / ``SessionIdleTimeout`` members of WebSessionStartInfo (§4.1), which
take precedence for their session.
"""

from __future__ import annotations

import asyncio
import time

CLIENT_TIMEOUT = 67108867
INVALID_SESSION_ID = 50331649


async def test_client_idle_timeout_ends_stream_then_faults_then_forgets(start_server, http, spec):
    idle = 0.4
    server = await start_server(client_idle_timeout_ms=int(idle * 1000))
    w = spec.Wire(http, server.base_url)
    sid = await w.session()
    await w.send_ok(sid, "b1", ("a", "1"))  # uncommitted, answered: nothing pending
    started = time.monotonic()
    async with w.open_responses(sid, "b1", count=-1, reset=True) as stream:
        await stream.read_records(1)
        body = await stream.read_to_eof(timeout=idle + spec.PROMPT)
    elapsed = time.monotonic() - started
    assert elapsed >= idle * 0.5, f"timed out after {elapsed:.3f}s, knob {idle}s"
    got = spec.parse_generic(body)
    assert got.userdata == ["1"]
    assert got.eor == (1, "ClientTimeout")
    # Disconnected: later calls fail with ClientTimeout ("Retry later").
    (await w.send(sid, "b1", spec.generic_body(("b", "2")))).expect(400, CLIENT_TIMEOUT)
    # Then the broker forgets the batch: an interactive batch comes back empty and Ready,
    # its uncommitted request lost.
    await asyncio.sleep(idle * 3)
    assert await w.status_value(sid, "b1") == 1
    assert (await w.commit(sid, "b1")).status == 201
    got = await w.generic_responses(sid, "b1")
    assert (got.records, got.eor) == ([], (0, "Success"))


async def test_client_idle_timeout_soap_stream_eor(start_server, http, spec):
    server = await start_server(client_idle_timeout_ms=400)
    w = spec.Wire(http, server.base_url)
    sid = await w.session()
    body = spec.soap_array(spec.echo_envelope("a", userdata="1"))
    assert (await w.send(sid, "b1", body, generic=False)).status == 200
    async with w.open_responses(sid, "b1", generic=False, reset=True) as stream:
        raw = await stream.read_to_eof(timeout=0.4 + spec.PROMPT)
    got = spec.parse_soap(raw)
    assert [e.userdata for e in got.responses] == ["1"]
    assert got.eor == (1, "ClientTimeout")


async def test_client_idle_timeout_not_while_requests_pending(start_server, http, spec):
    """The idle clock starts only when every received request has been answered."""
    server = await start_server(client_idle_timeout_ms=300, latency_ms=1200)
    w = spec.Wire(http, server.base_url)
    sid = await w.session()
    await w.send_ok(sid, "b1", ("slow", "s"), commit=True)
    async with w.open_responses(sid, "b1", count=-1, reset=True) as stream:
        body = await stream.read_to_eof(timeout=1.2 + spec.PROMPT)
    got = spec.parse_generic(body)
    assert got.userdata == ["s"]
    assert got.eor == (1, "Success")


async def test_client_idle_timeout_restarts_on_every_call(start_server, http, spec):
    idle = 0.6
    server = await start_server(client_idle_timeout_ms=int(idle * 1000))
    w = spec.Wire(http, server.base_url)
    sid = await w.session()
    await w.send_ok(sid, "b1", ("a", "1"))
    deadline = time.monotonic() + idle * 2.5
    while time.monotonic() < deadline:  # bounded: ~2.5 idle periods
        assert await w.status_value(sid, "b1") == 1
        await asyncio.sleep(idle / 4)
    await asyncio.sleep(idle * 1.4)
    (await w.send(sid, "b1", spec.generic_body(("b", "2")))).expect(400, CLIENT_TIMEOUT)


async def test_finished_batch_times_out(start_server, http, spec):
    idle = 0.8
    server = await start_server(client_idle_timeout_ms=int(idle * 1000))
    w = spec.Wire(http, server.base_url)
    sid = await w.session()
    await w.send_ok(sid, "b1", ("a", "1"), commit=True)
    await w.wait_status(sid, "b1", 3)
    await asyncio.sleep(idle * 1.5)
    (await w.responses(sid, "b1")).expect(400, CLIENT_TIMEOUT)
    (await w.commit(sid, "b1")).expect(400, CLIENT_TIMEOUT)


async def test_client_idle_timeout_from_session_start_info(start_server, http, spec):
    server = await start_server(client_idle_timeout_ms=60_000)
    w = spec.Wire(http, server.base_url)
    sid = await w.session(ClientIdleTimeout=400)
    await w.send_ok(sid, "b1", ("a", "1"))
    async with w.open_responses(sid, "b1", reset=True) as stream:
        body = await stream.read_to_eof(timeout=0.4 + spec.PROMPT)
    assert spec.parse_generic(body).eor == (1, "ClientTimeout")


async def test_session_idle_timeout_ends_interactive_session(start_server, http, spec):
    server = await start_server(session_idle_timeout_ms=400)
    w = spec.Wire(http, server.base_url)
    sid = await w.session()
    await asyncio.sleep(1.2)
    (await w.attach(sid)).expect(404, INVALID_SESSION_ID)
    (await w.status(sid, "b1")).expect(404, INVALID_SESSION_ID)
    (await w.close(sid)).expect(404, INVALID_SESSION_ID)


async def test_session_idle_timeout_from_session_start_info(start_server, http, spec):
    server = await start_server(session_idle_timeout_ms=60_000)
    w = spec.Wire(http, server.base_url)
    short = await w.session(SessionIdleTimeout=400)
    long = await w.session()
    await asyncio.sleep(1.2)
    (await w.attach(short)).expect(404, INVALID_SESSION_ID)
    assert (await w.attach(long)).status == 200


async def test_session_idle_timeout_not_while_stream_open(start_server, http, spec):
    server = await start_server(session_idle_timeout_ms=400, client_idle_timeout_ms=60_000)
    w = spec.Wire(http, server.base_url)
    sid = await w.session()
    async with w.open_responses(sid, "b1", reset=True) as stream:
        await stream.assert_quiet(1.2)
        assert (await w.attach(sid)).status == 200
        await w.send_ok(sid, "b1", ("still", "alive"), commit=True)
        body = await stream.read_to_eof()
    assert spec.parse_generic(body).eor == (1, "Success")


async def test_session_activity_keeps_session_alive(start_server, http, spec):
    server = await start_server(session_idle_timeout_ms=600)
    w = spec.Wire(http, server.base_url)
    sid = await w.session()
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:  # bounded: 1.5 s of calls every 150 ms
        assert await w.status_value(sid, "b1") == 1
        await asyncio.sleep(0.15)
    assert (await w.attach(sid)).status == 200


async def test_session_idle_timeout_does_not_end_durable_session(start_server, http, spec):
    """§5.1: a durable session ends only on Close (or when its job ends)."""
    server = await start_server(session_idle_timeout_ms=400)
    w = spec.Wire(http, server.base_url)
    sid = await w.session(durable=True)
    await asyncio.sleep(1.2)
    assert (await w.attach(sid, durable=True)).status == 200
