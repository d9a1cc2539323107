"""Conformance: bad input gets the spec's fault; the server keeps serving; others are unaffected.

Spec §2.7 (400 + HpcWebServiceFault for malformed bodies), §3.6 (generic framing), §3.5/§4.4
(SOAP arrays), §4.1 (WebSessionStartInfo), G26 (all-or-nothing).
"""

from __future__ import annotations

import asyncio
import re

import pytest

ARGUMENT_ERROR = 251723775

BOMB_DTD = (
    '<?xml version="1.0"?>'
    "<!DOCTYPE lolz ["
    '<!ENTITY lol "lol">'
    '<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">'
    '<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">'
    '<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">'
    '<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">'
    '<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">'
    '<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">'
    '<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">'
    "]>"
)
XXE_DTD = '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'


@pytest.fixture
async def bystander(wire, spec):
    """Another session with a batch in flight, checked after the bad input."""
    sid = await wire.session()
    await wire.send_ok(sid, "keep", ("k1", "1"), ("k2", "2"))

    async def check() -> None:
        await wire.send_ok(sid, "keep", ("k3", "3"), commit=True)
        await wire.wait_status(sid, "keep", 3)
        got = await wire.generic_responses(sid, "keep")
        assert sorted(got.userdata) == ["1", "2", "3"]
        assert got.eor == (3, "Success")
        # The server still creates sessions and answers everything else.
        fresh = await wire.session()
        assert await wire.status_value(fresh, "x") == 1

    return check


async def _nothing_queued(wire, sid, batch="b1"):
    assert await wire.status_value(sid, batch) == 1
    assert (await wire.commit(sid, batch)).status == 201
    got = await wire.generic_responses(sid, batch)
    assert (got.records, got.eor) == ([], (0, "Success"))


GENERIC_GARBAGE = {
    "no-separator": b"no separator here\x00",
    "unterminated": b"alpha\xef\xbf\xbfu1",
    "three-fields": b"a\xef\xbf\xbfb\xef\xbf\xbfc\x00",
    "bad-utf8": b"\xff\xfe\xfd\xef\xbf\xbfu\x00",
    "cut-separator": b"alpha\xef\xbf",
    "good-then-garbage": b"alpha\xef\xbf\xbfu1\x00garbage-without-separator\x00",
}


@pytest.mark.parametrize("body", list(GENERIC_GARBAGE.values()), ids=list(GENERIC_GARBAGE))
@pytest.mark.parametrize("commit", [False, True])
async def test_garbage_generic_framing(wire, spec, bystander, body, commit):
    sid = await wire.session()
    reply = await wire.send(sid, "b1", body, commit=commit)
    reply.expect(400)
    await _nothing_queued(wire, sid)
    await bystander()


SOAP_GARBAGE = {
    "not-xml": b"this is not xml at all",
    "truncated": b"<HPCServer2008_WebAPI_MessageArray><s:Envelope xmlns:s=",
    "unclosed-root": b"<HPCServer2008_WebAPI_MessageArray>",
    "bad-utf8": b"<HPCServer2008_WebAPI_MessageArray>\xff\xfe</HPCServer2008_WebAPI_MessageArray>",
    "not-an-envelope": b"<A><B>text</B></A>",
    "two-roots": b"<A></A><B></B>",
}


@pytest.mark.parametrize("body", list(SOAP_GARBAGE.values()), ids=list(SOAP_GARBAGE))
async def test_malformed_soap_body(wire, spec, bystander, body):
    sid = await wire.session()
    reply = await wire.send(sid, "b1", body, generic=False)
    reply.expect(400)
    await _nothing_queued(wire, sid)
    await bystander()


async def test_soap_envelope_without_action(wire, spec, bystander):
    """§3.5: a:Action is required."""
    sid = await wire.session()
    env = (
        f'<s:Envelope xmlns:s="{spec.NS_SOAP}" xmlns:a="{spec.NS_WSA}"><s:Header>'
        "<a:MessageID>urn:uuid:00000000-0000-0000-0000-000000000001</a:MessageID>"
        f'</s:Header><s:Body><Echo xmlns="{spec.NS_TEMPURI}"><input>x</input></Echo></s:Body>'
        "</s:Envelope>"
    )
    good = spec.echo_envelope("fine", userdata="g")
    reply = await wire.send(sid, "b1", spec.soap_array(good, env), generic=False)
    reply.expect(400)
    await _nothing_queued(wire, sid)
    await bystander()


@pytest.mark.parametrize("dtd", [BOMB_DTD, XXE_DTD], ids=["billion-laughs", "xxe"])
async def test_dtd_in_soap_body_rejected(wire, spec, bystander, dtd):
    sid = await wire.session()
    entity = "&lol9;" if "lol9" in dtd else "&xxe;"
    body = (dtd + spec.soap_array(spec.echo_envelope(entity, userdata="u")).decode()).encode()
    reply = await wire.send(sid, "b1", body, generic=False, commit=True)
    reply.expect(400)
    assert b"root:" not in reply.body
    await _nothing_queued(wire, sid)
    await bystander()


@pytest.mark.parametrize("dtd", [BOMB_DTD, XXE_DTD], ids=["billion-laughs", "xxe"])
async def test_dtd_in_create_session_xml_rejected(wire, spec, bystander, dtd):
    entity = "&lol9;" if "lol9" in dtd else "&xxe;"
    body = (
        dtd + '<WebSessionStartInfo xmlns="http://hpc.microsoft.com/">'
        "<MaxMessageSize>65536</MaxMessageSize><Password>s3cret</Password><Runtime>-1</Runtime>"
        f"<ServiceName>CcpEchoSvc{entity}</ServiceName><Username>CONTOSO\\alice</Username>"
        "</WebSessionStartInfo>"
    ).encode()
    reply = await wire.request(
        "POST",
        "/sessions/Create",
        "durable=false",
        body=body,
        content_type="application/xml; charset=utf-8",
    )
    reply.expect(400, ARGUMENT_ERROR)
    assert b"root:" not in reply.body
    await bystander()


@pytest.mark.parametrize(
    "body",
    [
        b'{"MaxMessageSize":65536,"Password":"s3cret","Runtime":-1,"ServiceName":"Ccp',
        b'{"MaxMessageSize":65536,"Password":"\xff\xfe","Runtime":-1}',
        b"<WebSessionStartInfo",
        b"\x00\x01\x02",
    ],
    ids=["truncated-json", "bad-utf8-json", "truncated-xml", "binary"],
)
async def test_malformed_create_session_bodies(wire, bystander, body):
    ctype = "application/xml" if body.startswith(b"<") else "application/json"
    reply = await wire.request(
        "POST",
        "/sessions/Create",
        "durable=false",
        body=body,
        content_type=f"{ctype}; charset=utf-8",
    )
    reply.expect(400, ARGUMENT_ERROR)
    await bystander()


async def test_aborted_upload_queues_nothing(server, wire, spec, bystander):
    """A Send whose body is cut off by the client queues nothing and breaks nothing."""
    sid = await wire.session()
    host, port = server.authority.rsplit(":", 1)
    payload = spec.generic_body(("a", "1"), ("b", "2"))
    head = (
        f"POST /WindowsHPC/HPCLAB/session/{sid}/batch/b1?genericservice=true&commit=true"
        " HTTP/1.1\r\n"
        f"Host: {server.authority}\r\n"
        "api-version: 2011-11-01\r\n"
        f"Authorization: {spec.basic(*spec.ALICE)}\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"Content-Length: {len(payload) + 1000}\r\n\r\n"
    ).encode()
    async with asyncio.timeout(spec.PROMPT):
        _reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(head + payload)
        await writer.drain()
        writer.close()
        await writer.wait_closed()
    await asyncio.sleep(0.2)
    await _nothing_queued(wire, sid)
    await bystander()


async def test_client_dropping_a_stream_does_not_lose_responses(wire, spec, bystander):
    sid = await wire.session()
    await wire.send_ok(sid, "b1", ("a", "1"))
    async with wire.open_responses(sid, "b1", reset=True) as stream:
        await stream.read_records(1)
    # The client went away mid-stream; reset=true still finds the unacknowledged response.
    await wire.send_ok(sid, "b1", ("b", "2"), commit=True)
    await wire.wait_status(sid, "b1", 3)
    got = await wire.generic_responses(sid, "b1", reset=True)
    assert sorted(got.userdata) == ["1", "2"]
    assert got.eor == (2, "Success")
    await bystander()


async def test_garbage_http_does_not_kill_server(server, wire, bystander):
    host, port = server.authority.rsplit(":", 1)
    async with asyncio.timeout(5.0):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"\x16\x03\x01garbage that is not HTTP\r\n\r\n")
        await writer.drain()
        answer = await reader.read(65536)
        writer.close()
        await writer.wait_closed()
    assert answer == b"" or re.match(rb"HTTP/1\.[01] 4\d\d ", answer), answer[:100]
    await bystander()


async def test_no_500_on_odd_but_valid_requests(wire, spec):
    """Odd inputs that are still well-formed get 2xx/4xx, never 5xx."""
    sid = await wire.session()
    assert (await wire.commit(sid, "done")).status == 201
    odd = [
        ("GET", f"/session/{sid}/batch/b1/Status", "unknown=1&genericservice=maybe"),
        ("POST", f"/session/{sid}/batch/done/Response", "count=99999999999999999999"),
        ("GET", "/session/notanumber/batch/b1/Status", None),
        ("GET", "/session/-1/Attach", "durable=false"),
        ("POST", f"/session/{sid}/batch/b1", "genericservice=true&commit=perhaps"),
        ("GET", f"/session/{sid}/batch//Status", None),
    ]
    for method, path, query in odd:
        reply = await wire.request(
            method, path, query, body=b"" if method == "POST" else None, timeout=spec.PROMPT
        )
        assert reply.status < 500, (path, query, reply.status, reply.body)
        if reply.status >= 400:
            reply.fault()
