"""Conformance: service faults in the stream and completion-order delivery.

Spec §3.4 (fault actions), §3.6 [PROPOSAL] (a failed request in generic framing is a record
whose action is the fault action and whose output is the reason), §4.6 (``s:Fault`` envelope
with RelatesTo and user data preserved; EndOfResponses.Count counts faults too), §4.10 (order).
The failing and slow services are test services registered through ``services=``.
"""

from __future__ import annotations

import asyncio

FAULT_ACTIONS = {
    "http://hpc.microsoft.com/session/SessionFault",
    "http://hpc.microsoft.com/session/RetryOperationError",
    "http://hpc.microsoft.com/session/AuthenticationFailure",
}


def fail_on_boom(text: str) -> str:
    if text == "boom":
        raise RuntimeError("kaboom")
    return text.upper()


async def sleep_for_input(text: str) -> str:
    await asyncio.sleep(float(text))
    return f"slept {text}"


SERVICES = {"FailSvc": fail_on_boom, "SlowSvc": sleep_for_input}


async def test_failed_request_in_generic_framing(start_server, http, spec):
    server = await start_server(services=SERVICES)
    w = spec.Wire(http, server.base_url)
    sid = await w.session(ServiceName="FailSvc")
    await w.send_ok(sid, "b1", ("ok", "1"), ("boom", "2"), ("fine", "3"), commit=True)
    await w.wait_status(sid, "b1", 3)
    got = await w.generic_responses(sid, "b1")
    by_user = {f[2].decode(): f for f in got.fields}
    assert set(by_user) == {"1", "2", "3"}
    assert by_user["1"][:2] == [spec.GENERIC_REPLY_ACTION.encode(), b"OK"]
    assert by_user["3"][:2] == [spec.GENERIC_REPLY_ACTION.encode(), b"FINE"]
    action, reason, _ = by_user["2"]
    assert action.decode() in FAULT_ACTIONS
    assert reason  # the fault reason text
    assert got.eor == (3, "Success")  # faults count as delivered messages


async def test_failed_request_as_soap_fault(start_server, http, spec):
    server = await start_server(services=SERVICES)
    w = spec.Wire(http, server.base_url)
    sid = await w.session(ServiceName="FailSvc")
    good_id = "urn:uuid:00000000-0000-0000-0000-00000000000a"
    bad_id = "urn:uuid:00000000-0000-0000-0000-00000000000b"
    body = spec.soap_array(
        spec.generic_envelope("ok", message_id=good_id, userdata="good"),
        spec.generic_envelope("boom", message_id=bad_id, userdata="bad"),
    )
    assert (await w.send(sid, "b1", body, generic=False, commit=True)).status == 201
    await w.wait_status(sid, "b1", 3)
    got = await w.soap_responses(sid, "b1", clientdata="cd")
    by_id = {e.relates_to: e for e in got.responses}
    assert set(by_id) == {good_id, bad_id}
    assert by_id[good_id].result_text("GenericOperation", spec.NS_GENERIC) == "OK"
    bad = by_id[bad_id]
    assert bad.is_fault
    assert bad.action in FAULT_ACTIONS
    assert bad.userdata == "bad"
    assert bad.callback_id == "cd"
    assert got.eor == (2, "Success")


async def test_responses_stream_in_completion_order(start_server, http, spec):
    """Issue 3 / §4.10: responses are delivered as they complete, not in request order."""
    server = await start_server(services=SERVICES)
    w = spec.Wire(http, server.base_url)
    sid = await w.session(ServiceName="SlowSvc")
    await w.send_ok(sid, "b1", ("0.8", "slow"), ("0", "fast"))
    async with w.open_responses(sid, "b1", reset=True) as stream:
        first = await stream.read_records(1)
        assert first[0].split(spec.SEP)[2] == b"fast"
        second = await stream.read_records(2)
        assert second[1].split(spec.SEP)[2] == b"slow"
        assert (await w.commit(sid, "b1")).status == 201
        body = await stream.read_to_eof()
    assert spec.parse_generic(body).eor == (2, "Success")


async def test_one_failing_request_does_not_affect_other_batches(start_server, http, spec):
    server = await start_server(services=SERVICES)
    w = spec.Wire(http, server.base_url)
    sid = await w.session(ServiceName="FailSvc")
    echo = await w.session()
    await w.send_ok(sid, "b1", ("boom", "x"), commit=True)
    await w.send_ok(echo, "b1", ("hello", "y"), commit=True)
    await w.wait_status(sid, "b1", 3)
    await w.wait_status(echo, "b1", 3)
    got = await w.generic_responses(echo, "b1")
    assert got.records == [spec.echo_record("hello", "y")]
