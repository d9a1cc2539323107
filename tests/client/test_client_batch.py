"""Batch against the real emulator: send / commit / responses / status / purge, both modes."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from client_support import pos

import hpcsoa
from hpcsoa import BrokerClientStatus, EndOfResponsesReason
from hpcsoa.protocol import GenericRequest

pytestmark = pytest.mark.integration

ECHO = "CN01 (GenericService): "


@pytest.fixture
async def session(client: hpcsoa.HpcClient) -> AsyncIterator[hpcsoa.SoaSession]:
    async with await client.create_session("CcpEchoSvc") as s:
        yield s


async def test_generic_round_trip_with_all_batch_methods(session: hpcsoa.SoaSession) -> None:
    batch = session.batch("b1", generic=True)
    assert session.batch("B1") is batch  # batch names are case-insensitive
    assert await batch.status() is BrokerClientStatus.READY
    assert await batch.send(["alpha", "beta"]) == 2
    await batch.commit()
    await batch.commit()  # idempotent on this object
    got = {pos(r): r async for r in batch.responses()}
    assert {k: v.output for k, v in got.items()} == {0: ECHO + "alpha", 1: ECHO + "beta"}
    assert next(iter(got.values())).user_data.startswith(batch.token + ":")
    for r in got.values():
        assert r.ok
        assert r.fault is None
        assert r.message_id is None
        assert r.body is None
        assert r.action.endswith("GenericOperationResponse")
        assert r.raise_for_fault() is r
    assert await batch.status() is BrokerClientStatus.FINISHED
    assert (batch.sent, batch.received, batch.duplicates_dropped) == (2, 2, 0)
    assert batch.bytes_sent > 0
    assert batch.bytes_received > 0
    assert session.sent == 2
    assert session.received == 2
    await batch.purge()
    assert batch.state is hpcsoa.soa.BatchState.OPEN
    assert "sent=2" in repr(batch)


async def test_soap_requests_with_wcf_helper(client, session: hpcsoa.SoaSession) -> None:
    batch = session.batch("typed", generic=False, max_request_count=7)
    reqs = [hpcsoa.Request.wcf("Echo", {"input": f"hi <{i}> & co"}) for i in range(20)]
    reqs.append(hpcsoa.Request.wcf("Echo", {"input": "mine"}, user_data="custom-ud"))
    calls = client.requester.calls
    assert await batch.send(iter(reqs)) == 21
    assert client.requester.calls - calls == 3  # 21 requests, 7 per POST
    await batch.commit()
    results = [r async for r in batch.responses()]
    assert len(results) == 21
    by_ud = {pos(r): r for r in results}
    assert by_ud[3].output == "CN01:hi <3> & co"
    assert by_ud["custom-ud"].output == "CN01:mine"
    r = by_ud[0]
    assert r.action == "http://tempuri.org/IEchoSvc/EchoResponse"
    assert r.body is not None
    assert "<EchoResult>" in r.body
    assert r.message_id is not None
    assert r.message_id.startswith("urn:uuid:")
    assert len({x.message_id for x in results}) == 21


def test_request_wcf_builds_action_and_body() -> None:
    req = hpcsoa.Request.wcf("Add", [("a", 1), ("b", True)], contract="ICalc", namespace="urn:x")
    assert req.action == "urn:x/ICalc/Add"
    assert req.body == '<Add xmlns="urn:x"><a>1</a><b>true</b></Add>'
    with pytest.raises(hpcsoa.EncodeError):
        hpcsoa.Request.wcf("not a name", {})


async def test_soap_unknown_action_is_a_fault_not_an_exception(session) -> None:
    batch = session.batch("typed", generic=False)
    await batch.send(
        [
            hpcsoa.Request.wcf("Echo", {"input": "ok"}),
            hpcsoa.Request.wcf("Nope", {"input": "x"}),
        ],
        commit=True,
    )
    results = {pos(r): r async for r in batch.responses()}
    assert results[0].ok
    bad = results[1]
    assert not bad.ok
    assert bad.output is None
    assert bad.fault is not None
    assert "ContractFilter" in bad.fault.reason
    with pytest.raises(hpcsoa.RequestFault) as info:
        bad.raise_for_fault()
    assert info.value.fault is bad.fault
    assert "ContractFilter" in str(info.value)


async def test_service_exceptions_become_faults(client: hpcsoa.HpcClient) -> None:
    async with await client.create_session("FlakySvc") as session:
        batch = session.batch("f")
        await batch.send(["fine", "boom-1", "ok", "boom-2"], commit=True)
        results = {pos(r): r async for r in batch.responses()}
    assert results[0].output == "FINE"
    assert results[2].output == "OK"
    for key in (1, 3):
        r = results[key]
        assert not r.ok
        assert r.fault is not None
        assert r.fault.kind == "RetryOperationError"
        assert "cannot handle" in r.fault.reason


async def test_async_iterable_input_and_generic_request(session: hpcsoa.SoaSession) -> None:
    async def produce() -> AsyncIterator[object]:
        for i in range(5):
            await asyncio.sleep(0)
            yield f"a{i}"
        yield GenericRequest("explicit", user_data="my-ud")

    batch = session.batch("aiter")
    assert await batch.send(produce(), commit=True) == 6
    got = {pos(r): r.output async for r in batch.responses()}
    assert got["my-ud"] == ECHO + "explicit"
    assert got[4] == ECHO + "a4"


async def test_slow_async_producer_is_not_held_back(session: hpcsoa.SoaSession) -> None:
    """A partial chunk goes out as soon as the producer blocks: responses flow meanwhile."""
    gate = asyncio.Event()

    async def produce() -> AsyncIterator[str]:
        yield "first"
        await gate.wait()
        yield "second"

    batch = session.batch("slow")
    sender = asyncio.create_task(batch.send(produce(), commit=True))
    async with batch.responses() as stream:
        first = await anext(stream)
        assert first.output == ECHO + "first"
        gate.set()
        rest = [r.output async for r in stream]
    assert rest == [ECHO + "second"]
    assert await sender == 2


async def test_coalescing_by_count_and_bytes(client: hpcsoa.HpcClient, server) -> None:
    async with await client.create_session("CcpEchoSvc") as session:
        calls0 = client.requester.calls
        batch = session.batch("c", max_request_count=10, max_request_bytes=10_000)
        await batch.send([f"{i:05d}" for i in range(95)])
        assert client.requester.calls - calls0 == 10  # ceil(95 / 10) POSTs
        batch2 = session.batch("d", max_request_count=1000, max_request_bytes=2_000)
        calls0 = client.requester.calls
        await batch2.send(["x" * 300 for _ in range(20)])  # 6 fit in 2000 bytes
        assert client.requester.calls - calls0 == 4
        for b in (batch, batch2):
            await b.commit()
            assert len([r async for r in b.responses()]) == b.sent


async def test_message_too_large_names_the_item_and_sends_nothing_of_it(
    client: hpcsoa.HpcClient,
) -> None:
    async with await client.create_session("CcpEchoSvc", max_message_size=1000) as session:
        batch = session.batch("big")
        items = ["small-0", "small-1", "x" * 5000, "small-3"]
        with pytest.raises(hpcsoa.MessageTooLarge) as info:
            await batch.send(items)
        err = info.value
        assert err.item_index == 2
        assert err.limit == 1000
        assert err.size > 1000
        assert "max_message_size" in str(err)
        await batch.commit()
        assert sorted([r.output async for r in batch.responses()]) == [
            ECHO + "small-0",
            ECHO + "small-1",
        ]


async def test_unencodable_input_raises_encode_error(session) -> None:
    batch = session.batch("bad")
    with pytest.raises(hpcsoa.EncodeError, match="U\\+FFFF"):
        await batch.send(["ok", "bad\uffffvalue"])
    with pytest.raises(TypeError, match="str items"):
        await batch.send([42])
    with pytest.raises(TypeError, match="iterable"):
        await batch.send("not a list")  # type: ignore[arg-type]
    with pytest.raises(hpcsoa.EncodeError):
        session.batch("bad/name")


async def test_send_after_commit_raises_batch_committed(session, make_client) -> None:
    batch = session.batch("done")
    await batch.send(["x"], commit=True)
    with pytest.raises(hpcsoa.BatchCommitted):
        await batch.send(["y"])
    # Another client that does not know: the broker's Broker_FlushRejected fault.
    other_client = await make_client()
    other = await other_client.attach_session(session.id)
    with pytest.raises(hpcsoa.BatchCommitted) as info:
        await other.batch("done").send(["z"])
    assert isinstance(info.value.__cause__, hpcsoa.ApiError)
    await other.batch("done").commit()  # known committed now: a no-op
    await session.batch("done2").send(["x"], commit=True)
    with pytest.raises(hpcsoa.BatchCommitted):
        await other.batch("done2").commit()  # Broker_EOMReject_*: committed by someone else
    await other.detach()


async def test_responses_with_count_stops_and_next_reader_continues(session) -> None:
    batch = session.batch("partial")
    await batch.send([f"r{i}" for i in range(30)], commit=True)
    async with batch.responses(count=12, page_size=5) as stream:
        first = [r async for r in stream]
    assert len(first) == 12
    assert stream.end_reason is None
    rest = [r async for r in batch.responses(page_size=7)]
    assert len(rest) == 18
    assert Counter(pos(r) for r in first + rest) == Counter(range(30))


async def test_break_out_of_stream_loses_nothing(session) -> None:
    batch = session.batch("brk")
    await batch.send([f"r{i}" for i in range(40)], commit=True)
    seen = []
    async for r in batch.responses(page_size=100):
        seen.append(pos(r))
        if len(seen) == 3:
            break
    rest = [pos(r) async for r in batch.responses()]
    assert sorted(seen + rest) == list(range(40))


async def test_stream_iterated_twice_raises(session) -> None:
    batch = session.batch("twice")
    await batch.send(["x"], commit=True)
    stream = batch.responses()
    assert [r.output async for r in stream] == [ECHO + "x"]
    with pytest.raises(hpcsoa.StreamConsumed):
        async for _ in stream:
            pass


async def test_responses_stream_before_commit(session) -> None:
    """Responses stream as they arrive; the stream ends only after the commit."""
    batch = session.batch("live")
    await batch.send(["one"])
    async with batch.responses() as stream:
        first = await anext(stream)
        assert first.output == ECHO + "one"
        await batch.send(["two"])
        second = await anext(stream)
        assert second.output == ECHO + "two"
        await batch.commit()
        with pytest.raises(StopAsyncIteration):
            await anext(stream)
        assert stream.end_reason is EndOfResponsesReason.SUCCESS


async def test_purge_ends_open_stream(session) -> None:
    batch = session.batch("p")
    await batch.send(["one"])
    async with batch.responses() as stream:
        assert (await anext(stream)).output == ECHO + "one"
        reader = asyncio.create_task(anext(stream))  # waits: the batch is not committed
        await asyncio.sleep(0.05)
        assert not reader.done()
        await batch.purge()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(reader, 5)
    assert stream.end_reason is EndOfResponsesReason.CLIENT_PURGED
    # The name is free again: a fresh batch.
    await batch.send(["again"], commit=True)
    assert [r.output async for r in batch.responses()] == [ECHO + "again"]


async def test_session_close_with_open_stream(client: hpcsoa.HpcClient) -> None:
    session = await client.create_session("CcpEchoSvc")
    batch = session.batch("c")
    await batch.send(["one"])
    stream = batch.responses()
    assert (await anext(stream)).output == ECHO + "one"
    reader = asyncio.create_task(anext(stream))
    await asyncio.sleep(0.05)
    await session.aclose()
    with pytest.raises(hpcsoa.ClientClosed):
        await asyncio.wait_for(reader, 5)
    assert stream.is_closed
    assert client.pool_stats()["in_use"] == 0
    with pytest.raises(hpcsoa.ClientClosed):
        await batch.status()


async def test_batch_context_manager_closes_streams(session) -> None:
    async with session.batch("ctx") as batch:
        await batch.send(["a"])
        stream = batch.responses()
        await anext(stream)
    assert batch.is_closed()
    assert stream.is_closed
    with pytest.raises(hpcsoa.ClientClosed):
        await batch.send(["b"])
    assert session.batch("ctx") is not batch  # a fresh object for the same name


async def test_commit_of_empty_batch_ends_stream_immediately(session) -> None:
    batch = session.batch("empty")
    await batch.commit()
    assert [r async for r in batch.responses()] == []
    assert await batch.status() is BrokerClientStatus.FINISHED


async def test_durable_session_replays_and_dedupes(client: hpcsoa.HpcClient) -> None:
    """Durable reset=true rewinds to the first response; nothing is handed out twice."""
    async with await client.create_session("CcpEchoSvc", durable=True) as session:
        batch = session.batch("d")
        await batch.send([f"r{i}" for i in range(25)], commit=True)
        first = [r async for r in batch.responses(count=10, page_size=4)]
        rest = [r async for r in batch.responses(page_size=4)]
        assert len(first) == 10
        assert len(rest) == 15
        assert batch.duplicates_dropped >= 10  # the replayed first ten were dropped
        assert {pos(r) for r in first} | {pos(r) for r in rest} == set(range(25))


async def test_purge_by_another_client_is_reported(session, make_client) -> None:
    batch = session.batch("foreign")
    await batch.send(["one"])
    other_client = await make_client()
    other = await other_client.attach_session(session.id)
    async with batch.responses() as stream:
        assert (await anext(stream)).output == ECHO + "one"
        reader = asyncio.create_task(anext(stream))
        await asyncio.sleep(0.05)
        await other.batch("foreign").purge()
        with pytest.raises(hpcsoa.SessionError, match="purged by another client"):
            await asyncio.wait_for(reader, 5)
    assert stream.end_reason is EndOfResponsesReason.CLIENT_PURGED
    await other.detach()


async def test_several_batch_objects_on_one_name_lose_nothing(session, make_client) -> None:
    """Request ids are unique per batch object: no false duplicates across senders."""
    first = session.batch("shared-name")
    await first.send(["a", "b"])
    await first.aclose()
    other_client = await make_client()
    other = await other_client.attach_session(session.id)
    await other.batch("shared-name").send(["c", "d"])
    second = session.batch("shared-name")
    assert second is not first
    assert second.token != first.token
    await second.send(["e"], commit=True)
    outputs = sorted([r.output async for r in second.responses()])
    assert outputs == [ECHO + x for x in "abcde"]
    assert second.duplicates_dropped == 0
    await other.detach()
