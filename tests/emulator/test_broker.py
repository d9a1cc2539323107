"""The emulator's broker state machine, driven directly (pure, synchronous, fake clock)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpcsoa.emulator._broker import (
    R_OUTPUT,
    BatchState,
    Broker,
    BrokerBatch,
    BrokerSession,
    Message,
    SessionState,
    StoredResponse,
    validate_batch_name,
)
from hpcsoa.emulator._context import FaultError
from hpcsoa.protocol import (
    GENERIC_REPLY_ACTION,
    GENERIC_REQUEST_ACTION,
    BrokerClientStatus,
    EndOfResponses,
    EndOfResponsesReason,
    GenericRequest,
)
from hpcsoa.protocol._errors import SOA_FAULT_CODES

ALICE = "HPCLAB\\alice"
BOB = "HPCLAB\\bob"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def broker(clock: FakeClock) -> Broker:
    return Broker(clock=clock)


def new_session(
    broker: Broker, *, durable: bool = False, client_idle: int = 0, session_idle: int = 0, **kw
) -> BrokerSession:
    return broker.create_session(
        owner=ALICE,
        service_name="CcpEchoSvc",
        durable=durable,
        max_message_size=65536,
        service_operation_timeout=86_400_000,
        client_idle_timeout_ms=client_idle,
        session_idle_timeout_ms=session_idle,
        **kw,
    )


def msgs(*inputs: str, ids: tuple[str, ...] | None = None):
    ids = ids or tuple("" for _ in inputs)
    return [
        (mid, GENERIC_REQUEST_ACTION, GenericRequest(i, f"u-{i}"))
        for mid, i in zip(ids, inputs, strict=True)
    ]


Sent = tuple[BrokerBatch, list[Message]]


def part(sent: Sent, *indexes: int) -> Sent:
    return sent[0], [sent[1][i] for i in indexes]


def answer(broker: Broker, sent: Sent, action: str | None = None) -> None:
    batch, messages = sent
    for message_id, request_action, payload in messages:
        assert isinstance(payload, GenericRequest)
        response: StoredResponse = (
            GENERIC_REPLY_ACTION,
            action or request_action,
            message_id,
            payload.user_data,
            "echo:" + payload.input,
            None,
            None,
        )
        broker.complete(batch, response)


def outputs(items: list[StoredResponse]) -> list[str]:
    return [r[R_OUTPUT] for r in items]


def code_of(exc: pytest.ExceptionInfo[FaultError]) -> tuple[int, int]:
    return exc.value.status, exc.value.code


# --- sessions ------------------------------------------------------------------------------------


def test_session_ids_come_from_allocate_id_and_hooks_fire(clock: FakeClock) -> None:
    created: list[tuple[int, str, str, str]] = []
    closed: list[tuple[int, bool]] = []
    ids = iter([41, 42])
    broker = Broker(
        clock=clock,
        allocate_id=lambda: next(ids),
        on_session_created=lambda *a: created.append(a),
        on_session_closed=lambda *a: closed.append(a),
    )
    s1 = new_session(broker)
    s2 = new_session(broker)
    assert (s1.id, s2.id) == (41, 42)
    assert created == [
        (41, ALICE, "CcpEchoSvc", "CcpEchoSvc"),  # no ServiceJobName: named after the service
        (42, ALICE, "CcpEchoSvc", "CcpEchoSvc"),
    ]
    broker.commit(s1, "b", ALICE)  # an empty committed batch is complete
    broker.close_session(41, ALICE)
    broker.send(s2, "b", ALICE, msgs("x"), commit=False)
    broker.close_session(42, ALICE)
    assert closed == [(41, True), (42, False)]
    assert broker.counters.sessions_created == 2
    assert broker.counters.sessions_closed == 2


def test_session_lookup_faults(broker: Broker) -> None:
    s = new_session(broker)
    with pytest.raises(FaultError) as exc:
        broker.session(999, ALICE)
    assert code_of(exc) == (404, SOA_FAULT_CODES["InvalidSessionId"])
    with pytest.raises(FaultError) as exc:
        broker.session(s.id, BOB)
    assert code_of(exc) == (403, SOA_FAULT_CODES["AccessDenied_BrokerQueue"])
    assert broker.session(s.id, "hpclab\\ALICE") is s  # user names compare case-insensitively
    shared = new_session(broker, share=True)
    assert broker.session(shared.id, BOB) is shared
    broker.close_session(s.id, ALICE)
    with pytest.raises(FaultError) as exc:
        broker.close_session(s.id, ALICE)  # second close → 404 (clients treat it as success)
    assert code_of(exc) == (404, SOA_FAULT_CODES["InvalidSessionId"])


def test_attach_checks_durability(broker: Broker) -> None:
    inter = new_session(broker)
    durable = new_session(broker, durable=True)
    assert broker.attach(inter.id, ALICE, durable=False) is inter
    assert broker.attach(durable.id, ALICE, durable=True) is durable
    with pytest.raises(FaultError) as exc:
        broker.attach(durable.id, ALICE, durable=False)
    assert code_of(exc) == (400, SOA_FAULT_CODES["InvalidAttachDurableSession"])
    with pytest.raises(FaultError) as exc:
        broker.attach(inter.id, ALICE, durable=True)
    assert code_of(exc) == (400, SOA_FAULT_CODES["InvalidAttachInteractiveSession"])


def test_close_ends_open_streams_with_client_purged(broker: Broker) -> None:
    s = new_session(broker)
    answer(broker, broker.send(s, "b", ALICE, msgs("a"), commit=False))
    stream = broker.open_stream(s, "b", ALICE, count=-1, reset=True)
    woken: list[int] = []
    stream.wake = lambda: woken.append(1)
    assert outputs(stream.take()) == ["echo:a"]
    assert not stream.ended
    broker.close_session(s.id, ALICE)
    assert stream.ended
    assert woken
    assert stream.eor == EndOfResponses(1, EndOfResponsesReason.CLIENT_PURGED)
    assert stream.take() == []
    assert s.state is SessionState.CLOSED


# --- batch names and ownership -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["b", "DEFAULTBATCHID", "a b\t{x}-_9", "x" * 128])
def test_valid_batch_names(name: str) -> None:
    validate_batch_name(name)


@pytest.mark.parametrize("name", ["x" * 129, "a.b", "a/b", "naïve", "a;b"])
def test_invalid_batch_names_are_argument_errors(broker: Broker, name: str) -> None:
    s = new_session(broker)
    with pytest.raises(FaultError) as exc:
        broker.status(s, name, ALICE)
    assert code_of(exc) == (400, SOA_FAULT_CODES["ArgumentError"])
    assert s.batches == {}  # nothing created (G35)


def test_batch_names_are_case_insensitive_and_owned(broker: Broker) -> None:
    s = new_session(broker, share=True)
    broker.send(s, "Batch1", ALICE, msgs("a"), commit=False)
    assert broker.status(s, "BATCH1", ALICE) is BrokerClientStatus.READY
    assert len(s.batches) == 1
    for call in (
        lambda: broker.status(s, "batch1", BOB),
        lambda: broker.send(s, "batch1", BOB, msgs("b"), commit=False),
        lambda: broker.commit(s, "batch1", BOB),
        lambda: broker.purge(s, "batch1", BOB),
        lambda: broker.open_stream(s, "batch1", BOB, count=-1, reset=True),
    ):
        with pytest.raises(FaultError) as exc:
            call()
        assert code_of(exc) == (403, SOA_FAULT_CODES["AccessDenied_BrokerQueue"])
    assert s.batch("batch1").received == 1  # type: ignore[union-attr]


# --- the §5.2 legality matrix --------------------------------------------------------------------


def make_state(broker: Broker, s: BrokerSession, state: str, clock: FakeClock) -> None:
    """Bring batch "b" into ``state``."""
    if state == "absent":
        return
    reqs = broker.send(s, "b", ALICE, msgs("x", "y"), commit=False)
    if state == "ready":
        return
    if state == "processing":
        answer(broker, part(reqs, 0))
        broker.commit(s, "b", ALICE)
        return
    answer(broker, reqs)
    if state == "disconnected":
        clock.advance(s.client_idle_timeout_ms / 1000 + 1)
        broker.expire()
        return
    broker.commit(s, "b", ALICE)
    if state == "getresponse":  # durable: timed out after completion, then re-loaded
        clock.advance(s.client_idle_timeout_ms / 1000 + 1)
        broker.expire()
        clock.advance(s.client_idle_timeout_ms / 1000 + 1)
        broker.expire()


EXPECTED = {
    # state: (send, send+commit, commit, get_responses, status)
    "absent": ("ok", "ok", "ok", "ok", BrokerClientStatus.READY),
    "ready": ("ok", "ok", "ok", "ok", BrokerClientStatus.READY),
    "processing": (
        "Broker_FlushRejected",
        "Broker_EOMReject_EndRequests",
        "Broker_EOMReject_EndRequests",
        "ok",
        BrokerClientStatus.PROCESSING,
    ),
    "finished": (
        "Broker_FlushRejected",
        "Broker_EOMRejected",
        "Broker_EOMRejected",
        "ok",
        BrokerClientStatus.FINISHED,
    ),
    "getresponse": (
        "Broker_FlushRejected",
        "Broker_EOMReject_GetResponse",
        "Broker_EOMReject_GetResponse",
        "ok",
        BrokerClientStatus.FINISHED,
    ),
    "disconnected": (
        "ClientTimeout",
        "ClientTimeout",
        "ClientTimeout",
        "ClientTimeout",
        BrokerClientStatus.UNKNOWN,
    ),
}


@pytest.mark.parametrize("state", list(EXPECTED))
@pytest.mark.parametrize(
    "call", ["send", "send+commit", "commit", "get_responses", "status", "purge"]
)
def test_legality_matrix(broker: Broker, clock: FakeClock, state: str, call: str) -> None:
    s = new_session(broker, durable=state == "getresponse", client_idle=10_000)
    make_state(broker, s, state, clock)
    before = s.batch("b")
    before_received = before.received if before else 0
    ops = {
        "send": lambda: broker.send(s, "b", ALICE, msgs("z"), commit=False),
        "send+commit": lambda: broker.send(s, "b", ALICE, msgs("z"), commit=True),
        "commit": lambda: broker.commit(s, "b", ALICE),
        "get_responses": lambda: broker.open_stream(s, "b", ALICE, count=-1, reset=True),
        "status": lambda: broker.status(s, "b", ALICE),
        "purge": lambda: broker.purge(s, "b", ALICE),
    }
    if call == "purge":
        ops[call]()
        assert s.batch("b") is None  # purge succeeds in every state and frees the name
        return
    expected = EXPECTED[state][
        ["send", "send+commit", "commit", "get_responses", "status"].index(call)
    ]
    if call == "status":
        assert ops[call]() is expected
        return
    if expected == "ok":
        ops[call]()
        return
    with pytest.raises(FaultError) as exc:
        ops[call]()
    assert code_of(exc) == (400, SOA_FAULT_CODES[expected])
    after = s.batch("b")
    assert (after.received if after else 0) == before_received  # nothing was added


def test_commit_transitions(broker: Broker) -> None:
    s = new_session(broker)
    reqs = broker.send(s, "b", ALICE, msgs("a", "b"), commit=False)
    batch = s.batch("b")
    assert batch is not None
    assert batch.state is BatchState.READY
    answer(broker, part(reqs, 0))
    assert batch.state is BatchState.READY  # answers before commit do not finish a batch
    broker.commit(s, "b", ALICE)
    assert batch.state is BatchState.PROCESSING
    answer(broker, part(reqs, 1))
    assert batch.state is BatchState.FINISHED
    # commit after every answer arrived goes straight to Finished
    reqs = broker.send(s, "c", ALICE, msgs("a"), commit=False)
    answer(broker, reqs)
    broker.commit(s, "c", ALICE)
    assert s.batch("c").state is BatchState.FINISHED  # type: ignore[union-attr]
    # send with commit=true appends then commits
    reqs = broker.send(s, "d", ALICE, msgs("a"), commit=True)
    assert s.batch("d").state is BatchState.PROCESSING  # type: ignore[union-attr]


def test_commit_on_absent_batch_finishes_empty(broker: Broker) -> None:
    s = new_session(broker)
    broker.commit(s, "fresh", ALICE)
    assert broker.status(s, "fresh", ALICE) is BrokerClientStatus.FINISHED
    stream = broker.open_stream(s, "fresh", ALICE, count=-1, reset=True)
    assert stream.take() == []
    assert stream.ended
    assert stream.eor == EndOfResponses(0)


# --- duplicates ----------------------------------------------------------------------------------


def test_duplicate_message_ids_are_dropped_and_counted(broker: Broker) -> None:
    s = new_session(broker)
    _, first = broker.send(s, "b", ALICE, msgs("a", "b", "c", ids=("m1", "m2", "m1")), commit=False)
    assert [m[0] for m in first] == ["m1", "m2"]
    _, second = broker.send(s, "b", ALICE, msgs("d", "e", ids=("m2", "m3")), commit=False)
    assert [m[0] for m in second] == ["m3"]
    _, anonymous = broker.send(s, "b", ALICE, msgs("f", "g"), commit=False)
    assert len(anonymous) == 2  # an empty id never counts as a duplicate
    assert broker.counters.duplicates_dropped == 2
    assert broker.counters.requests_received == 7
    assert s.batch("b").received == 5  # type: ignore[union-attr]
    # the same id in another batch is fine
    assert len(broker.send(s, "other", ALICE, msgs("a", ids=("m1",)), commit=False)[1]) == 1
    # after a purge the name starts fresh
    broker.purge(s, "b", ALICE)
    assert len(broker.send(s, "b", ALICE, msgs("a", ids=("m1",)), commit=False)[1]) == 1


# --- streams: end conditions (§4.6) --------------------------------------------------------------


def test_stream_waits_before_commit_then_ends_with_eor(broker: Broker) -> None:
    s = new_session(broker)
    reqs = broker.send(s, "b", ALICE, msgs("a", "b"), commit=False)
    stream = broker.open_stream(s, "b", ALICE, count=-1, reset=True)
    wakes: list[int] = []
    stream.wake = lambda: wakes.append(1)
    assert stream.take() == []
    assert not stream.ended
    answer(broker, part(reqs, 0))
    assert wakes == [1]
    assert outputs(stream.take()) == ["echo:a"]
    answer(broker, part(reqs, 1))
    assert outputs(stream.take()) == ["echo:b"]
    assert not stream.ended  # not committed: completion is unknowable
    broker.commit(s, "b", ALICE)
    assert stream.take() == []
    assert stream.ended
    assert stream.eor == EndOfResponses(2, EndOfResponsesReason.SUCCESS)


def test_count_reached_ends_without_eor_unless_complete(broker: Broker) -> None:
    s = new_session(broker)
    answer(broker, broker.send(s, "b", ALICE, msgs("a", "b", "c"), commit=True))
    stream = broker.open_stream(s, "b", ALICE, count=2, reset=True)
    assert outputs(stream.take()) == ["echo:a", "echo:b"]
    assert stream.ended
    assert stream.eor is None
    stream = broker.open_stream(s, "b", ALICE, count=1, reset=False)
    assert outputs(stream.take()) == ["echo:c"]
    assert stream.ended
    assert stream.eor == EndOfResponses(3)


def test_take_respects_limit(broker: Broker) -> None:
    s = new_session(broker)
    answer(broker, broker.send(s, "b", ALICE, msgs(*"abcde"), commit=True))
    stream = broker.open_stream(s, "b", ALICE, count=-1, reset=True)
    assert outputs(stream.take(2)) == ["echo:a", "echo:b"]
    assert not stream.ended
    assert outputs(stream.take(10)) == ["echo:c", "echo:d", "echo:e"]
    assert stream.eor == EndOfResponses(5)


def test_newer_stream_ends_older_without_marker(broker: Broker) -> None:
    s = new_session(broker)
    broker.send(s, "b", ALICE, msgs("a"), commit=False)
    old = broker.open_stream(s, "b", ALICE, count=-1, reset=True)
    woken: list[int] = []
    old.wake = lambda: woken.append(1)
    new = broker.open_stream(s, "b", ALICE, count=-1, reset=True)
    assert old.ended
    assert old.eor is None
    assert woken == [1]
    assert not new.ended
    assert s.batch("b").stream is new
    assert s.open_streams == 1
    new.close()
    new.close()  # idempotent
    assert s.open_streams == 0


def test_purge_ends_stream_and_later_answers_are_dropped(broker: Broker) -> None:
    s = new_session(broker)
    reqs = broker.send(s, "b", ALICE, msgs("a", "b"), commit=True)
    answer(broker, part(reqs, 0))
    stream = broker.open_stream(s, "b", ALICE, count=-1, reset=True)
    assert len(stream.take()) == 1
    broker.purge(s, "b", ALICE)
    assert stream.ended
    assert stream.eor == EndOfResponses(1, EndOfResponsesReason.CLIENT_PURGED)
    assert s.batch("b") is None
    assert broker.complete(reqs[0], ("a", "a", "", None, "late", None, None)) is False
    assert broker.status(s, "b", ALICE) is BrokerClientStatus.READY  # a fresh batch


def test_action_filter(broker: Broker) -> None:
    s = new_session(broker)
    reqs = broker.send(s, "b", ALICE, msgs("a", "b", "c", "d"), commit=True)
    answer(broker, part(reqs, 0, 2), action="urn:x")
    answer(broker, part(reqs, 1, 3), action="urn:y")
    stream = broker.open_stream(s, "b", ALICE, count=-1, reset=True, action="urn:y")
    assert outputs(stream.take()) == ["echo:b", "echo:d"]
    assert stream.ended
    assert stream.eor == EndOfResponses(2)
    stream = broker.open_stream(s, "b", ALICE, count=-1, reset=False)
    assert outputs(stream.take()) == ["echo:a", "echo:c"]  # the skipped ones are still there
    assert stream.eor == EndOfResponses(4)


# --- cursor and acknowledgement ------------------------------------------------------------------


def test_interactive_reset_semantics(broker: Broker) -> None:
    s = new_session(broker)
    answer(broker, broker.send(s, "b", ALICE, msgs(*"abcd"), commit=True))
    st = broker.open_stream(s, "b", ALICE, count=2, reset=True)
    assert outputs(st.take()) == ["echo:a", "echo:b"]
    # reset=true: the unacknowledged a, b are delivered again; the count restarts
    st = broker.open_stream(s, "b", ALICE, count=2, reset=True)
    assert outputs(st.take()) == ["echo:a", "echo:b"]
    # reset=false: acknowledges (deletes) a, b and continues; the count accumulates
    st = broker.open_stream(s, "b", ALICE, count=1, reset=False)
    assert outputs(st.take()) == ["echo:c"]
    assert s.batch("b").held() == 2  # type: ignore[union-attr]
    # reset=true rewinds to the oldest response still held: c (unacknowledged), then d
    st = broker.open_stream(s, "b", ALICE, count=-1, reset=True)
    assert outputs(st.take()) == ["echo:c", "echo:d"]
    assert st.eor == EndOfResponses(2)
    st = broker.open_stream(s, "b", ALICE, count=-1, reset=False)
    assert st.take() == []
    assert st.eor == EndOfResponses(2)
    assert s.batch("b").held() == 0  # type: ignore[union-attr]


def test_durable_reset_replays_everything(broker: Broker) -> None:
    s = new_session(broker, durable=True)
    answer(broker, broker.send(s, "b", ALICE, msgs(*"abc"), commit=True))
    st = broker.open_stream(s, "b", ALICE, count=2, reset=True)
    assert outputs(st.take()) == ["echo:a", "echo:b"]
    st = broker.open_stream(s, "b", ALICE, count=-1, reset=False)
    assert outputs(st.take()) == ["echo:c"]
    assert st.eor == EndOfResponses(3)
    st = broker.open_stream(s, "b", ALICE, count=-1, reset=True)
    assert outputs(st.take()) == ["echo:a", "echo:b", "echo:c"]
    assert st.eor == EndOfResponses(3)
    assert s.batch("b").held() == 3  # type: ignore[union-attr]


def test_stream_delivers_responses_arriving_in_completion_order(broker: Broker) -> None:
    s = new_session(broker)
    reqs = broker.send(s, "b", ALICE, msgs("a", "b", "c"), commit=True)
    st = broker.open_stream(s, "b", ALICE, count=-1, reset=True)
    answer(broker, part(reqs, 2))
    answer(broker, part(reqs, 0))
    assert outputs(st.take()) == ["echo:c", "echo:a"]
    answer(broker, part(reqs, 1))
    assert outputs(st.take()) == ["echo:b"]
    assert st.eor == EndOfResponses(3)


# --- idle timeouts -------------------------------------------------------------------------------


def test_client_idle_timeout_interactive(broker: Broker, clock: FakeClock) -> None:
    s = new_session(broker, client_idle=1000)
    reqs = broker.send(s, "b", ALICE, msgs("a"), commit=False)
    stream = broker.open_stream(s, "b", ALICE, count=-1, reset=True)
    clock.advance(5)
    broker.expire()
    assert s.batch("b").state is BatchState.READY  # type: ignore[union-attr] # pending: no timeout
    answer(broker, reqs)
    assert len(stream.take()) == 1
    clock.advance(0.9)
    broker.expire()
    assert not stream.ended
    clock.advance(0.2)
    broker.expire()
    assert stream.ended
    assert stream.eor == EndOfResponses(1, EndOfResponsesReason.CLIENT_TIMEOUT)
    assert broker.status(s, "b", ALICE) is BrokerClientStatus.UNKNOWN
    with pytest.raises(FaultError) as exc:
        broker.send(s, "b", ALICE, msgs("x"), commit=False)
    assert code_of(exc) == (400, SOA_FAULT_CODES["ClientTimeout"])
    clock.advance(1.1)  # the tombstone lasts one more period, then the batch is forgotten
    broker.expire()
    assert s.batch("b") is None
    assert broker.status(s, "b", ALICE) is BrokerClientStatus.READY


def test_calls_restart_the_client_idle_timer(broker: Broker, clock: FakeClock) -> None:
    s = new_session(broker, client_idle=1000)
    broker.status(s, "b", ALICE)
    for _ in range(5):
        clock.advance(0.8)
        broker.status(s, "b", ALICE)
        broker.expire()
    assert s.batch("b").state is BatchState.READY  # type: ignore[union-attr]


def test_client_idle_timeout_durable_reloads(broker: Broker, clock: FakeClock) -> None:
    s = new_session(broker, durable=True, client_idle=1000)
    answer(broker, broker.send(s, "b", ALICE, msgs("a", "b"), commit=True))
    clock.advance(1.5)
    broker.expire()
    assert s.batch("b").state is BatchState.DISCONNECTED  # type: ignore[union-attr]
    clock.advance(1.5)
    broker.expire()
    batch = s.batch("b")
    assert batch is not None
    assert batch.state is BatchState.GET_RESPONSE
    assert broker.status(s, "b", ALICE) is BrokerClientStatus.FINISHED
    st = broker.open_stream(s, "b", ALICE, count=-1, reset=True)
    assert outputs(st.take()) == ["echo:a", "echo:b"]  # durable data survived


def test_session_idle_timeout(broker: Broker, clock: FakeClock) -> None:
    closed: list[tuple[int, bool]] = []
    broker.on_session_closed = lambda *a: closed.append(a)
    inter = new_session(broker, session_idle=1000)
    durable = new_session(broker, durable=True, session_idle=1000)
    held = new_session(broker, session_idle=1000)
    stream = broker.open_stream(held, "b", ALICE, count=-1, reset=True)
    clock.advance(2)
    broker.expire()
    assert inter.id not in broker.sessions
    assert closed == [(inter.id, True)]
    assert durable.state is SessionState.INACTIVE
    assert held.state is SessionState.ACTIVE  # an open stream keeps the session alive
    with pytest.raises(FaultError) as exc:
        broker.session(durable.id, ALICE)
    assert code_of(exc) == (400, SOA_FAULT_CODES["WebAPI_BrokerNotActive"])
    assert broker.attach(durable.id, ALICE, durable=True).state is SessionState.ACTIVE
    stream.close()
    clock.advance(2)
    broker.expire()
    assert held.id not in broker.sessions
    assert durable.state is SessionState.INACTIVE  # idle again since the attach
    assert broker.counters.sessions_timed_out == 4


def test_zero_disables_timeouts(broker: Broker, clock: FakeClock) -> None:
    s = new_session(broker)
    broker.status(s, "b", ALICE)
    clock.advance(10**6)
    broker.expire()
    assert s.state is SessionState.ACTIVE
    assert s.batch("b").state is BatchState.READY  # type: ignore[union-attr]
    assert broker.next_deadline() is None


# --- the cursor against a simple reference model ----------------------------------------------


class ReferenceCursor:
    """§4.6 as the spec words it: per-response delivered/deleted flags, one cursor."""

    def __init__(self, durable: bool) -> None:
        self.durable = durable
        self.items: list[dict] = []
        self.last: list[dict] = []
        self.since_reset = 0
        self.count = -1
        self.action: str | None = None
        self.written = 0

    def add(self, output: str, action: str) -> None:
        self.items.append({"out": output, "act": action, "gone": False, "seen": False})

    def open(self, reset: bool, count: int, action: str | None) -> None:
        if reset:
            for item in self.items:
                item["seen"] = False
            self.since_reset = 0
        elif not self.durable:
            for item in self.last:
                item["gone"] = True
        self.last = []
        self.count, self.action, self.written = count, action, 0

    def take(self, limit: int) -> list[str]:
        want = limit if self.count < 0 else min(limit, self.count - self.written)
        out = []
        for item in self.items:
            if len(out) >= want:
                break
            if item["gone"] or item["seen"]:
                continue
            if self.action is not None and item["act"] != self.action:
                continue
            item["seen"] = True
            self.last.append(item)
            out.append(item["out"])
        self.written += len(out)
        self.since_reset += len(out)
        return out


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("answer"), st.integers(1, 4), st.sampled_from(["urn:x", "urn:y"])),
        st.tuples(
            st.just("open"),
            st.booleans(),
            st.sampled_from([-1, 1, 2, 3]),
            st.sampled_from([None, None, "urn:x", "urn:y"]),
        ),
        st.tuples(st.just("take"), st.integers(1, 5)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(durable=st.booleans(), ops=OPS)
def test_cursor_matches_reference_model(durable: bool, ops) -> None:
    broker = Broker(clock=FakeClock())
    s = new_session(broker, durable=durable)
    ref = ReferenceCursor(durable)
    stream = None
    n = 0
    for op in ops:
        if op[0] == "answer":
            _, k, action = op
            sent = broker.send(s, "b", ALICE, msgs(*[f"m{n + i}" for i in range(k)]), commit=False)
            answer(broker, sent, action=action)
            for i in range(k):
                ref.add(f"echo:m{n + i}", action)
            n += k
        elif op[0] == "open":
            _, reset, count, action = op
            stream = broker.open_stream(s, "b", ALICE, count=count, reset=reset, action=action)
            ref.open(reset, count, action)
        elif stream is not None and not stream.ended:
            got = outputs(stream.take(op[1]))
            assert got == ref.take(op[1])
            assert s.batch("b").since_reset == ref.since_reset  # type: ignore[union-attr]
    held = sum(1 for item in ref.items if not item["gone"])
    assert s.batch("b") is None or s.batch("b").held() == held  # type: ignore[union-attr]
