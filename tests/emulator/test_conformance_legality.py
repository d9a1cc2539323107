"""Conformance: every cell of the §5.2 batch legality matrix.

Rows: Send (commit=false), Send (commit=true), Commit, Get Responses, Status, Purge.
Columns: absent, Ready, Processing, Finished, Disconnected.

* Processing needs requests that stay pending: a server with ``latency_ms`` = ``SLOW_MS``.
* Disconnected is reached with a short ``client_idle_timeout_ms``: a Ready batch whose only
  request was answered, with an open Get Responses stream, which receives EndOfResponses with
  reason ``ClientTimeout`` when the batch times out (§5.2 Timeouts). The call under test follows
  immediately, inside the tombstone period of one ClientIdleTimeout ([PROPOSAL] §5.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

SLOW_MS = 1000
IDLE_MS = 600

OPS = ["send", "send_commit", "commit", "responses", "status", "purge"]
STATES = ["absent", "ready", "processing", "finished", "disconnected"]

FLUSH_REJECTED = 16777242
EOM_REJECT_END_REQUESTS = 16777241
EOM_REJECTED = 16777227
CLIENT_TIMEOUT = 67108867


@dataclass
class Batch:
    w: Any
    spec: Any
    sid: int
    name: str = "b1"
    prior: int = 0  # requests already in the batch


async def _reach(state: str, start_server, http, spec) -> Batch:
    if state == "processing":
        server = await start_server(latency_ms=SLOW_MS)
    elif state == "disconnected":
        server = await start_server(client_idle_timeout_ms=IDLE_MS)
    else:
        server = await start_server()
    w = spec.Wire(http, server.base_url)
    sid = await w.session()
    b = Batch(w, spec, sid)
    if state == "absent":
        return b
    b.prior = 1
    if state == "ready":
        await w.send_ok(sid, b.name, ("r0", "u0"))
        assert await w.status_value(sid, b.name) == 1
    elif state == "processing":
        await w.send_ok(sid, b.name, ("r0", "u0"), commit=True)
        assert await w.status_value(sid, b.name) == 2
    elif state == "finished":
        await w.send_ok(sid, b.name, ("r0", "u0"), commit=True)
        await w.wait_status(sid, b.name, 3)
    else:
        await w.send_ok(sid, b.name, ("r0", "u0"))
        async with w.open_responses(sid, b.name, count=-1, reset=True) as stream:
            body = await stream.read_to_eof(timeout=IDLE_MS / 1000 + spec.PROMPT)
        got = spec.parse_generic(body)
        assert got.userdata == ["u0"]
        assert got.eor == (1, "ClientTimeout"), body
    return b


async def _call(b: Batch, op: str) -> Any:
    w, spec = b.w, b.spec
    if op == "send":
        return await w.send(b.sid, b.name, spec.generic_body(("new", "n1")))
    if op == "send_commit":
        return await w.send(b.sid, b.name, spec.generic_body(("new", "n1")), commit=True)
    if op == "commit":
        return await w.commit(b.sid, b.name)
    if op == "status":
        return await w.status(b.sid, b.name)
    if op == "purge":
        return await w.purge(b.sid, b.name)
    raise AssertionError(op)


async def _final_userdata(b: Batch) -> tuple[list[str], tuple[int, str] | None]:
    """Wait until the batch is Finished and read everything (reset=true)."""
    await b.w.wait_status(b.sid, b.name, 3, timeout=SLOW_MS / 1000 + b.spec.PROMPT)
    got = await b.w.generic_responses(b.sid, b.name, reset=True)
    return sorted(got.userdata), got.eor


async def _assert_absent(b: Batch) -> None:
    """After Purge: the name is free and comes back empty and Ready."""
    assert await b.w.status_value(b.sid, b.name) == 1
    assert (await b.w.commit(b.sid, b.name)).status == 201
    got = await b.w.generic_responses(b.sid, b.name, reset=True)
    assert (got.records, got.eor) == ([], (0, "Success"))


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("op", OPS)
async def test_legality_matrix(start_server, http, spec, op, state):
    b = await _reach(state, start_server, http, spec)
    w = b.w

    if op == "responses":
        await _responses_cell(b, state)
        return

    reply = await _call(b, op)

    if state == "disconnected":
        if op == "status":
            assert (reply.status, reply.body) == (200, b"0")  # Unknown
        elif op == "purge":
            assert (reply.status, reply.body) == (200, b"")
        else:
            reply.expect(400, CLIENT_TIMEOUT)
        return

    if op == "status":
        expected = {"absent": b"1", "ready": b"1", "processing": b"2", "finished": b"3"}[state]
        assert (reply.status, reply.body) == (200, expected)
        return

    if op == "purge":
        assert (reply.status, reply.body) == (200, b"")
        await _assert_absent(b)
        return

    if op == "send":
        if state in ("absent", "ready"):
            assert (reply.status, reply.body) == (200, b"")
            assert await w.status_value(b.sid, b.name) == 1
            assert (await w.commit(b.sid, b.name)).status == 201
            users, eor = await _final_userdata(b)
            assert users == (["n1"] if state == "absent" else ["n1", "u0"])
            assert eor == (len(users), "Success")
        else:
            reply.expect(400, FLUSH_REJECTED)
            users, _ = await _final_userdata(b)
            assert users == ["u0"]  # nothing from the rejected call was added
        return

    if op == "send_commit":
        if state in ("absent", "ready"):
            assert (reply.status, reply.body) == (201, b"")
            users, eor = await _final_userdata(b)
            assert users == (["n1"] if state == "absent" else ["n1", "u0"])
            assert eor == (len(users), "Success")
        else:
            code = EOM_REJECT_END_REQUESTS if state == "processing" else EOM_REJECTED
            reply.expect(400, code)
            users, _ = await _final_userdata(b)
            assert users == ["u0"]
        return

    assert op == "commit"
    if state == "absent":
        assert (reply.status, reply.body) == (201, b"")
        assert await w.status_value(b.sid, b.name) == 3  # empty batch → Finished at once
        users, eor = await _final_userdata(b)
        assert (users, eor) == ([], (0, "Success"))
    elif state == "ready":
        assert (reply.status, reply.body) == (201, b"")
        assert await w.status_value(b.sid, b.name) in (2, 3)
        users, eor = await _final_userdata(b)
        assert (users, eor) == (["u0"], (1, "Success"))
    else:
        code = EOM_REJECT_END_REQUESTS if state == "processing" else EOM_REJECTED
        reply.expect(400, code)
        users, eor = await _final_userdata(b)
        assert (users, eor) == (["u0"], (1, "Success"))


async def _responses_cell(b: Batch, state: str) -> None:
    w, spec = b.w, b.spec
    if state == "disconnected":
        reply = await w.responses(b.sid, b.name)
        reply.expect(400, CLIENT_TIMEOUT)
        return
    async with w.open_responses(b.sid, b.name, count=-1, reset=True) as stream:
        resp = await stream.started()
        assert resp.status == 200
        if state == "absent":
            await stream.assert_quiet(0.3)  # creates the batch; the stream waits
            assert await w.status_value(b.sid, b.name) == 1
            return
        if state == "ready":
            recs = await stream.read_records(1)
            assert recs == [spec.echo_record("r0", "u0")]
            await stream.assert_quiet(0.3)  # streams what is available, then waits
            return
        # processing / finished: streams (remaining), then EndOfResponses when done.
        body = await stream.read_to_eof(timeout=SLOW_MS / 1000 + spec.PROMPT)
    got = spec.parse_generic(body)
    assert got.records == [spec.echo_record("r0", "u0")]
    assert got.eor == (1, "Success")


async def test_disconnected_status_xml_is_unknown(start_server, http, spec):
    b = await _reach("disconnected", start_server, http, spec)
    reply = await b.w.status(b.sid, b.name, accept=None)
    assert reply.status == 200
    assert reply.body == (
        b'<BrokerClientStatus xmlns="http://hpc.microsoft.com">Unknown</BrokerClientStatus>'
    )


async def test_commit_twice_second_is_end_requests_or_eom_rejected(start_server, http, spec):
    """§5.2 summary: commit twice → fault on the second (which one depends on the state)."""
    server = await start_server(latency_ms=SLOW_MS)
    w = spec.Wire(http, server.base_url)
    sid = await w.session()
    await w.send_ok(sid, "b1", ("x", "u"))
    assert (await w.commit(sid, "b1")).status == 201
    (await w.commit(sid, "b1")).expect(400, EOM_REJECT_END_REQUESTS)
    await w.wait_status(sid, "b1", 3, timeout=SLOW_MS / 1000 + spec.PROMPT)
    (await w.commit(sid, "b1")).expect(400, EOM_REJECTED)
