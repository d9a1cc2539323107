"""Conformance: URI forms, case-insensitive routing, api-version, auth, Get Clusters/Version.

Spec §2.1–§2.4, §2.7, §6.1, §6.2, Appendix C items 1–4.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

FORMS = pytest.mark.parametrize(
    "prefix", ["/WindowsHPC/HPCLAB", "/WindowsHPC"], ids=["pre2016", "2016"]
)


@FORMS
async def test_every_soa_operation_in_both_uri_forms(server, http, spec, prefix):
    """§1.1/§2.1: every SOA operation answers in the pre-2016 and the 2016 URI form."""
    w = spec.Wire(http, server.base_url, prefix=prefix)
    created = await w.create(accept="application/json")
    assert created.status == 201, created.body
    sid = json.loads(created.body)["Id"]

    attached = await w.attach(sid, accept="application/json")
    assert attached.status == 200, attached.body
    assert attached.body == spec.session_info_json(server.authority, sid)

    sent = await w.send(sid, "b1", spec.generic_body(("one", "u1")))
    assert (sent.status, sent.body) == (200, b"")
    sent = await w.send(sid, "b1", spec.generic_body(("two", "u2")))
    assert (sent.status, sent.body) == (200, b"")
    committed = await w.commit(sid, "b1")
    assert (committed.status, committed.body) == (201, b"")
    await w.wait_status(sid, "b1", 3)

    got = await w.generic_responses(sid, "b1")
    assert got.eor == (2, "Success")
    assert sorted(got.records) == sorted(
        [spec.echo_record("one", "u1"), spec.echo_record("two", "u2")]
    )

    # Send with commit=true on a second batch: 201.
    sent = await w.send(sid, "b2", spec.generic_body(("three", "u3")), commit=True)
    assert (sent.status, sent.body) == (201, b"")

    purged = await w.purge(sid, "b1")
    assert (purged.status, purged.body) == (200, b"")
    closed = await w.close(sid)
    assert (closed.status, closed.body) == (200, b"")


@FORMS
async def test_get_version_both_forms_without_api_version(server, http, spec, prefix):
    """§6.2: ``<string>`` in the Serialization namespace; api-version optional."""
    w = spec.Wire(http, server.base_url, prefix=prefix)
    for api_version in (None, "2011-11-01"):
        reply = await w.request("GET", "/Version", api_version=api_version)
        assert reply.status == 200, reply.body
        m = re.fullmatch(
            rb'<string xmlns="http://schemas\.microsoft\.com/2003/10/Serialization/">'
            rb"(\d+\.\d+\.\d+\.\d+)</string>",
            reply.body,
        )
        assert m, reply.body
        assert reply.content_type == "application/xml; charset=utf-8"


async def test_get_clusters_requires_api_version(wire, spec):
    """§2.3/§6.1: Get Clusters without api-version → 400 with an HpcWebServiceFault."""
    reply = await wire.request("GET", "/WindowsHPC/Clusters", api_version=None)
    reply.expect(400)
    # A cluster operation answers XML regardless of Accept (§2.5, §2.7, G13).
    reply = await wire.request(
        "GET", "/WindowsHPC/Clusters", api_version=None, accept="application/json"
    )
    assert reply.expect(400).fmt == "xml"
    ok = await wire.request(
        "GET", "/WindowsHPC/Clusters", "api-version=2011-11-01", api_version=None
    )
    assert ok.status == 200
    assert ok.body == spec.golden("4.10-get-clusters.response.xml")


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/windowshpc/hpclab/SESSIONS/create", "DURABLE=false"),
        ("/WINDOWSHPC/Sessions/CREATE", "Durable=False"),
        ("/WindowsHpc/HpcLab/sessions/Create", "durable=FALSE"),
    ],
)
async def test_create_session_case_insensitive(wire, path, query):
    """§2.2: path literals, the cluster segment, query names and boolean values ignore case."""
    reply = await wire.request(
        "POST",
        path,
        query,
        body=json.dumps(wire.start_info()).encode(),
        content_type="application/json; charset=utf-8",
        accept="application/json",
    )
    assert reply.status == 201, reply.body
    assert json.loads(reply.body)["IsDurable"] is False


async def test_batch_operations_case_insensitive(wire, spec):
    """§2.2: ``session/7/BATCH/b1/response``, ``GENERICSERVICE=true`` and friends."""
    sid = await wire.session()
    sent = await wire.request(
        "POST",
        f"/WINDOWSHPC/hpclab/SESSION/{sid}/Batch/b1",
        "GENERICSERVICE=TRUE&COMMIT=False",
        body=spec.generic_body(("a", "u1")),
        content_type="application/octet-stream",
    )
    assert sent.status == 200, sent.body
    committed = await wire.request("POST", f"/windowshpc/Session/{sid}/BATCH/b1/COMMIT")
    assert committed.status == 201, committed.body
    status = await wire.request(
        "GET", f"/WindowsHPC/HPCLAB/Session/{sid}/batch/b1/STATUS", accept="application/json"
    )
    assert status.status == 200, status.body
    assert status.body in (b"2", b"3")
    await wire.wait_status(sid, "b1", 3)
    got = await wire.request(
        "POST",
        f"/WindowsHPC/HPCLAB/session/{sid}/BATCH/b1/response",
        "GenericService=True&ACTION=&ClientData=&COUNT=-1&Reset=TRUE",
    )
    assert got.status == 200, got.body
    body = spec.parse_generic(got.body)
    assert body.records == [spec.echo_record("a", "u1")]
    assert body.eor == (1, "Success")
    purged = await wire.request("POST", f"/windowshpc/HPCLAB/SESSION/{sid}/batch/b1/purge")
    assert purged.status == 200, purged.body
    attached = await wire.request("GET", f"/WindowsHPC/session/{sid}/ATTACH", "durable=false")
    assert attached.status == 200, attached.body
    closed = await wire.request("POST", f"/WindowsHPC/HPCLAB/SESSION/{sid}/close")
    assert closed.status == 200, closed.body


async def test_get_clusters_and_version_case_insensitive(wire, spec):
    reply = await wire.request("GET", "/windowshpc/CLUSTERS")
    assert reply.status == 200, reply.body
    assert reply.body == spec.golden("4.10-get-clusters.response.xml")
    reply = await wire.request("GET", "/WINDOWSHPC/hpclab/version")
    assert reply.status == 200, reply.body


@pytest.mark.parametrize("cluster", ["OTHERLAB", "HPCLABX", "HPC"])
async def test_wrong_cluster_segment_is_404(wire, spec, cluster):
    """§2.1 [PROPOSAL]: a cluster segment that is not the configured name → 404 + fault."""
    sid = await wire.session()
    for method, path in [
        ("POST", f"/WindowsHPC/{cluster}/sessions/Create?durable=false"),
        ("GET", f"/WindowsHPC/{cluster}/session/{sid}/batch/b1/Status"),
        ("GET", f"/WindowsHPC/{cluster}/Version"),
    ]:
        p, _, q = path.partition("?")
        reply = await wire.request(
            method,
            p,
            q or None,
            body=json.dumps(wire.start_info()).encode() if method == "POST" else None,
            content_type="application/json; charset=utf-8" if method == "POST" else None,
        )
        reply.expect(404)


async def test_wrong_cluster_fault_json(wire):
    reply = await wire.request(
        "GET", "/WindowsHPC/NOPE/session/1/batch/b1/Status", accept="application/json"
    )
    fault = reply.expect(404)
    assert fault.fmt == "json"
    assert reply.content_type == "application/json; charset=utf-8"


async def test_unknown_operation_is_404(wire):
    sid = await wire.session()
    reply = await wire.request("POST", f"/session/{sid}/batch/b1/Frobnicate")
    assert reply.status == 404, reply.body


# --- api-version (§2.3) -----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["2011-11-01", "2012-03-31.3.4", "2012-11-01.4.0"])
async def test_api_version_accepted_values(wire, value):
    sid = await wire.session()
    for kw in ({"api_version": value}, {"api_version": None}):
        query = None if kw["api_version"] else f"api-version={value}"
        reply = await wire.request("GET", f"/session/{sid}/batch/b1/Status", query, **kw)
        assert reply.status == 200, (kw, reply.body)


async def test_api_version_query_name_case_insensitive(wire):
    sid = await wire.session()
    reply = await wire.request(
        "GET", f"/session/{sid}/batch/b1/Status", "API-VERSION=2011-11-01", api_version=None
    )
    assert reply.status == 200, reply.body


async def test_api_version_header_wins_over_query(wire, spec):
    """§2.3: both present → the header is used and the query value ignored."""
    sid = await wire.session()
    path = f"/session/{sid}/batch/b1/Status"
    ok = await wire.request("GET", path, "api-version=garbage", api_version="2011-11-01")
    assert ok.status == 200, ok.body
    bad = await wire.request("GET", path, "api-version=2011-11-01", api_version="garbage")
    bad.expect(400, spec.API_VERSION_INCORRECT)


async def test_api_version_missing_is_400_for_every_soa_operation(wire, spec):
    """§4 common: api-version is required for all SOA operations."""
    sid = await wire.session()
    b = f"/session/{sid}/batch/b1"
    calls = [
        ("POST", "/sessions/Create", "durable=false"),
        ("GET", f"/session/{sid}/Attach", "durable=false"),
        ("POST", b, "genericservice=true&commit=false"),
        ("POST", f"{b}/Commit", None),
        ("POST", f"{b}/Response", "genericservice=true&count=-1&reset=true"),
        ("GET", f"{b}/Status", None),
        ("POST", f"{b}/Purge", None),
        ("POST", f"/session/{sid}/Close", None),
    ]
    for method, path, query in calls:
        body = None
        ctype = None
        if path.endswith("Create"):
            body, ctype = json.dumps(wire.start_info()).encode(), "application/json; charset=utf-8"
        elif path == b:
            body, ctype = spec.generic_body(("x", "u")), "application/octet-stream"
        reply = await wire.request(
            method, path, query, body=body, content_type=ctype, api_version=None
        )
        reply.expect(400)
    # Nothing above took effect: the batch is still a fresh Ready batch and the session is open.
    assert await wire.status_value(sid, "b1") == 1


@pytest.mark.parametrize("value", ["garbage", "2011-11", "2011-13-45", "11-11-2011", "v2"])
async def test_api_version_unparseable_is_400_apiversionincorrect(wire, spec, value):
    sid = await wire.session()
    reply = await wire.request("GET", f"/session/{sid}/batch/b1/Status", api_version=value)
    reply.expect(400, spec.API_VERSION_INCORRECT)
    reply = await wire.request(
        "GET", f"/session/{sid}/batch/b1/Status", f"api-version={value}", api_version=None
    )
    reply.expect(400, spec.API_VERSION_INCORRECT)


# --- authentication (§2.4) --------------------------------------------------------------------

REALM = re.compile(r'^Basic realm="[^"]*"')


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "wrong-password",
        "unknown-user",
        "Basic !!!not-base64!!!",
        "Bearer abc",
        "Basic " + "Q09OVE9TT1xhbGljZQ==",  # "CONTOSO\alice" without a colon
    ],
)
async def test_bad_credentials_get_401_challenge(server, http, spec, authorization):
    if authorization == "wrong-password":
        authorization = spec.basic("CONTOSO\\alice", "nope")
    elif authorization == "unknown-user":
        authorization = spec.basic("CONTOSO\\mallory", "s3cret")
    w = spec.Wire(http, server.base_url)
    good = await w.session()
    extra = {} if authorization is None else {"Authorization": authorization}
    for method, path, query in [
        ("GET", "/WindowsHPC/Clusters", None),
        ("POST", "/sessions/Create", "durable=false"),
        ("GET", f"/session/{good}/batch/b1/Status", None),
        ("POST", f"/session/{good}/batch/b1/Response", "genericservice=true&count=-1&reset=true"),
    ]:
        body = json.dumps(w.start_info()).encode() if path.endswith("Create") else None
        reply = await w.request(
            method,
            path,
            query,
            body=body,
            auth=False,
            extra=extra,
            content_type="application/json; charset=utf-8" if body else None,
        )
        assert reply.status == 401, (path, reply.status, reply.body)
        challenge = reply.headers.getall("WWW-Authenticate", [])
        assert any(REALM.match(c) for c in challenge), challenge
        reply.fault()  # §2.7: "all with a fault body"
        assert b"s3cret" not in reply.body


async def test_401_fault_format_per_operation_group(server, http, spec):
    """§2.7: SOA errors follow Accept; cluster operations always answer XML (G13)."""
    w = spec.Wire(http, server.base_url)
    sid = await w.session()
    reply = await w.request(
        "GET", f"/session/{sid}/batch/b1/Status", auth=False, accept="application/json"
    )
    assert reply.status == 401
    assert reply.fault().fmt == "json"
    reply = await w.request("GET", "/WindowsHPC/Clusters", auth=False, accept="application/json")
    assert reply.status == 401
    assert reply.fault().fmt == "xml"


async def test_fault_format_follows_accept(wire, spec):
    """§2.7/§4 common: XML fault by default and for application/xml, JSON for application/json."""
    path = "/session/999999/batch/b1/Status"
    for accept, fmt, ctype in [
        (None, "xml", "application/xml; charset=utf-8"),
        ("application/xml", "xml", "application/xml; charset=utf-8"),
        ("application/json", "json", "application/json; charset=utf-8"),
    ]:
        reply = await wire.request("GET", path, accept=accept)
        fault = reply.expect(404, spec.INVALID_SESSION_ID)
        assert fault.fmt == fmt
        assert reply.content_type == ctype
    # JSON shape G12: compact {"Code":n,"Message":"…","Values":null or [{"Key":…,"Value":…}]}
    reply = await wire.request("GET", path, accept="application/json")
    data = json.loads(reply.body)
    assert reply.body.startswith(b'{"Code":50331649,"Message":')
    if data["Values"] is not None:
        assert all(list(kv) == ["Key", "Value"] for kv in data["Values"]), data
    # XML shape §2.7: Values is nil or a list of a:KeyValuePairOfstringstring.
    reply = await wire.request("GET", path)
    root = ET.fromstring(reply.body)
    values = root.find(f"{{{spec.NS_COMMON}}}Values")
    assert values is not None
    if values.get(f"{{{spec.NS_XSI}}}nil") != "true":
        kv_ns = "http://schemas.datacontract.org/2004/07/System.Collections.Generic"
        assert all(c.tag == f"{{{kv_ns}}}KeyValuePairOfstringstring" for c in values), reply.body
