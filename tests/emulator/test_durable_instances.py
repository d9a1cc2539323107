"""Batch-instance tracking of durable sessions (spec §3.3 table, §3.5 ClientInstanceIdNS).

In a durable session each request may carry ``HPCServer2008_Broker_ClientInstanceIdNS``.
Requests of an instance older than the newest seen are discarded (and counted); a newer
instance discards what the older one had not flushed yet (a Send Requests call flushes when it
completes, so: the older instance's messages earlier in the same body); duplicate
``MessageID`` suppression is per instance. Interactive sessions ignore the header.

The first half drives the broker directly; the second speaks raw HTTP to a real emulator.
"""

from __future__ import annotations

import asyncio
import types
import uuid
from typing import Any

import pytest

from hpcsoa.emulator._broker import BatchState, Broker, BrokerSession, Message
from hpcsoa.protocol import GENERIC_REQUEST_ACTION, GenericRequest, SoapRequest

ALICE = "HPCLAB\\alice"
ECHO = "http://tempuri.org/IEchoSvc/Echo"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def broker(clock: FakeClock) -> Broker:
    return Broker(clock=clock)


def new_session(broker: Broker, *, durable: bool, client_idle: int = 0) -> BrokerSession:
    return broker.create_session(
        owner=ALICE,
        service_name="CcpEchoSvc",
        durable=durable,
        max_message_size=65536,
        service_operation_timeout=86_400_000,
        client_idle_timeout_ms=client_idle,
        session_idle_timeout_ms=0,
    )


def soap(text: str, instance: int | None, message_id: str | None = None) -> Message:
    mid = f"urn:uuid:{uuid.uuid4()}" if message_id is None else message_id
    body = f'<Echo xmlns="http://tempuri.org/"><input>{text}</input></Echo>'
    return (mid, ECHO, SoapRequest(ECHO, body, mid, text, None, instance))


def generic(text: str) -> Message:
    return ("", GENERIC_REQUEST_ACTION, GenericRequest(text, text))


def inputs(accepted: list[Message]) -> list[str | None]:
    return [m[2].user_data for m in accepted]


def send(broker: Broker, session: BrokerSession, *messages: Message) -> list[str | None]:
    _, accepted = broker.send(session, "b1", ALICE, list(messages), commit=False)
    return inputs(accepted)


# --- broker, durable ---------------------------------------------------------------------------


def test_older_instance_is_discarded_and_counted(broker: Broker) -> None:
    session = new_session(broker, durable=True)
    assert send(broker, session, soap("a", 2), soap("b", 2)) == ["a", "b"]
    assert send(broker, session, soap("old", 1), soap("c", 2)) == ["c"]
    batch = session.batch("b1")
    assert batch is not None
    assert batch.received == 3
    assert batch.instance_id == 2
    assert broker.counters.stale_instance_dropped == 1
    assert broker.counters.requests_received == 4


def test_newer_instance_keeps_flushed_requests_of_earlier_calls(broker: Broker) -> None:
    session = new_session(broker, durable=True)
    assert send(broker, session, soap("a", 1)) == ["a"]  # flushed when its call completed
    assert send(broker, session, soap("b", 2)) == ["b"]
    batch = session.batch("b1")
    assert batch is not None
    assert batch.received == 2
    assert broker.counters.unflushed_discarded == 0
    # From now on instance 1 is stale.
    assert send(broker, session, soap("late", 1)) == []
    assert broker.counters.stale_instance_dropped == 1


def test_newer_instance_discards_unflushed_requests_of_the_older(broker: Broker) -> None:
    session = new_session(broker, durable=True)
    # Within one body nothing is flushed before the call completes: instance 4 discards the
    # instance-3 requests in front of it, and instance 3 is stale after it.
    got = send(broker, session, soap("x", 3), soap("y", 3), soap("z", 4), soap("w", 3))
    assert got == ["z"]
    assert broker.counters.unflushed_discarded == 2
    assert broker.counters.stale_instance_dropped == 1
    batch = session.batch("b1")
    assert batch is not None
    assert (batch.received, batch.instance_id) == (1, 4)


def test_duplicate_message_ids_are_suppressed_per_instance(broker: Broker) -> None:
    session = new_session(broker, durable=True)
    mid = "urn:uuid:00000000-0000-0000-0000-00000000000a"
    assert send(broker, session, soap("a", 1, mid), soap("again", 1, mid)) == ["a"]
    assert send(broker, session, soap("resent", 1, mid)) == []
    assert broker.counters.duplicates_dropped == 2
    # A restarted client (new instance) replays with the same ids: accepted once more.
    assert send(broker, session, soap("replay", 2, mid), soap("dup", 2, mid)) == ["replay"]
    assert broker.counters.duplicates_dropped == 3


def test_duplicate_ids_of_discarded_unflushed_requests_do_not_count(broker: Broker) -> None:
    session = new_session(broker, durable=True)
    mid = "urn:uuid:00000000-0000-0000-0000-00000000000b"
    assert send(broker, session, soap("old", 1, mid), soap("new", 2, mid)) == ["new"]
    assert broker.counters.duplicates_dropped == 0
    assert broker.counters.unflushed_discarded == 1


def test_absent_header_is_instance_minus_one(broker: Broker) -> None:
    session = new_session(broker, durable=True)
    assert send(broker, session, soap("plain", None), generic("g")) == ["plain", "g"]
    assert send(broker, session, soap("first", 0)) == ["first"]
    # Requests without the header (and generic ones, which the front end builds without it)
    # are now older than the newest instance.
    assert send(broker, session, soap("plain2", None), generic("g2")) == []
    assert broker.counters.stale_instance_dropped == 2


def test_purge_forgets_the_instance(broker: Broker) -> None:
    session = new_session(broker, durable=True)
    assert send(broker, session, soap("a", 7)) == ["a"]
    broker.purge(session, "b1", ALICE)
    assert send(broker, session, soap("b", 1)) == ["b"]


def test_instance_survives_a_durable_batch_timeout(broker: Broker, clock: FakeClock) -> None:
    session = new_session(broker, durable=True, client_idle=1000)
    batch, accepted = broker.send(session, "b1", ALICE, [soap("a", 5)], commit=False)
    broker.complete(batch, ("r", ECHO, accepted[0][0], "a", "ok", None, None))
    clock.now += 1.0
    broker.expire()
    assert batch.state is BatchState.DISCONNECTED
    clock.now += 1.0
    broker.expire()  # re-loaded from storage, as it was
    assert batch.state is BatchState.READY
    assert send(broker, session, soap("stale", 4), soap("b", 5)) == ["b"]
    assert broker.counters.stale_instance_dropped == 1


def test_commit_with_only_stale_requests_still_commits(broker: Broker) -> None:
    session = new_session(broker, durable=True)
    assert send(broker, session, soap("a", 2)) == ["a"]
    batch, accepted = broker.send(session, "b1", ALICE, [soap("old", 1)], commit=True)
    assert accepted == []
    assert batch.state is BatchState.PROCESSING
    assert batch.received == 1


# --- broker, interactive -------------------------------------------------------------------------


def test_interactive_sessions_ignore_the_instance(broker: Broker) -> None:
    session = new_session(broker, durable=False)
    assert send(broker, session, soap("a", 5), soap("b", 1), soap("c", None)) == ["a", "b", "c"]
    assert send(broker, session, soap("d", 0)) == ["d"]
    mid = "urn:uuid:00000000-0000-0000-0000-00000000000c"
    # Duplicate suppression stays per batch: a new instance id does not reset it.
    assert send(broker, session, soap("e", 1, mid), soap("f", 9, mid)) == ["e"]
    counters = broker.counters
    assert (counters.stale_instance_dropped, counters.unflushed_discarded) == (0, 0)
    assert counters.duplicates_dropped == 1
    batch = session.batch("b1")
    assert batch is not None
    assert batch.instance_id == -1


# --- over the wire -------------------------------------------------------------------------------


def envelope(
    spec: types.ModuleType, text: str, instance: int | None, mid: str | None = None
) -> str:
    """A typed Echo request with an optional ClientInstanceIdNS header (§3.5)."""
    message_id = mid or f"urn:uuid:{uuid.uuid4()}"
    instance_header = (
        ""
        if instance is None
        else f'<HPCServer2008_Broker_ClientInstanceIdNS xmlns="{spec.NS_HPC}">{instance}'
        "</HPCServer2008_Broker_ClientInstanceIdNS>"
    )
    return (
        f'<s:Envelope xmlns:s="{spec.NS_SOAP}" xmlns:a="{spec.NS_WSA}"><s:Header>'
        f'<a:Action s:mustUnderstand="1">{spec.ECHO_ACTION}</a:Action>'
        f"<a:MessageID>{message_id}</a:MessageID>"
        f'<HPCServer2008_Broker_UserDataNS xmlns="{spec.NS_HPC}">{text}'
        "</HPCServer2008_Broker_UserDataNS>"
        f"{instance_header}</s:Header>"
        f'<s:Body><Echo xmlns="{spec.NS_TEMPURI}"><input>{text}</input></Echo></s:Body>'
        "</s:Envelope>"
    )


async def _send(wire: Any, spec: types.ModuleType, sid: int, *envs: str, commit: bool = False):
    reply = await wire.send(sid, "b1", spec.soap_array(*envs), generic=False, commit=commit)
    assert reply.status == (201 if commit else 200), (reply.status, reply.body)


async def _stats(http: Any, server: Any, spec: types.ModuleType) -> dict[str, int]:
    async with asyncio.timeout(5):
        async with http.get(
            f"{server.base_url}/hpcsoa-admin/stats",
            headers={"Authorization": spec.basic(*spec.ALICE)},
        ) as resp:
            assert resp.status == 200
            data: dict[str, int] = await resp.json()
            return data


async def test_wire_durable_batch_applies_instances(server, wire, http, spec) -> None:
    sid = await wire.session(durable=True)
    await _send(wire, spec, sid, envelope(spec, "a1", 1), envelope(spec, "a2", 1))
    # A stale instance is accepted at the HTTP level (200) but its requests are dropped.
    await _send(wire, spec, sid, envelope(spec, "stale", 0))
    # Instance 3 discards the instance-2 request in front of it, then the batch is committed.
    await _send(
        wire,
        spec,
        sid,
        envelope(spec, "b1", 2),
        envelope(spec, "c1", 3),
        envelope(spec, "late", 2),
        commit=True,
    )
    body = await wire.soap_responses(sid, "b1")
    assert sorted(e.userdata for e in body.responses) == ["a1", "a2", "c1"]
    assert sorted(e.result_text() for e in body.responses) == [
        f"{spec.MACHINE}:a1",
        f"{spec.MACHINE}:a2",
        f"{spec.MACHINE}:c1",
    ]
    assert body.eor == (3, "Success")
    stats = await _stats(http, server, spec)
    assert stats["stale_instance_dropped"] == 2
    assert stats["unflushed_discarded"] == 1


async def test_wire_restarted_client_replays_with_same_message_ids(server, wire, spec) -> None:
    sid = await wire.session(durable=True)
    ids = [f"urn:uuid:{uuid.uuid4()}" for _ in range(2)]
    await _send(wire, spec, sid, *(envelope(spec, f"r{i}", 1, mid) for i, mid in enumerate(ids)))
    # Same instance, same ids: duplicates.
    await _send(wire, spec, sid, envelope(spec, "dup", 1, ids[0]))
    # The client restarts (instance 2) and replays everything with the same ids: accepted.
    await _send(
        wire,
        spec,
        sid,
        *(envelope(spec, f"n{i}", 2, mid) for i, mid in enumerate(ids)),
        commit=True,
    )
    body = await wire.soap_responses(sid, "b1")
    assert sorted(e.userdata for e in body.responses) == ["n0", "n1", "r0", "r1"]
    assert body.eor == (4, "Success")


async def test_wire_interactive_batch_ignores_instances(server, wire, spec) -> None:
    sid = await wire.session(durable=False)
    await _send(wire, spec, sid, envelope(spec, "a", 5))
    await _send(wire, spec, sid, envelope(spec, "b", 1), envelope(spec, "c", None), commit=True)
    body = await wire.soap_responses(sid, "b1")
    assert sorted(e.userdata for e in body.responses) == ["a", "b", "c"]
    assert body.eor == (3, "Success")


async def test_wire_non_integer_instance_is_a_400(server, wire, spec) -> None:
    sid = await wire.session(durable=True)
    env = envelope(spec, "x", None).replace(
        "</s:Header>",
        f'<HPCServer2008_Broker_ClientInstanceIdNS xmlns="{spec.NS_HPC}">one'
        "</HPCServer2008_Broker_ClientInstanceIdNS></s:Header>",
    )
    reply = await wire.send(sid, "b1", spec.soap_array(env), generic=False)
    reply.expect(400, spec.ARGUMENT_ERROR)
    # Nothing was queued and the batch still works.
    assert await wire.status_value(sid, "b1") == 1
    await _send(wire, spec, sid, envelope(spec, "ok", 1), commit=True)
    body = await wire.soap_responses(sid, "b1")
    assert [e.userdata for e in body.responses] == ["ok"]
