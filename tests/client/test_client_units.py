"""Unit tests of the SOA engine's small parts (no network)."""

from __future__ import annotations

import asyncio

import pytest

import hpcsoa
from hpcsoa.protocol import GENERIC_REPLY_ACTION, GenericResponse, SoaFault, SoapResponse
from hpcsoa.soa._responses import DeliveredKeys, generic_key
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
