"""Conformance: Get Responses as a long-lived stream (§3.4–§3.6, §4.6, §4.8, §4.3, G5–G8, G25).

Responses are compared as multisets: the spec does not promise request order (§4.10).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from urllib.parse import quote

import pytest

ANON = "http://www.w3.org/2005/08/addressing/anonymous"


# --- streaming before commit (§4.6 rule 5, G8, G9) --------------------------------------------


async def test_generic_stream_delivers_before_commit(wire, spec):
    sid = await wire.session()
    await wire.send_ok(sid, "b1", ("alpha", "u1"), ("beta", "u2"))
    async with wire.open_responses(sid, "b1", count=-1, reset=True) as stream:
        resp = await stream.started()
        assert resp.status == 200
        assert resp.headers.get("Transfer-Encoding") == "chunked"
        assert resp.headers.get("Content-Type") == "application/octet-stream"
        records = await stream.read_records(2)
        assert Counter(records) == Counter(
            [spec.echo_record("alpha", "u1"), spec.echo_record("beta", "u2")]
        )
        # Completion is unknowable before the commit: no EndOfResponses yet, stream open.
        await stream.assert_quiet(0.3)
        assert (await wire.commit(sid, "b1")).status == 201
        body = await stream.read_to_eof()
    got = spec.parse_generic(body)
    assert got.eor == (2, "Success")
    assert len(got.records) == 2


async def test_generic_stream_pushes_responses_sent_after_it_opened(wire, spec):
    sid = await wire.session()
    async with wire.open_responses(sid, "b1", count=-1, reset=True) as stream:
        await stream.assert_quiet(0.2)
        await wire.send_ok(sid, "b1", ("one", "1"))
        assert (await stream.read_records(1))[0] == spec.echo_record("one", "1")
        await wire.send_ok(sid, "b1", ("two", "2"))
        assert (await stream.read_records(2))[1] == spec.echo_record("two", "2")
        await stream.assert_quiet(0.2)
        await wire.send_ok(sid, "b1", ("three", "3"), commit=True)
        body = await stream.read_to_eof()
    got = spec.parse_generic(body)
    assert got.userdata == ["1", "2", "3"]
    assert got.eor == (3, "Success")


async def test_soap_stream_delivers_before_commit(wire, spec):
    sid = await wire.session()
    body = spec.soap_array(
        spec.echo_envelope("a", userdata="1"), spec.echo_envelope("b", userdata="2")
    )
    assert (await wire.send(sid, "b1", body, generic=False)).status == 200
    async with wire.open_responses(sid, "b1", generic=False, count=-1, reset=True) as stream:
        resp = await stream.started()
        assert resp.status == 200
        assert resp.headers.get("Content-Type") == "application/xml; charset=utf-8"
        envs = await stream.read_envelopes(2)
        assert sorted(e.result_text() for e in envs) == ["CN01:a", "CN01:b"]
        await stream.assert_quiet(0.3)
        assert (await wire.commit(sid, "b1")).status == 201
        raw = await stream.read_to_eof()
    got = spec.parse_soap(raw)
    assert got.root_tag == "HPCServer2008_WebAPI_MessageArray"
    assert sorted(e.userdata or "" for e in got.responses) == ["1", "2"]
    assert got.eor == (2, "Success")


# --- SOAP content (§3.4, §3.5, §4.6) ----------------------------------------------------------


async def test_typed_echo_soap_round_trip(wire, spec):
    mid = "urn:uuid:6f1c2b52-6e0f-4c53-9a0b-0d2a4bb0c001"
    sid = await wire.session()
    env = spec.echo_envelope("hello", message_id=mid, userdata="row-1", client_id="nightly")
    sent = await wire.send(sid, "nightly", spec.soap_array(env), generic=False, commit=True)
    assert (sent.status, sent.body) == (201, b"")
    await wire.wait_status(sid, "nightly", 3)
    reply = await wire.responses(sid, "nightly", generic=False, clientdata="cb-7")
    assert reply.status == 200, reply.body
    assert reply.content_type == "application/xml; charset=utf-8"
    got = spec.parse_soap(reply.body)
    assert got.root_tag == "HPCServer2008_WebAPI_MessageArray"
    (resp,) = got.responses
    assert resp.action == spec.ECHO_REPLY_ACTION
    assert resp.relates_to == mid
    assert resp.to == ANON
    assert resp.request_action == spec.ECHO_ACTION
    assert resp.userdata == "row-1"
    assert resp.callback_id == "cb-7"
    assert resp.result_text() == "CN01:hello"
    must = f"{{{spec.NS_SOAP}}}mustUnderstand"
    header = resp.element.find(f"{{{spec.NS_SOAP}}}Header")
    assert header is not None
    for name in ("Action", "To"):
        el = header.find(f"{{{spec.NS_WSA}}}{name}")
        assert el is not None
        assert el.get(must) == "1", name
    eor = got.envelopes[-1]
    assert eor.is_eor
    assert eor.callback_id == "cb-7"
    assert eor.to == ANON
    assert got.eor == (1, "Success")


async def test_generic_operation_via_soap(wire, spec):
    sid = await wire.session()
    env = spec.generic_envelope("payload", userdata="g")
    sent = await wire.send(sid, "b1", spec.soap_array(env), generic=False, commit=True)
    assert sent.status == 201, sent.body
    await wire.wait_status(sid, "b1", 3)
    got = await wire.soap_responses(sid, "b1")
    (resp,) = got.responses
    assert resp.action == spec.GENERIC_REPLY_ACTION
    assert resp.request_action == spec.GENERIC_REQUEST_ACTION
    assert resp.result_text("GenericOperation", spec.NS_GENERIC) == "CN01 (GenericService): payload"


async def test_soap_request_answered_in_generic_framing_and_back(wire, spec):
    """§3.4: genericservice=true converts between the text framing and SOAP messages."""
    sid = await wire.session()
    await wire.send_ok(sid, "b1", ("txt", "t"), commit=True)
    await wire.wait_status(sid, "b1", 3)
    got = await wire.soap_responses(sid, "b1")
    (resp,) = got.responses
    assert resp.userdata == "t"
    assert resp.request_action == spec.GENERIC_REQUEST_ACTION
    assert resp.result_text("GenericOperation", spec.NS_GENERIC) == "CN01 (GenericService): txt"


async def test_xml_special_characters_round_trip(wire, spec):
    sid = await wire.session()
    env = spec.echo_envelope("a &lt;b&gt; &amp; &quot;c&quot;", userdata="x&amp;y")
    assert (
        await wire.send(sid, "b1", spec.soap_array(env), generic=False, commit=True)
    ).status == 201
    await wire.send_ok(sid, "b2", ("<x> & </x>", "<u>"), commit=True)
    await wire.wait_status(sid, "b1", 3)
    await wire.wait_status(sid, "b2", 3)
    (resp,) = (await wire.soap_responses(sid, "b1")).responses
    assert resp.result_text() == 'CN01:a <b> & "c"'
    assert resp.userdata == "x&y"
    got = await wire.generic_responses(sid, "b2")
    assert got.records == [spec.echo_record("<x> & </x>", "<u>")]


async def test_unknown_action_becomes_fault_response(wire, spec):
    """§4.4: an action the service lacks → a fault *response* later, counted in EOR."""
    mid = "urn:uuid:0b6d3c2e-39f7-4d1e-9f0e-5a1d2a7c0009"
    sid = await wire.session()
    env = spec.soap_envelope(
        "http://tempuri.org/IEchoSvc/NoSuchOp",
        '<NoSuchOp xmlns="http://tempuri.org/"/>',
        message_id=mid,
        userdata="bad",
    )
    ok = spec.echo_envelope("fine", userdata="good")
    sent = await wire.send(sid, "b1", spec.soap_array(env, ok), generic=False, commit=True)
    assert sent.status == 201, sent.body
    await wire.wait_status(sid, "b1", 3)
    got = await wire.soap_responses(sid, "b1")
    by_user = {e.userdata: e for e in got.responses}
    assert set(by_user) == {"bad", "good"}
    assert by_user["bad"].is_fault
    assert by_user["bad"].relates_to == mid
    assert by_user["good"].result_text() == "CN01:fine"
    assert got.eor == (2, "Success")


async def test_clientdata_empty_gives_empty_callback_header(wire, spec):
    sid = await wire.session()
    body = spec.soap_array(spec.echo_envelope("x", userdata="1"))
    assert (await wire.send(sid, "b1", body, generic=False, commit=True)).status == 201
    await wire.wait_status(sid, "b1", 3)
    got = await wire.soap_responses(sid, "b1", clientdata="")
    assert [e.callback_id for e in got.envelopes] == ["", ""]


async def test_clientdata_is_echoed_unescaped(wire, spec):
    sid = await wire.session()
    body = spec.soap_array(spec.echo_envelope("x", userdata="1"))
    assert (await wire.send(sid, "b1", body, generic=False, commit=True)).status == 201
    await wire.wait_status(sid, "b1", 3)
    got = await wire.soap_responses(sid, "b1", clientdata=quote("id 42/&x", safe=""))
    assert [e.callback_id for e in got.envelopes] == ["id 42/&x", "id 42/&x"]


async def test_action_filter(wire, spec):
    """§4.6: only responses whose *request* action equals ``action`` (ordinal, case-sensitive)."""
    sid = await wire.session()
    envs = [spec.echo_envelope(f"e{i}", userdata=f"e{i}") for i in range(3)]
    envs += [spec.generic_envelope(f"g{i}", userdata=f"g{i}") for i in range(2)]
    sent = await wire.send(sid, "b1", spec.soap_array(*envs), generic=False, commit=True)
    assert sent.status == 201, sent.body
    await wire.wait_status(sid, "b1", 3)

    echo = await wire.soap_responses(sid, "b1", action=quote(spec.ECHO_ACTION, safe=""))
    assert sorted(e.userdata or "" for e in echo.responses) == ["e0", "e1", "e2"]
    assert all(e.request_action == spec.ECHO_ACTION for e in echo.responses)
    assert echo.eor == (3, "Success")

    generic = await wire.soap_responses(
        sid, "b1", action=quote(spec.GENERIC_REQUEST_ACTION, safe="")
    )
    assert sorted(e.userdata or "" for e in generic.responses) == ["g0", "g1"]
    assert generic.eor == (2, "Success")

    wrong_case = await wire.soap_responses(
        sid, "b1", action=quote("http://tempuri.org/iechosvc/echo", safe="")
    )
    assert wrong_case.responses == []
    assert wrong_case.eor == (0, "Success")


# --- count, paging, cumulative EndOfResponses.Count (§4.6 rules 2–4, G7) ----------------------


async def test_count_paging_with_cumulative_eor_count(wire, spec):
    sid = await wire.session()
    await wire.send_ok(sid, "b1", *[(f"m{i}", f"u{i}") for i in range(5)], commit=True)
    await wire.wait_status(sid, "b1", 3)
    p1 = await wire.generic_responses(sid, "b1", count=2, reset=True)
    assert (len(p1.records), p1.eor) == (2, None)
    p2 = await wire.generic_responses(sid, "b1", count=2, reset=False)
    assert (len(p2.records), p2.eor) == (2, None)
    p3 = await wire.generic_responses(sid, "b1", count=2, reset=False)
    assert len(p3.records) == 1
    assert p3.eor == (5, "Success")  # cumulative since the last reset=true, not this body's 1
    seen = p1.userdata + p2.userdata + p3.userdata
    assert sorted(seen) == [f"u{i}" for i in range(5)]


async def test_count_reached_exactly_when_complete_gives_eor(wire):
    sid = await wire.session()
    await wire.send_ok(sid, "b1", ("a", "1"), ("b", "2"), commit=True)
    await wire.wait_status(sid, "b1", 3)
    got = await wire.generic_responses(sid, "b1", count=2, reset=True)
    assert len(got.records) == 2
    assert got.eor == (2, "Success")


async def test_count_reached_before_completion_ends_without_eor(wire):
    """§4.6 rule 2a: count reached, batch not complete → the body simply ends, no EOR."""
    sid = await wire.session()
    await wire.send_ok(sid, "b1", ("a", "1"), ("b", "2"), ("c", "3"))
    got = await wire.generic_responses(sid, "b1", count=2, reset=True)
    assert len(got.records) == 2
    assert got.eor is None


async def test_count_reached_before_completion_soap_is_well_formed(wire, spec):
    sid = await wire.session()
    body = spec.soap_array(*[spec.echo_envelope(str(i), userdata=str(i)) for i in range(3)])
    assert (await wire.send(sid, "b1", body, generic=False)).status == 200
    got = await wire.soap_responses(sid, "b1", count=2, reset=True)
    assert len(got.responses) == 2
    assert got.eor is None


@pytest.mark.parametrize("count", ["0", "-2", "-100"])
async def test_invalid_count_is_400_argument_error(wire, spec, count):
    sid = await wire.session()
    await wire.send_ok(sid, "b1", ("a", "1"), commit=True)
    reply = await wire.responses(sid, "b1", count=count)
    reply.expect(400, spec.ARGUMENT_ERROR)
    reply = await wire.responses(sid, "b1", count=count, accept="application/json")
    assert reply.expect(400, spec.ARGUMENT_ERROR).fmt == "json"


@pytest.mark.parametrize("count", ["abc", "1.5", "one"])
async def test_unparseable_count_is_400(wire, count):
    sid = await wire.session()
    await wire.send_ok(sid, "b1", ("a", "1"), commit=True)
    (await wire.responses(sid, "b1", count=count)).expect(400)


async def test_unparseable_reset_is_400(wire):
    sid = await wire.session()
    await wire.send_ok(sid, "b1", ("a", "1"), commit=True)
    (await wire.responses(sid, "b1", reset="maybe")).expect(400)


async def test_defaults_count_all_reset_false(wire, spec):
    """G5: count defaults to -1 and reset to false."""
    sid = await wire.session()
    await wire.send_ok(sid, "b1", ("a", "1"), ("b", "2"), commit=True)
    await wire.wait_status(sid, "b1", 3)
    path = f"/session/{sid}/batch/b1/Response"
    first = await wire.request("POST", path, "genericservice=true")
    assert first.status == 200, first.body
    got = spec.parse_generic(first.body)
    assert sorted(got.userdata) == ["1", "2"]
    assert got.eor == (2, "Success")
    # reset=false by default: acknowledged, nothing is delivered again.
    second = await wire.request("POST", path, "genericservice=true")
    got = spec.parse_generic(second.body)
    assert got.records == []
    assert got.eor == (2, "Success")


async def test_complete_batch_with_nothing_left_is_eor_alone(wire, spec):
    """§4.6 rule 4: the body consists of the EndOfResponses record alone."""
    sid = await wire.session()
    assert (await wire.commit(sid, "b1")).status == 201
    reply = await wire.responses(sid, "b1")
    assert reply.status == 200
    assert reply.body == spec.eor_record(0) + b"\x00"


async def test_accept_json_does_not_change_stream_body(wire, spec):
    """§2.5: Accept: application/json affects error bodies only."""
    sid = await wire.session()
    await wire.send_ok(sid, "b1", ("a", "1"), commit=True)
    await wire.wait_status(sid, "b1", 3)
    reply = await wire.responses(sid, "b1", accept="application/json")
    assert reply.status == 200
    assert reply.content_type == "application/octet-stream"
    assert reply.body == spec.echo_record("a", "1") + b"\x00" + spec.eor_record(1) + b"\x00"


# --- cursor, acknowledgement, reset (§3.3, §4.6, G10) -----------------------------------------


async def test_interactive_reset_false_acknowledges_previous_page(wire):
    sid = await wire.session()
    await wire.send_ok(sid, "b1", ("a", "1"), ("b", "2"), ("c", "3"), commit=True)
    await wire.wait_status(sid, "b1", 3)
    a = await wire.generic_responses(sid, "b1", count=2, reset=True)
    assert (len(a.records), a.eor) == (2, None)
    b = await wire.generic_responses(sid, "b1", count=-1, reset=False)
    assert len(b.records) == 1
    assert set(b.userdata).isdisjoint(a.userdata)
    assert b.eor == (3, "Success")
    # reset=true rewinds to the oldest unacknowledged response: only b's one.
    c = await wire.generic_responses(sid, "b1", count=-1, reset=True)
    assert c.records == b.records
    assert c.eor == (1, "Success")
    d = await wire.generic_responses(sid, "b1", count=-1, reset=False)
    assert d.records == []
    assert d.eor == (1, "Success")
    e = await wire.generic_responses(sid, "b1", count=-1, reset=True)
    assert e.records == []
    assert e.eor == (0, "Success")


async def test_interactive_reset_true_redelivers_unacknowledged(wire):
    sid = await wire.session()
    await wire.send_ok(sid, "b1", ("a", "1"), ("b", "2"), commit=True)
    await wire.wait_status(sid, "b1", 3)
    x = await wire.generic_responses(sid, "b1", reset=True)
    y = await wire.generic_responses(sid, "b1", reset=True)
    assert sorted(x.records) == sorted(y.records)
    assert len(x.records) == 2
    assert x.eor == y.eor == (2, "Success")
    z = await wire.generic_responses(sid, "b1", reset=False)
    assert z.records == []
    assert z.eor == (2, "Success")
    w = await wire.generic_responses(sid, "b1", reset=True)
    assert (w.records, w.eor) == ([], (0, "Success"))


async def test_durable_reset_true_replays_from_first(wire):
    sid = await wire.session(durable=True)
    await wire.send_ok(sid, "b1", ("a", "1"), ("b", "2"), ("c", "3"), commit=True)
    await wire.wait_status(sid, "b1", 3)
    x = await wire.generic_responses(sid, "b1", count=1, reset=True)
    assert (len(x.records), x.eor) == (1, None)
    y = await wire.generic_responses(sid, "b1", count=-1, reset=False)
    assert len(y.records) == 2
    assert y.eor == (3, "Success")
    z = await wire.generic_responses(sid, "b1", count=-1, reset=False)
    assert (z.records, z.eor) == ([], (3, "Success"))
    replay = await wire.generic_responses(sid, "b1", count=-1, reset=True)
    assert sorted(replay.userdata) == ["1", "2", "3"]
    assert replay.eor == (3, "Success")
    again = await wire.generic_responses(sid, "b1", count=-1, reset=True)
    assert sorted(again.records) == sorted(replay.records)


# --- streams ended by purge, close, a newer call (§4.3, §4.8, G25) ----------------------------


@pytest.mark.parametrize("ender", ["purge", "close"])
async def test_purge_or_close_ends_open_stream_with_client_purged(wire, spec, ender):
    sid = await wire.session()
    await wire.send_ok(sid, "b1", ("a", "1"))
    async with wire.open_responses(sid, "b1", count=-1, reset=True) as stream:
        await stream.read_records(1)
        await stream.assert_quiet(0.2)
        reply = await (wire.purge(sid, "b1") if ender == "purge" else wire.close(sid))
        assert reply.status == 200, reply.body
        body = await stream.read_to_eof()
    got = spec.parse_generic(body)
    assert got.userdata == ["1"]
    assert got.eor == (1, "ClientPurged")


async def test_purge_ends_open_soap_stream_with_client_purged(wire, spec):
    sid = await wire.session()
    body = spec.soap_array(spec.echo_envelope("a", userdata="1"))
    assert (await wire.send(sid, "b1", body, generic=False)).status == 200
    async with wire.open_responses(
        sid, "b1", generic=False, count=-1, reset=True, clientdata="cd"
    ) as stream:
        await stream.read_envelopes(1)
        assert (await wire.purge(sid, "b1")).status == 200
        raw = await stream.read_to_eof()
    got = spec.parse_soap(raw)
    assert [e.userdata for e in got.responses] == ["1"]
    assert got.eor == (1, "ClientPurged")
    assert got.envelopes[-1].callback_id == "cd"


async def test_purge_ends_stream_of_processing_batch(start_server, http, spec):
    server = await start_server(latency_ms=2000)
    w = spec.Wire(http, server.base_url)
    sid = await w.session()
    await w.send_ok(sid, "b1", ("slow", "s"), commit=True)
    async with w.open_responses(sid, "b1", count=-1, reset=True) as stream:
        await stream.assert_quiet(0.2)
        assert await w.status_value(sid, "b1") == 2
        assert (await w.purge(sid, "b1")).status == 200
        body = await stream.read_to_eof()
    assert body == spec.eor_record(0, "ClientPurged") + b"\x00"


async def test_newer_get_responses_ends_older_stream_without_marker(wire, spec):
    """G25 [PROPOSAL]: a new Get Responses on a batch ends the older stream, no EOR."""
    sid = await wire.session()
    await wire.send_ok(sid, "b1", ("a", "1"))
    async with wire.open_responses(sid, "b1", count=-1, reset=True) as older:
        await older.read_records(1)
        async with wire.open_responses(sid, "b1", count=-1, reset=True) as newer:
            old_body = await older.read_to_eof()
            assert old_body == spec.echo_record("a", "1") + b"\x00"  # clean end, no marker
            # reset=true: the unacknowledged response is delivered again on the new stream.
            assert (await newer.read_records(1))[0] == spec.echo_record("a", "1")
            await newer.assert_quiet(0.2)
            assert (await wire.commit(sid, "b1")).status == 201
            new_body = await newer.read_to_eof()
    got = spec.parse_generic(new_body)
    assert got.eor == (1, "Success")


async def test_newer_get_responses_ends_older_soap_stream_well_formed(wire, spec):
    sid = await wire.session()
    body = spec.soap_array(spec.echo_envelope("a", userdata="1"))
    assert (await wire.send(sid, "b1", body, generic=False)).status == 200
    async with wire.open_responses(sid, "b1", generic=False, reset=True) as older:
        await older.read_envelopes(1)
        async with wire.open_responses(sid, "b1", generic=False, reset=True) as newer:
            raw = await older.read_to_eof()
            await newer.read_envelopes(1)
    got = spec.parse_soap(raw)
    assert [e.userdata for e in got.responses] == ["1"]
    assert got.eor is None


async def test_streams_on_other_batches_are_unaffected(wire, spec):
    sid = await wire.session()
    await wire.send_ok(sid, "b1", ("a", "1"))
    await wire.send_ok(sid, "b2", ("b", "2"))
    async with wire.open_responses(sid, "b2", reset=True) as keep:
        await keep.read_records(1)
        assert (await wire.purge(sid, "b1")).status == 200
        async with wire.open_responses(sid, "b1", reset=True) as other:
            await other.assert_quiet(0.1)
        await keep.assert_quiet(0.2)
        assert (await wire.commit(sid, "b2")).status == 201
        body = await keep.read_to_eof()
    assert spec.parse_generic(body).eor == (1, "Success")


async def test_clientdata_change_does_not_acknowledge(wire):
    """§4.6 [PROPOSAL]: one cursor per batch; clientdata is only echoed."""
    sid = await wire.session()
    await wire.send_ok(sid, "b1", ("a", "1"), ("b", "2"), commit=True)
    await wire.wait_status(sid, "b1", 3)
    first = await wire.generic_responses(sid, "b1", count=1, reset=True, clientdata="A")
    assert len(first.records) == 1
    again = await wire.generic_responses(sid, "b1", count=-1, reset=True, clientdata="B")
    assert sorted(again.userdata) == ["1", "2"]
    assert again.eor == (2, "Success")


async def test_finite_count_waits_for_later_responses_then_ends_without_eor(wire, spec):
    """§4.6 rule 2a on a live stream: count=3 waits for the 3rd response, then ends."""
    sid = await wire.session()
    await wire.send_ok(sid, "b1", ("a", "1"))
    async with wire.open_responses(sid, "b1", count=3, reset=True) as stream:
        await stream.read_records(1)
        await stream.assert_quiet(0.3)
        await wire.send_ok(sid, "b1", ("b", "2"), ("c", "3"), ("d", "4"))
        body = await stream.read_to_eof()
    got = spec.parse_generic(body)
    assert len(got.records) == 3
    assert got.eor is None
    rest = await wire.generic_responses(sid, "b1", count=1, reset=False)
    assert len(rest.records) == 1
    assert set(rest.userdata).isdisjoint(got.userdata)


async def test_purged_processing_batch_does_not_leak_into_reused_name(start_server, http, spec):
    """§4.8: Purge deletes queued requests; the reused name starts fresh (§3.2)."""
    server = await start_server(latency_ms=600)
    w = spec.Wire(http, server.base_url)
    sid = await w.session()
    await w.send_ok(sid, "b1", ("old", "old"), commit=True)
    assert (await w.purge(sid, "b1")).status == 200
    await w.send_ok(sid, "b1", ("new", "new"), commit=True)
    await w.wait_status(sid, "b1", 3, timeout=0.6 + spec.PROMPT)
    await asyncio.sleep(0.7)  # the purged request would have completed by now
    got = await w.generic_responses(sid, "b1", reset=True)
    assert got.userdata == ["new"]
    assert got.eor == (1, "Success")
