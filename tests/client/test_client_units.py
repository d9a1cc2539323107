"""Unit tests of the SOA engine's small parts (no network)."""

from __future__ import annotations

import asyncio
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hpcsoa
from hpcsoa.protocol import GENERIC_REPLY_ACTION, GenericResponse, SoaFault, SoapResponse
from hpcsoa.soa._responses import DeliveredKeys, admit_each, admit_generic, generic_key
from hpcsoa.soa._sender import Aborted, Window


def test_delivered_keys_stay_compact_and_can_be_taken_back() -> None:
    keys = DeliveredKeys()
    for i in [2, 0, 1, 5, 3]:
        keys.add(("t", i))
    assert all(("t", i) in keys for i in (0, 1, 2, 3, 5))
    assert ("t", 4) not in keys
    assert ("u", 0) not in keys  # another sender's numbers are a separate space
    assert keys.footprint() == 1  # 0..3 are below the mark; only 5 is stored
    keys.add("custom")
    assert "custom" in keys
    assert "other" not in keys
    keys.discard(("t", 1))  # parsed but never handed out: delivered again later
    assert ("t", 1) not in keys
    assert all(("t", i) in keys for i in (0, 2, 3, 5))
    keys.add(("t", 1))
    keys.add(("t", 4))
    keys.compact()
    assert keys.footprint() == 1  # only "custom"
    assert len(keys) == 7
    keys.discard("custom")
    assert "custom" not in keys


def test_numbered_keys_only_for_canonical_decimals() -> None:
    def key(ud: str) -> tuple[str, int] | str:
        return generic_key(GenericResponse(GENERIC_REPLY_ACTION, "x", ud))

    assert key("0") == ("", 0)
    assert key("42") == ("", 42)
    assert key("ab12cd34:7") == ("ab12cd34", 7)
    assert key("a:b:9") == ("a:b", 9)
    for odd in ("042", "+1", " 1", "1_0", "١٢", "", "x", "9" * 30, ":5", "t:05", "t:"):
        assert key(odd) == odd  # never folded onto a number another request may own


async def test_window_waits_for_room_and_aborts() -> None:
    window = Window(2)
    window.used = 2
    waiter = asyncio.create_task(window.wait_for_room())
    await asyncio.sleep(0)
    assert not waiter.done()
    window.release(1, wake_at=2)  # not enough room yet
    await asyncio.sleep(0)
    assert not waiter.done()
    window.release(1, wake_at=2)
    await asyncio.wait_for(waiter, 1)
    window.used = 2
    failing = asyncio.create_task(window.wait_for_room())
    await asyncio.sleep(0)
    window.abort(RuntimeError("post failed"))
    with pytest.raises(Aborted):
        await asyncio.wait_for(failing, 1)


def test_response_views_of_generic_and_soap_records() -> None:
    ok = hpcsoa.Response(GenericResponse(GENERIC_REPLY_ACTION, "out", "7"))
    assert (ok.output, ok.user_data, ok.ok, ok.fault, ok.body, ok.message_id) == (
        "out",
        "7",
        True,
        None,
        None,
        None,
    )
    bad = hpcsoa.Response(
        GenericResponse("http://hpc.microsoft.com/session/RetryOperationError", "boom", "8")
    )
    assert not bad.ok
    assert bad.output is None
    assert bad.fault is not None
    assert (bad.fault.kind, bad.fault.reason) == ("RetryOperationError", "boom")
    fault = SoaFault(kind="Fault", code="Receiver", reason="nope")
    soap = hpcsoa.Response(
        SoapResponse(action="a", relates_to="urn:uuid:1", body="<x/>", result=None, fault=fault)
    )
    assert soap.message_id == "urn:uuid:1"
    assert soap.body == "<x/>"
    with pytest.raises(hpcsoa.RequestFault, match="nope"):
        soap.raise_for_fault()
    assert ok == hpcsoa.Response(GenericResponse(GENERIC_REPLY_ACTION, "out", "7"))
    assert "out" in repr(ok)


@st.composite
def _out_of_order(draw: st.DrawFn) -> list[str]:
    """A run of a batch's own ids completed out of order, maybe with a repeat or odd key."""
    space = draw(st.sampled_from(["t1", "t2"]))
    first = draw(st.integers(0, 40))
    run = [f"{space}:{n}" for n in range(first, first + draw(st.integers(1, 12)))]
    odd = st.sampled_from([run[0], f"{space}:", f"{space}:007", f"{space}:+5", "mine"])
    run += draw(st.lists(odd, max_size=2))
    return draw(st.permutations(run))


# Keys as responses carry them: runs of a batch's own ids (sometimes replayed, cut or
# duplicated), other spaces, bare numbers, non-canonical numbers and users' own strings.
_key_runs = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["t1", "t2"]), st.integers(0, 40), st.integers(1, 12)).map(
            lambda r: [f"{r[0]}:{n}" for n in range(r[1], r[1] + r[2])]
        ),
        _out_of_order(),
        st.lists(
            st.one_of(
                st.sampled_from(["t1:3", "t1:03", "7", ":5", "", "mine", "t1:x", "a:b:4"]),
                st.integers(0, 50).map(lambda n: f"t1:{n}"),
            ),
            min_size=1,
            max_size=6,
        ),
    ),
    max_size=12,
)


@given(_key_runs)
@settings(max_examples=300, deadline=None)
def test_admit_fast_path_equals_one_by_one(runs: list[list[str]]) -> None:
    fast_keys, slow_keys = DeliveredKeys(), DeliveredKeys()
    fast_buf: deque[object] = deque()
    slow_buf: deque[object] = deque()
    for run in runs:
        records = [(GENERIC_REPLY_ACTION, f"out {k}", k) for k in run]
        dropped_fast = admit_generic(fast_keys, list(records), fast_buf)
        dropped_slow = admit_each(slow_keys, list(records), run, slow_buf)
        assert dropped_fast == dropped_slow
        assert list(fast_buf) == list(slow_buf)
        assert len(fast_keys) == len(slow_keys)
    for run in runs:
        for k in run:
            assert (generic_key((GENERIC_REPLY_ACTION, "", k)) in fast_keys) == (
                generic_key((GENERIC_REPLY_ACTION, "", k)) in slow_keys
            )
    # every non-empty key was delivered at most once
    delivered = [r[2] for r in fast_buf if r[2]]  # type: ignore[index]
    assert len({generic_key((GENERIC_REPLY_ACTION, "", k)) for k in delivered}) == len(delivered)


def test_admit_fast_path_after_a_gap_and_a_replay() -> None:
    keys = DeliveredKeys()
    buf: deque[object] = deque()
    run = [(GENERIC_REPLY_ACTION, "o", f"t:{n}") for n in range(10, 20)]
    assert admit_generic(keys, run, buf) == 0  # above the low-water mark 0: kept as members
    assert keys.footprint() == 10
    assert admit_generic(keys, run, buf) == 10  # a replay of the same run
    head = [(GENERIC_REPLY_ACTION, "o", f"t:{n}") for n in range(10)]
    assert admit_generic(keys, head, buf) == 0  # fills the gap: everything compacts
    assert keys.footprint() == 0
    assert len(keys) == 20
    assert len(buf) == 20


def test_map_result_views_of_generic_and_soap_records() -> None:
    ok = hpcsoa.MapResult(3, "in", 0.25, (GENERIC_REPLY_ACTION, "out", "t:3"))
    assert (ok.index, ok.input, ok.latency, ok.output, ok.user_data, ok.ok, ok.fault) == (
        3,
        "in",
        0.25,
        "out",
        "t:3",
        True,
        None,
    )
    assert ok.response == hpcsoa.Response(GenericResponse(GENERIC_REPLY_ACTION, "out", "t:3"))
    assert ok.raise_for_fault() is ok
    assert "index=3" in repr(ok)
    failed = hpcsoa.MapResult(
        4, "x", 0.0, ("http://hpc.microsoft.com/session/SessionFault", "gone", "t:4")
    )
    assert failed.output is None
    assert not failed.ok
    assert failed.fault is not None
    assert failed.fault.kind == "SessionFault"
    with pytest.raises(hpcsoa.RequestFault, match="gone"):
        failed.raise_for_fault()
    fault = SoaFault(kind="Fault", code="Receiver", reason="nope")
    soap = hpcsoa.MapResult(
        5,
        "req",
        0.1,
        SoapResponse(action="a", relates_to="urn:uuid:5", body="<x/>", result=None, fault=fault),
    )
    assert soap.user_data is None
    assert soap.response.message_id == "urn:uuid:5"
    assert not soap.ok
    assert soap.output is None
    assert "fault=Fault" in repr(soap)


def test_admit_out_of_order_runs_and_repeats() -> None:
    keys = DeliveredKeys()
    buf: deque[object] = deque()
    run = [(GENERIC_REPLY_ACTION, "o", f"t:{n}") for n in (3, 1, 2, 0, 5)]
    assert admit_generic(keys, run, buf) == 0
    assert (len(keys), keys.footprint()) == (5, 1)  # 0-3 compacted, 5 kept as a member
    # A repeat inside the chunk, a replay and a non-canonical id (its own key).
    again = [(GENERIC_REPLY_ACTION, "o", k) for k in ("t:4", "t:4", "t:5", "t:06")]
    assert admit_generic(keys, again, buf) == 2
    assert [r[2] for r in buf] == ["t:3", "t:1", "t:2", "t:0", "t:5", "t:4", "t:06"]
