"""Conformance: Create / Attach / Close Session, JSON and XML, Accept negotiation.

Spec §4.1–§4.3, §5.1.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

NS = "http://hpc.microsoft.com/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SYSTEM = "http://schemas.datacontract.org/2004/07/System"

START_INFO_XML = (
    b'<WebSessionStartInfo xmlns="http://hpc.microsoft.com/" '
    b'xmlns:i="http://www.w3.org/2001/XMLSchema-instance">'
    b"<MaxMessageSize>65536</MaxMessageSize>"
    b"<Password>s3cret</Password>"
    b"<Runtime>-1</Runtime>"
    b"<ServiceName>CcpEchoSvc</ServiceName>"
    b"<Username>CONTOSO\\alice</Username>"
    b"</WebSessionStartInfo>"
)


def _session_info_xml(body: bytes) -> dict[str, str | None]:
    """Parse an XML WebSessionInfo, checking the namespace and the §4.1 member order."""
    root = ET.fromstring(body)
    assert root.tag == f"{{{NS}}}WebSessionInfo", root.tag
    names = [c.tag for c in root]
    assert names == [
        f"{{{NS}}}{n}"
        for n in (
            "BrokerNode",
            "Id",
            "IsDurable",
            "MaxMessageSize",
            "ServiceOperationTimeout",
            "ServiceVersion",
        )
    ], names
    out: dict[str, str | None] = {c.tag.split("}")[1]: c.text for c in root}
    sv = root.find(f"{{{NS}}}ServiceVersion")
    assert sv is not None
    if sv.get(f"{{{XSI}}}nil") == "true":
        out["ServiceVersion"] = None
    return out


async def _create_xml(wire, *, accept, body=START_INFO_XML, durable="false"):
    return await wire.request(
        "POST",
        "/sessions/Create",
        f"durable={durable}",
        body=body,
        content_type="application/xml; charset=utf-8",
        accept=accept,
    )


async def test_create_json_exact_bytes_and_broker_node(server, wire, spec):
    """§4.1: 201, compact JSON in exact key order, BrokerNode = the server's own authority."""
    reply = await wire.create(accept="application/json")
    assert reply.status == 201, reply.body
    assert reply.content_type == "application/json; charset=utf-8"
    sid = json.loads(reply.body)["Id"]
    assert reply.body == spec.session_info_json(server.authority, sid)
    assert server.base_url == f"http://{server.authority}"
    assert server.cluster == "HPCLAB"
    # The Java sample's regex (§4.1) must match.
    assert reply.body.startswith(
        b'{"BrokerNode":"%s","Id":%d,"IsDurable":' % (server.authority.encode(), sid)
    )


async def test_create_default_accept_is_xml(server, wire):
    """§2.5: no Accept → XML WebSessionInfo, members in ordinal order."""
    reply = await wire.create(accept=None)
    assert reply.status == 201, reply.body
    assert reply.content_type == "application/xml; charset=utf-8"
    info = _session_info_xml(reply.body)
    assert info["BrokerNode"] == server.authority
    assert int(info["Id"] or "") > 0
    assert info["IsDurable"] == "false"
    assert info["MaxMessageSize"] == "65536"
    assert info["ServiceOperationTimeout"] == "86400000"
    assert info["ServiceVersion"] is None


async def test_create_xml_body_xml_answer(server, wire):
    reply = await _create_xml(wire, accept="application/xml")
    assert reply.status == 201, reply.body
    info = _session_info_xml(reply.body)
    assert info["BrokerNode"] == server.authority
    assert info["MaxMessageSize"] == "65536"


async def test_create_xml_body_json_answer(server, wire, spec):
    """G36: request and response formats are independent."""
    reply = await _create_xml(wire, accept="application/json")
    assert reply.status == 201, reply.body
    sid = json.loads(reply.body)["Id"]
    assert reply.body == spec.session_info_json(server.authority, sid)


async def test_create_xml_with_nil_members_and_service_version(server, wire, spec):
    """§4.1: full ordinal-order XML with i:nil members, Environments and ServiceVersion."""
    body = (
        b'<WebSessionStartInfo xmlns="http://hpc.microsoft.com/" '
        b'xmlns:i="http://www.w3.org/2001/XMLSchema-instance">'
        b"<AdminJobForHostInDiag>false</AdminJobForHostInDiag>"
        b'<AllocationGrowLoadRatioThreshold i:nil="true"/>'
        b"<CanPreempt>true</CanPreempt>"
        b'<ClientIdleTimeout i:nil="true"/>'
        b'<Environments xmlns:a="http://schemas.microsoft.com/2003/10/Serialization/Arrays">'
        b"<a:KeyValueOfstringstring><a:Key>K</a:Key><a:Value>V</a:Value></a:KeyValueOfstringstring>"
        b"</Environments>"
        b"<MaxMessageSize>131072</MaxMessageSize>"
        b"<Password>s3cret</Password>"
        b"<Priority>2</Priority>"
        b"<Runtime>-1</Runtime>"
        b"<ServiceName>CcpEchoSvc</ServiceName>"
        b"<ServiceOperationTimeout>60000</ServiceOperationTimeout>"
        b'<ServiceVersion i:nil="true" xmlns:a="http://schemas.datacontract.org/2004/07/System"/>'
        b"<ShareSession>false</ShareSession>"
        b"<UseSessionPool>false</UseSessionPool>"
        b"<Username>CONTOSO\\alice</Username>"
        b"</WebSessionStartInfo>"
    )
    reply = await _create_xml(wire, accept="application/json", body=body)
    assert reply.status == 201, reply.body
    data = json.loads(reply.body)
    assert data["MaxMessageSize"] == 131072
    assert data["ServiceOperationTimeout"] == 60000


async def test_create_json_members_echoed(server, wire):
    reply = await wire.create(
        accept="application/json",
        MaxMessageSize=2147483647,
        ServiceOperationTimeout=60000,
        Environments=[{"Key": "K", "Value": "V"}],
        ServiceVersion={"_Build": -1, "_Major": 1, "_Minor": 0, "_Revision": -1},
    )
    assert reply.status == 201, reply.body
    data = json.loads(reply.body)
    assert data["MaxMessageSize"] == 2147483647
    assert data["ServiceOperationTimeout"] == 60000


async def test_create_chunked_body(server, wire):
    """§4.1: the Java/C samples send the Create body with Transfer-Encoding: chunked."""
    payload = json.dumps(wire.start_info()).encode()

    async def gen():
        yield payload[:10]
        yield payload[10:]

    reply = await wire.request(
        "POST",
        "/sessions/Create",
        "durable=false",
        body=gen(),
        content_type="application/json; charset=utf-8",
        accept="application/json",
    )
    assert reply.status == 201, reply.body


async def test_create_durable(server, wire, spec):
    reply = await wire.create(durable=True, accept="application/json")
    assert reply.status == 201, reply.body
    sid = json.loads(reply.body)["Id"]
    assert reply.body == spec.session_info_json(server.authority, sid, durable=True)


async def test_session_ids_are_distinct(wire):
    ids = [await wire.session() for _ in range(5)]
    assert len(set(ids)) == 5


async def test_create_without_durable_is_400(wire):
    """§4.1 [PROPOSAL]: durable is required; missing → 400."""
    reply = await wire.request(
        "POST",
        "/sessions/Create",
        body=json.dumps(wire.start_info()).encode(),
        content_type="application/json; charset=utf-8",
    )
    reply.expect(400)


@pytest.mark.parametrize(
    "member", ["ServiceName", "Username", "Password", "MaxMessageSize", "Runtime"]
)
async def test_create_missing_required_member_is_400(wire, spec, member):
    """§4.1 [PROPOSAL]: a missing required member → 400 ArgumentError (JSON and XML bodies)."""
    info = wire.start_info()
    del info[member]
    reply = await wire.request(
        "POST",
        "/sessions/Create",
        "durable=false",
        body=json.dumps(info).encode(),
        content_type="application/json; charset=utf-8",
        accept="application/json",
    )
    reply.expect(400, spec.ARGUMENT_ERROR)
    xml_body = START_INFO_XML.replace(f"<{member}>".encode(), b"<Dropped>").replace(
        f"</{member}>".encode(), b"</Dropped>"
    )
    reply = await _create_xml(wire, accept=None, body=xml_body)
    reply.expect(400, spec.ARGUMENT_ERROR)


async def test_create_unknown_service(wire, spec):
    """§4.1 [PROPOSAL]: unknown service → 400/404 Service_NotFound."""
    reply = await wire.create(accept="application/json", ServiceName="NoSuchSvc")
    assert reply.status in (400, 404), reply.body
    assert reply.fault().code == spec.SERVICE_NOT_FOUND


@pytest.mark.parametrize(
    "body",
    [
        b'{"MaxMessageSize":65536,"Password":"s3cret","Runtime":-1,"ServiceName":"CcpE',
        b"",
        b"[]",
        b"not json at all",
        b'{"MaxMessageSize":"big","Password":"s3cret","Runtime":-1,"ServiceName":"CcpEchoSvc",'
        b'"Username":"CONTOSO\\\\alice"}',
    ],
    ids=["truncated", "empty", "array", "garbage", "wrong-type"],
)
async def test_create_unparseable_json_is_400(wire, spec, body):
    reply = await wire.request(
        "POST",
        "/sessions/Create",
        "durable=false",
        body=body,
        content_type="application/json; charset=utf-8",
        accept="application/json",
    )
    reply.expect(400, spec.ARGUMENT_ERROR)


# --- Attach (§4.2) ----------------------------------------------------------------------------


async def test_attach_json_and_xml(server, wire, spec):
    sid = await wire.session()
    reply = await wire.attach(sid, accept="application/json")
    assert reply.status == 200, reply.body
    assert reply.content_type == "application/json; charset=utf-8"
    assert reply.body == spec.session_info_json(server.authority, sid)
    reply = await wire.attach(sid)
    assert reply.status == 200, reply.body
    info = _session_info_xml(reply.body)
    assert info["Id"] == str(sid)
    assert info["BrokerNode"] == server.authority


async def test_attach_durable(server, wire, spec):
    sid = await wire.session(durable=True)
    reply = await wire.attach(sid, durable=True, accept="application/json")
    assert reply.status == 200, reply.body
    assert reply.body == spec.session_info_json(server.authority, sid, durable=True)


async def test_attach_unknown_session_404(wire, spec):
    reply = await wire.attach(987654)
    reply.expect(404, spec.INVALID_SESSION_ID)
    reply = await wire.attach(987654, accept="application/json")
    assert reply.expect(404, spec.INVALID_SESSION_ID).fmt == "json"


@pytest.mark.parametrize("durable", [False, True])
async def test_attach_durable_mismatch_400(wire, spec, durable):
    """§3.3 [PROPOSAL]: attach must match the session type → 400 InvalidAttach*Session."""
    sid = await wire.session(durable=durable)
    reply = await wire.attach(sid, durable=not durable)
    reply.expect(400, codes=[spec.INVALID_ATTACH_DURABLE, spec.INVALID_ATTACH_INTERACTIVE])


async def test_attach_other_users_session_403(wire, bob):
    sid = await wire.session()
    reply = await bob.attach(sid)
    reply.expect(403)


async def test_attach_creates_no_batch_and_many_clients_may_attach(wire):
    sid = await wire.session()
    for _ in range(3):
        assert (await wire.attach(sid)).status == 200
    assert await wire.status_value(sid, "never") == 1


# --- Close (§4.3) -----------------------------------------------------------------------------


async def test_close_then_everything_is_404(wire, spec):
    sid = await wire.session()
    await wire.send_ok(sid, "b1", ("x", "u"))
    closed = await wire.close(sid)
    assert (closed.status, closed.body) == (200, b"")
    (await wire.close(sid)).expect(404, spec.INVALID_SESSION_ID)
    (await wire.attach(sid)).expect(404, spec.INVALID_SESSION_ID)
    b = f"/session/{sid}/batch/b1"
    for method, path, query, body in [
        ("POST", b, "genericservice=true&commit=false", spec.generic_body(("y", "u"))),
        ("POST", f"{b}/Commit", None, None),
        ("POST", f"{b}/Response", "genericservice=true&count=-1&reset=true", None),
        ("GET", f"{b}/Status", None, None),
        ("POST", f"{b}/Purge", None, None),
    ]:
        reply = await wire.request(
            method, path, query, body=body, content_type="application/octet-stream"
        )
        reply.expect(404, spec.INVALID_SESSION_ID)


async def test_close_unknown_session_404(wire, spec):
    (await wire.close(424242)).expect(404, spec.INVALID_SESSION_ID)


async def test_close_leaves_other_sessions_alone(wire, spec):
    s1, s2 = await wire.session(), await wire.session()
    await wire.send_ok(s2, "b", ("keep", "k1"), commit=True)
    assert (await wire.close(s1)).status == 200
    await wire.wait_status(s2, "b", 3)
    got = await wire.generic_responses(s2, "b")
    assert got.records == [spec.echo_record("keep", "k1")]
    assert got.eor == (1, "Success")


async def test_create_with_accept_json_and_wrong_content_gives_json_fault(wire):
    reply = await wire.request(
        "POST",
        "/sessions/Create",
        "durable=false",
        body=b"{",
        content_type="application/json; charset=utf-8",
        accept="application/json",
    )
    assert reply.status == 400
    assert reply.fault().fmt == "json"


async def test_create_xml_members_in_any_order_by_default(wire):
    """§2.6 [PROPOSAL]: the emulator accepts any member order by default."""
    body = (
        b'<WebSessionStartInfo xmlns="http://hpc.microsoft.com/">'
        b"<Username>CONTOSO\\alice</Username>"
        b"<ServiceName>CcpEchoSvc</ServiceName>"
        b"<Runtime>-1</Runtime>"
        b"<Password>s3cret</Password>"
        b"<MaxMessageSize>131072</MaxMessageSize>"
        b"</WebSessionStartInfo>"
    )
    reply = await _create_xml(wire, accept="application/json", body=body)
    assert reply.status == 201, reply.body
    assert json.loads(reply.body)["MaxMessageSize"] == 131072


async def test_reject_durable_knob(start_server, http, spec):
    """G15: a config flag makes the emulator reject durable sessions (Azure behaviour)."""
    server = await start_server(reject_durable=True)
    w = spec.Wire(http, server.base_url)
    reply = await w.create(durable=True)
    reply.expect(400, 50331698)  # Azure_NotSupportDurableSession
    assert (await w.create(durable=False)).status == 201
