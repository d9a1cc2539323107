"""Faults from the emulator's fault plan: nothing lost, nothing duplicated, bounded retries.

Every test checks the exactly-once invariant on the results and asserts the recorded retry
sleeps (the injected sleep), never wall time.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest
from client_support import pos

import hpcsoa
from hpcsoa.emulator import FaultPlan

if TYPE_CHECKING:
    from client_support import SleepRecorder

pytestmark = pytest.mark.integration

ECHO = "CN01 (GenericService): "


def plan(*rules: dict[str, Any]) -> FaultPlan:
    return FaultPlan.from_json({"seed": 1, "rules": list(rules)})


def fired(server: Any) -> list[int]:
    return list(server.state.faults.fired)


async def run_map(session: hpcsoa.SoaSession, n: int, **kw: Any) -> hpcsoa.MapStream:
    stream = session.map((f"m{i}" for i in range(n)), **kw)
    counts: Counter[int] = Counter()
    async with stream:
        async for r in stream:
            counts[r.index] += 1
            assert r.output == f"{ECHO}m{r.index}"
    assert sorted(counts) == list(range(n)), "lost results"
    assert set(counts.values()) <= {1}, "duplicated results"
    return stream


async def test_503_retry_after_on_send(client, server, sleeps: SleepRecorder) -> None:
    async with await client.create_session("CcpEchoSvc") as session:
        server.set_fault_plan(
            plan(
                {
                    "operation": "send_requests",
                    "nth": 2,
                    "times": 2,
                    "status": 503,
                    "headers": {"Retry-After": "3"},
                }
            )
        )
        stream = await run_map(session, 1000, max_request_count=100, max_in_flight=1)
    assert fired(server) == [2]
    assert sleeps == [3.0, 3.0]
    assert stream.batch.retried == 2
    assert stream.batch.duplicates_dropped == 0


async def test_503_retry_after_on_responses(client, server, sleeps: SleepRecorder) -> None:
    async with await client.create_session("CcpEchoSvc") as session:
        batch = session.batch("r")
        await batch.send([f"m{i}" for i in range(300)], commit=True)
        server.set_fault_plan(
            plan(
                {
                    "operation": "get_responses",
                    "nth": 2,
                    "times": 1,
                    "status": 503,
                    "headers": {"Retry-After": "1.5"},
                }
            )
        )
        got = [pos(r) async for r in batch.responses(page_size=100)]
    assert sorted(got) == list(range(300))
    assert fired(server) == [1]
    assert sleeps == [1.5]


async def test_connection_aborted_after_send_was_processed_generic(
    client, server, sleeps: SleepRecorder
) -> None:
    """The broker stored the chunk but the answer was lost: the chunk is resent, and the
    duplicate results (generic mode has no MessageID) are dropped by user data."""
    async with await client.create_session("CcpEchoSvc") as session:
        server.set_fault_plan(
            plan({"operation": "send_requests", "nth": 3, "times": 1, "abort": "after"})
        )
        stream = await run_map(session, 2000, max_request_count=200, window=500)
    assert fired(server) == [1]
    assert stream.batch.retried >= 1
    resent = server.state.broker.counters.requests_received - 2000  # one chunk twice
    assert resent > 0
    assert stream.batch.duplicates_dropped == resent
    assert len(sleeps) == 1


async def test_connection_aborted_after_send_was_processed_soap(client, server) -> None:
    """SOAP: the resent chunk carries the same MessageIDs, which the broker drops."""
    async with await client.create_session("CcpEchoSvc") as session:
        server.set_fault_plan(
            plan({"operation": "send_requests", "nth": 2, "times": 1, "abort": "after"})
        )
        reqs = [hpcsoa.Request.wcf("Echo", {"input": f"s{i}"}) for i in range(400)]
        results = {
            r.index: r
            async for r in session.map(reqs, generic=False, window=400, max_request_count=100)
        }
    assert sorted(results) == list(range(400))
    assert results[123].output == "CN01:s123"
    assert server.state.broker.counters.duplicates_dropped == 100
    assert server.state.broker.counters.responses_stored == 400


async def test_truncated_response_page_resumes_with_reset(client, server) -> None:
    async with await client.create_session("CcpEchoSvc") as session:
        batch = session.batch("t")
        await batch.send([f"m{i}" for i in range(500)], commit=True)
        server.set_fault_plan(
            plan({"operation": "get_responses", "nth": 2, "times": 2, "truncate_after": 3000})
        )
        got = Counter([pos(r) async for r in batch.responses(page_size=200)])
    assert sorted(got) == list(range(500))
    assert set(got.values()) == {1}
    assert fired(server) == [2]
    assert batch.retried == 2
    assert batch.duplicates_dropped > 0  # the cut pages were replayed after reset=true


async def test_truncated_soap_page_mid_envelope(client, server) -> None:
    async with await client.create_session("CcpEchoSvc") as session:
        batch = session.batch("ts", generic=False)
        await batch.send(
            [hpcsoa.Request.wcf("Echo", {"input": f"s{i}"}) for i in range(100)], commit=True
        )
        server.set_fault_plan(
            plan({"operation": "get_responses", "times": 1, "truncate_after": 2500})
        )
        got = Counter([pos(r) async for r in batch.responses()])
    assert sorted(got) == list(range(100))
    assert set(got.values()) == {1}
    assert batch.retried == 1


async def test_map_survives_truncated_and_garbled_pages(client, server) -> None:
    async with await client.create_session("CcpEchoSvc") as session:
        server.set_fault_plan(
            plan(
                {"operation": "get_responses", "nth": 1, "times": 1, "truncate_after": 4000},
                {"operation": "get_responses", "nth": 3, "times": 1, "garble": 5},
                {"operation": "get_responses", "nth": 5, "times": 1, "duplicate": 2},
            )
        )
        stream = await run_map(session, 3000, window=300)
    assert fired(server) == [1, 1, 1]
    assert stream.batch.retried >= 2


async def test_duplicated_envelope_is_dropped(client, server) -> None:
    async with await client.create_session("CcpEchoSvc") as session:
        batch = session.batch("d", generic=False)
        await batch.send(
            [hpcsoa.Request.wcf("Echo", {"input": f"s{i}"}) for i in range(50)], commit=True
        )
        server.set_fault_plan(plan({"operation": "get_responses", "times": 1, "duplicate": 3}))
        got = Counter([r.message_id async for r in batch.responses()])
    assert len(got) == 50
    assert set(got.values()) == {1}
    assert batch.duplicates_dropped >= 1


async def test_commit_outcome_unknown_checks_status(client, server) -> None:
    async with await client.create_session("CcpEchoSvc") as session:
        batch = session.batch("c")
        await batch.send(["a", "b"])
        server.set_fault_plan(plan({"operation": "commit", "times": 1, "abort": "after"}))
        await batch.commit()  # the commit arrived: status Processing/Finished → committed
        assert [r async for r in batch.responses()] != []
        batch2 = session.batch("c2")
        await batch2.send(["a"])
        server.set_fault_plan(plan({"operation": "commit", "times": 1, "abort": "before"}))
        await batch2.commit()  # never arrived: status Ready → committed again
        assert len([r async for r in batch2.responses()]) == 1


def service_jobs(server: Any) -> dict[int, str]:
    """Running service jobs on the emulator: id → name."""
    jobs = server.state.scheduler.jobs.values()
    return {j.id: j.props["Name"] for j in jobs if j.is_service and not j.state.is_terminal()}


async def test_create_session_lost_answer_finds_its_session(client, server) -> None:
    # The broker creates the session, then the connection drops before the answer.
    server.set_fault_plan(plan({"operation": "create_session", "times": 1, "abort": "after"}))
    session = await client.create_session("CcpEchoSvc")
    assert server.state.broker.counters.sessions_created == 1  # attached, not created twice
    [(job_id, name)] = service_jobs(server).items()
    assert session.id == job_id
    assert name.startswith("CcpEchoSvc [hpcsoa ")
    async with session:
        await run_map(session, 50)
    assert service_jobs(server) == {}


async def test_create_session_lost_before_arriving_says_nothing_was_left(client, server) -> None:
    server.set_fault_plan(plan({"operation": "create_session", "times": 1, "abort": "before"}))
    with pytest.raises(hpcsoa.NetworkError) as info:
        await client.create_session("CcpEchoSvc")
    assert server.state.broker.counters.sessions_created == 0
    assert any("left no session behind" in note for note in info.value.__notes__)
    server.set_fault_plan(
        plan(
            {
                "operation": "create_session",
                "times": 1,
                "status": 503,
                "headers": {"Retry-After": "1"},
            }
        )
    )
    async with await client.create_session("CcpEchoSvc"):  # refused outright: retried
        pass


async def test_create_session_with_own_job_name_is_never_guessed(client, server) -> None:
    server.set_fault_plan(plan({"operation": "create_session", "times": 1, "abort": "after"}))
    with pytest.raises(hpcsoa.NetworkError):
        await client.create_session("CcpEchoSvc", service_job_name="nightly sweep")
    # No blind retry (that would start a second job) and no guessing by a shared name.
    assert server.state.broker.counters.sessions_created == 1
    assert list(service_jobs(server).values()) == ["nightly sweep"]


async def test_create_session_lookup_failure_is_reported(client, server) -> None:
    server.set_fault_plan(
        plan(
            {"operation": "create_session", "times": 1, "abort": "after"},
            {"operation": "list_jobs", "status": 400},
        )
    )
    with pytest.raises(hpcsoa.NetworkError) as info:
        await client.create_session("CcpEchoSvc")
    assert any("may have been left running" in note for note in info.value.__notes__)


async def test_persistent_page_failures_end_in_retry_error(
    client, server, sleeps: SleepRecorder
) -> None:
    async with await client.create_session("CcpEchoSvc") as session:
        batch = session.batch("x")
        await batch.send([f"m{i}" for i in range(50)], commit=True)
        server.set_fault_plan(plan({"operation": "get_responses", "truncate_after": 10}))
        with pytest.raises(hpcsoa.RetryError) as info:
            async for _ in batch.responses():
                pass
        assert info.value.attempts == 4
        assert isinstance(info.value.__cause__, hpcsoa.HpcError)
        assert sleeps == [0.5, 1.0, 2.0]
        assert client.pool_stats()["in_use"] == 0


@pytest.mark.parametrize(
    "rule",
    [
        {"abort": "before"},
        {"abort": "after"},
        {"status": 500},
        {"garble": 7},
        {"delay_ms": 1, "truncate_after": 700},
    ],
    ids=["abort-before", "abort-after", "http-500", "garbled-record", "truncated"],
)
async def test_any_broken_page_rewinds_and_loses_nothing(client, server, rule) -> None:
    async with await client.create_session("CcpEchoSvc") as session:
        batch = session.batch("g")
        await batch.send([f"m{i}" for i in range(120)], commit=True)
        # The 3rd page is opened with reset=false (it acknowledges page 2): a failure there
        # is ambiguous, so the reader must rewind with reset=true instead of repeating it.
        server.set_fault_plan(plan({"operation": "get_responses", "nth": 3, "times": 1, **rule}))
        got = Counter([pos(r) async for r in batch.responses(page_size=25)])
    assert fired(server) == [1]
    assert sorted(got) == list(range(120))
    assert set(got.values()) == {1}
    assert batch.retried >= 1


async def test_idle_stream_times_out_then_retry_error(make_client, sleeps: SleepRecorder) -> None:
    client = await make_client(timeouts=hpcsoa.Timeouts(stream_read=0.1))
    async with await client.create_session("CcpEchoSvc") as session:
        batch = session.batch("idle")
        await batch.send(["only"])  # never committed: the stream waits for more
        stream = batch.responses()
        assert (await anext(stream)).output == ECHO + "only"
        with pytest.raises(hpcsoa.RetryError) as info:
            await anext(stream)
        assert isinstance(info.value.__cause__, hpcsoa.ReadTimeout)
        assert sleeps == [0.5, 1.0, 2.0]
        assert batch.duplicates_dropped == 3  # "only" came back after each rewind
        assert client.pool_stats()["in_use"] == 0
