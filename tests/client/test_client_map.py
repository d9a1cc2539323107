"""session.map against the real emulator: exactly once, order, window, cancellation, leaks."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from client_support import client_tasks, wait_for_quiet

import hpcsoa

pytestmark = pytest.mark.integration

ECHO = "CN01 (GenericService): "


@pytest.fixture
async def session(client: hpcsoa.HpcClient) -> AsyncIterator[hpcsoa.SoaSession]:
    async with await client.create_session("CcpEchoSvc") as s:
        yield s


async def test_map_10000_exactly_once(session: hpcsoa.SoaSession) -> None:
    n = 10_000
    seen: Counter[int] = Counter()
    async for r in session.map((f"in-{i}" for i in range(n)), window=1500):
        seen[r.index] += 1
        assert r.ok
        assert r.input == f"in-{r.index}"
        assert r.output == f"{ECHO}in-{r.index}"
        assert r.latency >= 0
    assert len(seen) == n
    assert set(seen.values()) == {1}
    assert session.received == n
    assert session.sent == n


async def test_map_ordered_with_out_of_order_completion(client: hpcsoa.HpcClient) -> None:
    async with await client.create_session("SlowSvc") as session:
        results = [r async for r in session.map([f"w{i}" for i in range(120)], ordered=True)]
    assert [r.index for r in results] == list(range(120))
    assert [r.output for r in results] == [f"w{i}"[::-1] for i in range(120)]


async def test_map_window_bounds_outstanding(session: hpcsoa.SoaSession) -> None:
    stream = session.map((str(i) for i in range(3000)), window=64, max_request_count=16)
    async with stream:
        count = 0
        async for _ in stream:
            count += 1
            assert stream.outstanding <= 64
    assert count == 3000
    assert 0 < stream.peak_outstanding <= 64


async def test_map_soap_and_faults_are_results(client: hpcsoa.HpcClient) -> None:
    async with await client.create_session("CcpEchoSvc") as session:
        reqs = [hpcsoa.Request.wcf("Echo", {"input": f"t{i}"}) for i in range(200)]
        reqs.append(hpcsoa.Request.wcf("Missing", {}))
        results = {r.index: r async for r in session.map(reqs, generic=False, window=50)}
    assert len(results) == 201
    assert results[7].output == "CN01:t7"
    assert results[7].input is reqs[7]
    assert not results[200].ok
    assert results[200].fault is not None


async def test_map_async_input_and_service_faults(client: hpcsoa.HpcClient) -> None:
    async def inputs() -> AsyncIterator[str]:
        for i in range(300):
            if i % 50 == 0:
                await asyncio.sleep(0)
            yield f"boom{i}" if i % 7 == 0 else f"ok{i}"

    async with await client.create_session("FlakySvc") as session:
        results = [r async for r in session.map(inputs(), window=100)]
    assert sorted(r.index for r in results) == list(range(300))
    faults = [r for r in results if not r.ok]
    assert {r.index for r in faults} == {i for i in range(300) if i % 7 == 0}
    with pytest.raises(hpcsoa.RequestFault):
        faults[0].raise_for_fault()


async def test_map_empty_input(session: hpcsoa.SoaSession) -> None:
    assert [r async for r in session.map([])] == []


async def test_map_iterated_twice_raises(session: hpcsoa.SoaSession) -> None:
    stream = session.map(["a"])
    assert len([r async for r in stream]) == 1
    with pytest.raises(hpcsoa.StreamConsumed):
        async for _ in stream:
            pass
    await stream.aclose()


async def test_map_message_too_large_surfaces(client: hpcsoa.HpcClient) -> None:
    async with await client.create_session("CcpEchoSvc", max_message_size=500) as session:
        with pytest.raises(hpcsoa.MessageTooLarge) as info:
            async for _ in session.map(["a", "b", "x" * 2000, "c"]):
                pass
        assert info.value.item_index == 2


async def test_break_out_of_infinite_map_leaves_nothing_behind(
    client: hpcsoa.HpcClient, server
) -> None:
    async with await client.create_session("CcpEchoSvc") as session:
        before = client_tasks()
        got = 0
        async for _r in session.map((f"x{i}" for i in itertools.count()), window=200):
            got += 1
            if got == 500:
                break
        await wait_for_quiet(client, before)
        assert client.pool_stats()["in_use"] == 0
        assert list(session._maps) == []
        # The abandoned batch was purged on the broker.
        assert server.state.broker.counters.batches_purged == 1


async def test_cancel_map_mid_send_and_mid_stream(client: hpcsoa.HpcClient) -> None:
    async with await client.create_session("SlowSvc") as session:
        before = client_tasks()
        received: list[int] = []

        async def consume() -> None:
            async for r in session.map((str(i) for i in itertools.count()), window=400):
                received.append(r.index)

        task = asyncio.create_task(consume())
        async with asyncio.timeout(10):
            while len(received) < 20:  # sending continues and results are streaming
                await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await wait_for_quiet(client, before)
        assert client.pool_stats()["in_use"] == 0


async def test_cancel_plain_stream_mid_read(session: hpcsoa.SoaSession, client) -> None:
    batch = session.batch("never-committed")
    await batch.send(["a"])
    before = client_tasks()

    async def read_all() -> None:
        async for _ in batch.responses():
            pass

    task = asyncio.create_task(read_all())
    await asyncio.sleep(0.1)  # got "a", now waiting for more
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_for_quiet(client, before)


async def test_map_aclose_is_idempotent_and_map_closes_with_session(
    client: hpcsoa.HpcClient,
) -> None:
    session = await client.create_session("CcpEchoSvc")
    stream = session.map((str(i) for i in itertools.count()), window=50)
    first = await anext(stream)
    assert first.index in range(50)
    await session.aclose()  # closes the map too
    with pytest.raises(hpcsoa.ClientClosed):
        await anext(stream)
    await stream.aclose()
    await stream.aclose()
    assert "closed" in repr(stream)
    assert client.pool_stats()["in_use"] == 0


async def test_map_fast_async_input_is_coalesced(
    client: hpcsoa.HpcClient, session: hpcsoa.SoaSession
) -> None:
    # A producer that never waits must not become one POST per request: the sender reads
    # everything the feeder has buffered before it flushes a chunk.
    async def produce(n: int) -> AsyncIterator[str]:
        for i in range(n):
            yield f"a{i}"

    n = 20_000
    before = client.requester.calls
    indexes = [r.index async for r in session.map(produce(n), window=5000)]
    assert sorted(indexes) == list(range(n))
    calls = client.requester.calls - before
    # 1000 requests per POST: ~20 sends + commit + a few Get Responses pages.
    assert calls < 100, f"{calls} HTTP calls for {n} async inputs"
