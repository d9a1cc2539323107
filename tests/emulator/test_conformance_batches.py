"""Conformance: Send Requests, Commit, Get Request Status, Purge (§3.2, §3.3, §4.4–§4.8).

Includes batch-name validation, ownership (403), MaxMessageSize, the request-body limit,
duplicate MessageIDs and the HPCPack2008_* header spellings.
"""

from __future__ import annotations

import pytest

BATCH_OPS = ["send", "send-commit", "commit", "responses", "status", "purge"]


async def _batch_call(w, spec, op, sid, batch):
    """One call of a batch operation; ``batch`` is already percent-encoded."""
    b = f"/session/{sid}/batch/{batch}"
    if op == "send":
        return await w.request(
            "POST",
            b,
            "genericservice=true&commit=false",
            body=spec.generic_body(("x", "u")),
            content_type="application/octet-stream",
        )
    if op == "send-commit":
        return await w.request(
            "POST",
            b,
            "genericservice=true&commit=true",
            body=spec.generic_body(("x", "u")),
            content_type="application/octet-stream",
        )
    if op == "commit":
        return await w.request("POST", f"{b}/Commit")
    if op == "responses":
        # count=1 on an empty batch would wait; the tests using this only expect errors.
        return await w.request("POST", f"{b}/Response", "genericservice=true&count=1&reset=true")
    if op == "status":
        return await w.request("GET", f"{b}/Status")
    assert op == "purge"
    return await w.request("POST", f"{b}/Purge")


# --- Send / Commit ----------------------------------------------------------------------------


async def test_send_200_then_commit_201(wire, spec):
    sid = await wire.session()
    r = await wire.send(sid, "b1", spec.generic_body(("a", "1"), ("b", "2")))
    assert (r.status, r.body) == (200, b"")
    r = await wire.send(sid, "b1", spec.generic_body(("c", "3")))
    assert (r.status, r.body) == (200, b"")
    assert await wire.status_value(sid, "b1") == 1  # G9: Ready until Commit
    r = await wire.commit(sid, "b1")
    assert (r.status, r.body) == (201, b"")
    await wire.wait_status(sid, "b1", 3)
    got = await wire.generic_responses(sid, "b1")
    assert sorted(got.records) == sorted(
        spec.echo_record(t, u) for t, u in [("a", "1"), ("b", "2"), ("c", "3")]
    )
    assert got.eor == (3, "Success")


async def test_send_commit_true_201(wire, spec):
    sid = await wire.session()
    r = await wire.send(sid, "b1", spec.generic_body(("a", "1")), commit=True)
    assert (r.status, r.body) == (201, b"")
    await wire.wait_status(sid, "b1", 3)


async def test_send_defaults_commit_false_and_not_generic(wire, spec):
    """§4.4/G5: commit defaults to false; genericservice defaults to false (SOAP body)."""
    sid = await wire.session()
    r = await wire.request(
        "POST",
        f"/session/{sid}/batch/b1",
        body=spec.soap_array(spec.echo_envelope("hi", userdata="d")),
        content_type="application/octet-stream",
    )
    assert r.status == 200, r.body
    assert await wire.status_value(sid, "b1") == 1
    assert (await wire.commit(sid, "b1")).status == 201
    await wire.wait_status(sid, "b1", 3)
    got = await wire.soap_responses(sid, "b1")
    assert [e.result_text() for e in got.responses] == ["CN01:hi"]


async def test_send_chunked_and_fixed_length(wire, spec):
    """§4.4: chunked (the .NET client) and Content-Length bodies are both accepted."""
    sid = await wire.session()
    data = spec.generic_body(*[(f"in{i}", f"u{i}") for i in range(20)])

    async def chunks():
        for i in range(0, len(data), 7):  # split inside separators and terminators
            yield data[i : i + 7]

    r = await wire.send(sid, "b1", chunks())
    assert r.status == 200, r.body
    r = await wire.send(sid, "b1", spec.generic_body(("fixed", "uf")), commit=True)
    assert r.status == 201, r.body
    await wire.wait_status(sid, "b1", 3)
    got = await wire.generic_responses(sid, "b1")
    assert len(got.records) == 21
    assert set(got.userdata) == {f"u{i}" for i in range(20)} | {"uf"}


async def test_send_empty_userdata_and_unicode(wire, spec):
    sid = await wire.session()
    await wire.send_ok(sid, "b1", ("", ""), ("grüße 世界", ""), ("x", "ü"), commit=True)
    await wire.wait_status(sid, "b1", 3)
    got = await wire.generic_responses(sid, "b1")
    assert sorted(got.records) == sorted(
        [spec.echo_record("", ""), spec.echo_record("grüße 世界", ""), spec.echo_record("x", "ü")]
    )


async def test_send_empty_body(wire, spec):
    """§4.4 [PROPOSAL]: an empty body is allowed; with commit=true it behaves like Commit."""
    sid = await wire.session()
    r = await wire.send(sid, "b1", b"")
    assert r.status == 200, r.body
    r = await wire.send(sid, "b1", b"", commit=True)
    assert r.status == 201, r.body
    await wire.wait_status(sid, "b1", 3)
    got = await wire.generic_responses(sid, "b1")
    assert got.records == []
    assert got.eor == (0, "Success")


async def test_commit_empty_batch_finishes_with_zero(wire):
    """§4.5 [PROPOSAL]: commit on a never-used name → Finished with 0 responses."""
    sid = await wire.session()
    r = await wire.commit(sid, "fresh")
    assert (r.status, r.body) == (201, b"")
    assert await wire.status_value(sid, "fresh") == 3
    got = await wire.generic_responses(sid, "fresh")
    assert (got.records, got.eor) == ([], (0, "Success"))


async def test_batches_are_independent(wire, spec):
    sid = await wire.session()
    await wire.send_ok(sid, "batch1", ("one", "a"), commit=True)
    await wire.send_ok(sid, "batch2", ("two", "b"))
    await wire.wait_status(sid, "batch1", 3)
    assert await wire.status_value(sid, "batch2") == 1
    got = await wire.generic_responses(sid, "batch1")
    assert got.records == [spec.echo_record("one", "a")]


async def test_batch_names_case_insensitive(wire, spec):
    """§3.2: batch names compare case-insensitively."""
    sid = await wire.session()
    await wire.send_ok(sid, "MyBatch", ("x", "u1"))
    await wire.send_ok(sid, "mybatch", ("y", "u2"))
    assert (await wire.commit(sid, "MYBATCH")).status == 201
    await wire.wait_status(sid, "myBATCH", 3)
    got = await wire.generic_responses(sid, "mybatch")
    assert sorted(got.userdata) == ["u1", "u2"]
    assert got.eor == (2, "Success")


# --- Status (§4.7) ----------------------------------------------------------------------------


async def test_status_never_used_is_ready(wire):
    sid = await wire.session()
    json_reply = await wire.status(sid, "unused")
    assert (json_reply.status, json_reply.body) == (200, b"1")
    assert json_reply.content_type == "application/json; charset=utf-8"
    xml_reply = await wire.status(sid, "unused2", accept=None)
    assert (
        xml_reply.body
        == b'<BrokerClientStatus xmlns="http://hpc.microsoft.com">Ready</BrokerClientStatus>'
    )
    assert xml_reply.content_type == "application/xml; charset=utf-8"


async def test_status_processing_json(start_server, http, spec):
    server = await start_server(latency_ms=1500)
    w = spec.Wire(http, server.base_url)
    sid = await w.session()
    await w.send_ok(sid, "b1", ("x", "u"), commit=True)
    reply = await w.status(sid, "b1")
    assert reply.body == b"2"
    await w.wait_status(sid, "b1", 3, timeout=10)


# --- Purge (§4.8) -----------------------------------------------------------------------------


async def test_purge_then_reuse_name_starts_fresh(wire, spec):
    sid = await wire.session()
    await wire.send_ok(sid, "b1", ("old", "o1"), ("old2", "o2"), commit=True)
    await wire.wait_status(sid, "b1", 3)
    r = await wire.purge(sid, "b1")
    assert (r.status, r.body) == (200, b"")
    assert await wire.status_value(sid, "b1") == 1
    await wire.send_ok(sid, "b1", ("new", "n1"), commit=True)
    await wire.wait_status(sid, "b1", 3)
    got = await wire.generic_responses(sid, "b1")
    assert got.records == [spec.echo_record("new", "n1")]
    assert got.eor == (1, "Success")


async def test_purge_ignores_body_and_never_used_name(wire):
    """§4.8: the Java sample sends a 5-byte ``dummy`` body; purging an unused name succeeds."""
    sid = await wire.session()
    r = await wire.purge(sid, "b1", body=b"dummy", content_type="text/plain")
    assert r.status == 200, r.body
    r = await wire.purge(sid, "neverused")
    assert r.status == 200, r.body


async def test_purge_discards_uncommitted_requests(wire):
    sid = await wire.session()
    await wire.send_ok(sid, "b1", ("x", "u"), ("y", "v"))
    assert (await wire.purge(sid, "b1")).status == 200
    assert (await wire.commit(sid, "b1")).status == 201
    got = await wire.generic_responses(sid, "b1")
    assert (got.records, got.eor) == ([], (0, "Success"))


# --- batch-name validation (§3.2, G35) --------------------------------------------------------

BAD_NAMES = {
    "129-chars": "a" * 129,
    "slash": "bad%2Fname",
    "dollar": "a%24b",
    "dot": "a.b",
    "non-ascii": "b%C3%A4tch",
    "colon": "a%3Ab",
}


@pytest.mark.parametrize("op", BATCH_OPS)
@pytest.mark.parametrize("name", list(BAD_NAMES.values()), ids=list(BAD_NAMES))
async def test_invalid_batch_name_400_argument_error(wire, spec, op, name):
    sid = await wire.session()
    reply = await _batch_call(wire, spec, op, sid, name)
    reply.expect(400, spec.ARGUMENT_ERROR)


@pytest.mark.parametrize(
    "name", ["a" * 128, "%7Bx%7D", "a%20b", "a_b-c", "DEFAULTBATCHID", "0"], ids=str
)
async def test_valid_batch_names(wire, spec, name):
    sid = await wire.session()
    r = await wire.request(
        "POST",
        f"/session/{sid}/batch/{name}",
        "genericservice=true&commit=true",
        body=spec.generic_body(("v", "u")),
        content_type="application/octet-stream",
    )
    assert r.status == 201, r.body
    r = await wire.request("GET", f"/session/{sid}/batch/{name}/Status", accept="application/json")
    assert r.status == 200, r.body


async def test_invalid_batch_name_changes_nothing(wire, spec):
    """G35: validation happens before any state change."""
    sid = await wire.session()
    bad = await wire.request(
        "POST",
        f"/session/{sid}/batch/{'b' * 129}",
        "genericservice=true&commit=true",
        body=spec.generic_body(("v", "u")),
        content_type="application/octet-stream",
    )
    bad.expect(400, spec.ARGUMENT_ERROR)
    # The 128-char prefix is a different, valid, untouched batch.
    assert await wire.status_value(sid, "b" * 128) == 1


# --- ownership (§3.2, §2.4) -------------------------------------------------------------------


@pytest.mark.parametrize("op", BATCH_OPS)
async def test_other_users_batch_is_403(wire, bob, spec, op):
    """§3.2: a batch belongs to its creator; another user gets AccessDenied_BrokerQueue."""
    sid = await wire.session(ShareSession=True)
    await wire.send_ok(sid, "mine", ("x", "u"))
    reply = await _batch_call(bob, spec, op, sid, "mine")
    reply.expect(403, spec.ACCESS_DENIED_BROKER_QUEUE)
    # Alice's batch is untouched.
    assert await wire.status_value(sid, "mine") == 1
    assert (await wire.commit(sid, "mine")).status == 201
    await wire.wait_status(sid, "mine", 3)
    got = await wire.generic_responses(sid, "mine")
    assert got.userdata == ["u"]


# --- MaxMessageSize and body limit (§4.4, G26, G27) -------------------------------------------


async def test_oversized_generic_message_rejects_whole_call(wire, spec):
    sid = await wire.session(MaxMessageSize=1024)
    body = spec.generic_body(("small", "s1"), ("x" * 20000, "big"), ("small2", "s2"))
    reply = await wire.send(sid, "b1", body)
    reply.expect(400)
    # G26: all-or-nothing. Nothing was queued.
    assert await wire.status_value(sid, "b1") == 1
    assert (await wire.commit(sid, "b1")).status == 201
    got = await wire.generic_responses(sid, "b1")
    assert (got.records, got.eor) == ([], (0, "Success"))


async def test_oversized_soap_message_rejects_whole_call(wire, spec):
    sid = await wire.session(MaxMessageSize=1024)
    body = spec.soap_array(
        spec.echo_envelope("small", userdata="s1"),
        spec.echo_envelope("y" * 20000, userdata="big"),
    )
    reply = await wire.send(sid, "b1", body, generic=False, commit=True)
    reply.expect(400)
    assert await wire.status_value(sid, "b1") == 1  # the commit did not happen either
    assert (await wire.commit(sid, "b1")).status == 201
    got = await wire.soap_responses(sid, "b1")
    assert got.responses == []
    assert got.eor == (0, "Success")


async def test_messages_under_max_size_accepted(wire, spec):
    sid = await wire.session(MaxMessageSize=4096)
    await wire.send_ok(sid, "b1", ("z" * 500, "u"), commit=True)
    await wire.wait_status(sid, "b1", 3)


async def test_request_body_of_2_mib_accepted(wire, spec):
    """Issue 3: the request body limit is well above aiohttp's 1 MiB default."""
    sid = await wire.session(MaxMessageSize=2147483647)
    big = "q" * (2 * 1024 * 1024)
    await wire.send_ok(sid, "b1", (big, "big"), commit=True)
    await wire.wait_status(sid, "b1", 3, timeout=10)
    got = await wire.generic_responses(sid, "b1", timeout=20)
    assert got.records == [spec.echo_record(big, "big")]


# --- SOAP input headers (§3.3, §3.5) ----------------------------------------------------------


async def test_duplicate_message_id_dropped_same_call(wire, spec):
    sid = await wire.session()
    env = spec.echo_envelope(
        "dup", message_id="urn:uuid:11111111-2222-3333-4444-555555555555", userdata="d"
    )
    r = await wire.send(sid, "b1", spec.soap_array(env, env), generic=False, commit=True)
    assert r.status == 201, r.body
    await wire.wait_status(sid, "b1", 3)
    got = await wire.soap_responses(sid, "b1")
    assert len(got.responses) == 1
    assert got.eor == (1, "Success")


async def test_duplicate_message_id_dropped_across_calls(wire, spec):
    sid = await wire.session()
    env = spec.echo_envelope(
        "dup", message_id="urn:uuid:aaaaaaaa-2222-3333-4444-555555555555", userdata="d"
    )
    other = spec.echo_envelope("other", userdata="o")
    assert (await wire.send(sid, "b1", spec.soap_array(env), generic=False)).status == 200
    assert (await wire.send(sid, "b1", spec.soap_array(env, other), generic=False)).status == 200
    assert (await wire.commit(sid, "b1")).status == 201
    await wire.wait_status(sid, "b1", 3)
    got = await wire.soap_responses(sid, "b1")
    assert sorted(e.userdata or "" for e in got.responses) == ["d", "o"]
    assert got.eor == (2, "Success")


async def test_same_message_id_in_different_batches_both_answered(wire, spec):
    sid = await wire.session()
    env = spec.echo_envelope("x", message_id="urn:uuid:bbbbbbbb-2222-3333-4444-555555555555")
    for b in ("b1", "b2"):
        assert (
            await wire.send(sid, b, spec.soap_array(env), generic=False, commit=True)
        ).status == 201
    for b in ("b1", "b2"):
        await wire.wait_status(sid, b, 3)
        got = await wire.soap_responses(sid, b)
        assert len(got.responses) == 1


async def test_missing_message_ids_are_generated(wire, spec):
    """§3.3 [PROPOSAL]: envelopes without MessageID get one; they are not duplicates."""
    sid = await wire.session()
    body = spec.soap_array(
        spec.echo_envelope("one", message_id="", userdata="1"),
        spec.echo_envelope("two", message_id="", userdata="2"),
    )
    assert (await wire.send(sid, "b1", body, generic=False, commit=True)).status == 201
    await wire.wait_status(sid, "b1", 3)
    got = await wire.soap_responses(sid, "b1")
    assert sorted(e.userdata or "" for e in got.responses) == ["1", "2"]


@pytest.mark.parametrize("prefix", ["HPCServer2008", "HPCPack2008"])
async def test_client_id_header_mismatch_400(wire, spec, prefix):
    """§3.5 [PROPOSAL]: ClientIdNS different from the URL's batch → 400 (both spellings)."""
    sid = await wire.session()
    body = spec.soap_array(spec.echo_envelope("x", client_id="otherbatch", prefix=prefix))
    reply = await wire.send(sid, "b1", body, generic=False, commit=True)
    reply.expect(400)
    assert await wire.status_value(sid, "b1") == 1


@pytest.mark.parametrize("prefix", ["HPCServer2008", "HPCPack2008"])
async def test_hpc_header_spellings_accepted(wire, spec, prefix):
    """G1: HPCPack2008_* accepted on input (user data, client id, array root).

    Output uses HPCServer2008_*.
    """
    sid = await wire.session()
    body = spec.soap_array(
        spec.echo_envelope("hello", userdata="row-1", client_id="B1", prefix=prefix),
        root=f"{prefix}_WebAPI_MessageArray",
    )
    r = await wire.send(sid, "b1", body, generic=False, commit=True)
    assert r.status == 201, r.body
    await wire.wait_status(sid, "b1", 3)
    got = await wire.soap_responses(sid, "b1")
    assert got.root_tag == "HPCServer2008_WebAPI_MessageArray"
    (env,) = got.responses
    assert env.userdata == "row-1"
    assert env.result_text() == "CN01:hello"


async def test_soap_array_root_of_any_name(wire, spec):
    """§4.4: 'one root element of any name' containing SOAP envelopes."""
    sid = await wire.session()
    body = spec.soap_array(spec.echo_envelope("a", userdata="1"), root="Whatever")
    assert (await wire.send(sid, "b1", body, generic=False, commit=True)).status == 201
    await wire.wait_status(sid, "b1", 3)
    got = await wire.soap_responses(sid, "b1")
    assert [e.userdata for e in got.responses] == ["1"]


async def test_other_users_batch_in_unshared_session_is_403(wire, bob, spec):
    sid = await wire.session()
    await wire.send_ok(sid, "mine", ("x", "u"))
    (await _batch_call(bob, spec, "status", sid, "mine")).expect(403)
    (await _batch_call(bob, spec, "purge", sid, "mine")).expect(403)
    assert await wire.status_value(sid, "mine") == 1
