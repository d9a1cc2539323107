"""Conformance: concurrent sessions, batches, sends and streams; every response exactly once.

Responses are compared as multisets: the broker dispatches in parallel, so the spec does not
promise request order (§4.10 last paragraph, G25).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter


async def test_8_sessions_x_2_batches_in_parallel(wire, spec):
    n_sessions, n_batches, per_batch = 8, 2, 25

    async def one_batch(sid: int, name: str) -> None:
        records = [(f"{sid}-{name}-{i}", f"{name}:{i}") for i in range(per_batch)]
        await wire.send_ok(sid, name, *records[:10])
        async with wire.open_responses(sid, name, count=-1, reset=True) as stream:
            await wire.send_ok(sid, name, *records[10:20])
            await wire.send_ok(sid, name, *records[20:], commit=True)
            body = await stream.read_to_eof(timeout=20)
        got = spec.parse_generic(body)
        assert Counter(got.records) == Counter(spec.echo_record(t, u) for t, u in records)
        assert got.eor == (per_batch, "Success")

    async with asyncio.timeout(40):
        sids = await asyncio.gather(*[wire.session() for _ in range(n_sessions)])
        assert len(set(sids)) == n_sessions
        await asyncio.gather(
            *[one_batch(sid, f"batch{j}") for sid in sids for j in range(n_batches)]
        )


async def test_concurrent_sends_to_one_batch(wire, spec):
    """G25: Send calls on one batch are serialized; nothing is lost or duplicated."""
    sid = await wire.session()
    senders, per_call = 10, 10

    async def sender(k: int) -> None:
        await wire.send_ok(sid, "shared", *[(f"s{k}-{i}", f"{k}.{i}") for i in range(per_call)])

    async with asyncio.timeout(30):
        await asyncio.gather(*[sender(k) for k in range(senders)])
        assert (await wire.commit(sid, "shared")).status == 201
        await wire.wait_status(sid, "shared", 3, timeout=20)
        got = await wire.generic_responses(sid, "shared", timeout=20)
    expected = {f"{k}.{i}" for k in range(senders) for i in range(per_call)}
    assert Counter(got.userdata) == Counter(expected)
    assert got.eor == (senders * per_call, "Success")


async def test_soap_relates_to_exactly_once_across_batches(wire, spec):
    sid = await wire.session()
    sent: dict[str, str] = {}

    async def batch(name: str) -> list:
        envs = []
        for i in range(40):
            mid = f"urn:uuid:{uuid.uuid4()}"
            sent[mid] = f"{name}-{i}"
            envs.append(spec.echo_envelope(f"{name}-{i}", message_id=mid, userdata=f"{name}-{i}"))
        reply = await wire.send(sid, name, spec.soap_array(*envs), generic=False, commit=True)
        assert reply.status == 201, reply.body
        await wire.wait_status(sid, name, 3, timeout=20)
        return (await wire.soap_responses(sid, name, timeout=20)).responses

    async with asyncio.timeout(40):
        results = await asyncio.gather(*[batch(f"b{j}") for j in range(4)])
    responses = [e for r in results for e in r]
    assert Counter(e.relates_to for e in responses) == Counter(sent.keys())
    for e in responses:
        assert e.userdata == sent[e.relates_to or ""]
        assert e.result_text() == f"CN01:{e.userdata}"


async def test_requests_dispatched_concurrently_up_to_cores(start_server, http, spec):
    """Issue 3: requests run concurrently up to ``cores`` (latency is per request)."""
    latency, cores, n = 0.4, 4, 8
    server = await start_server(latency_ms=int(latency * 1000), cores=cores)
    w = spec.Wire(http, server.base_url)
    sid = await w.session()
    started = time.monotonic()
    await w.send_ok(sid, "b1", *[(str(i), str(i)) for i in range(n)], commit=True)
    got = await w.generic_responses(sid, "b1", timeout=n * latency + spec.PROMPT)
    elapsed = time.monotonic() - started
    assert got.eor == (n, "Success")
    waves = n // cores
    assert elapsed >= waves * latency * 0.9, f"{elapsed:.2f}s: more than {cores} at once?"
    assert elapsed < n * latency * 0.75, f"{elapsed:.2f}s: requests ran one at a time"


async def test_many_streams_on_many_batches_at_once(wire, spec):
    """Open streams do not block one another or other calls."""
    sid = await wire.session()
    names = [f"s{i}" for i in range(12)]
    async with asyncio.timeout(30), contextlib.AsyncExitStack() as stack:
        opened = [
            await stack.enter_async_context(wire.open_responses(sid, n, reset=True)) for n in names
        ]
        await asyncio.gather(*[wire.send_ok(sid, n, (n, n), commit=True) for n in names])
        bodies = await asyncio.gather(*[s.read_to_eof(timeout=20) for s in opened])
    for name, body in zip(names, bodies, strict=True):
        got = spec.parse_generic(body)
        assert got.records == [spec.echo_record(name, name)]
        assert got.eor == (1, "Success")
