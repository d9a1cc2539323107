"""Conformance: the §4.10 end-to-end exchange, byte for byte (golden samples from the spec).

The spec's example runs against host ``hn01:8443`` with session id 7 and machine ``hn01``; the
emulator runs on 127.0.0.1 with machine name ``CN01``. Those three values are the only
substitutions made to the spec's bytes.
"""

from __future__ import annotations

import json
from collections import Counter
from urllib.parse import urlsplit

from yarl import URL


def _records(body: bytes) -> list[bytes]:
    assert body.endswith(b"\x00"), body[-60:]
    return body.split(b"\x00")[:-1]


async def test_exchange_4_10_byte_exact(server, http, spec):
    """Every step of §4.10 with the Java/C samples' exact URLs, headers and bodies."""
    base = server.base_url
    auth = {"Authorization": spec.basic(*spec.ALICE)}
    av = {"api-version": "2011-11-01"}

    # GET /WindowsHPC/Clusters
    async with http.get(
        URL(base + "/WindowsHPC/Clusters", encoded=True), headers={**av, **auth}
    ) as r:
        body = await r.read()
        assert r.status == 200, body
        assert r.headers["Content-Type"] == "application/xml; charset=utf-8"
        assert body == spec.golden("4.10-get-clusters.response.xml")

    # POST /WindowsHPC/HPCLAB/sessions/Create?durable=false (JSON in, JSON out)
    async with http.post(
        URL(base + "/WindowsHPC/HPCLAB/sessions/Create?durable=false", encoded=True),
        data=spec.golden("4.10-create-session.request.json"),
        headers={
            **av,
            **auth,
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
        },
    ) as r:
        body = await r.read()
        assert r.status == 201, body
        assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    sid = json.loads(body)["Id"]
    assert isinstance(sid, int)
    authority = urlsplit(base).netloc
    assert server.authority == authority
    expected = (
        spec.golden("4.10-create-session.response.json")
        .replace(b'"hn01:8443"', json.dumps(authority).encode())
        .replace(b'"Id":7,', b'"Id":%d,' % sid)
    )
    assert body == expected

    # POST .../session/7/batch/b1?genericservice=true&commit=true, chunked body
    async def chunks():
        data = spec.golden("4.10-send-requests.request.bin")
        yield data[:7]
        yield data[7:]

    async with http.post(
        URL(
            base + f"/WindowsHPC/HPCLAB/session/{sid}/batch/b1?genericservice=true&commit=true",
            encoded=True,
        ),
        data=chunks(),
        headers={
            **av,
            **auth,
            "Content-Type": "application/octet-stream",
            "Accept": "application/json",
        },
    ) as r:
        body = await r.read()
        assert r.status == 201, body
        assert body == b""

    # POST .../Response?genericservice=true&action=&clientdata=&count=-1&reset=true
    async with http.post(
        URL(
            base + f"/WindowsHPC/HPCLAB/session/{sid}/batch/b1/Response"
            "?genericservice=true&action=&clientdata=&count=-1&reset=true",
            encoded=True,
        ),
        data=b"",
        headers={**av, **auth, "Accept": "application/json"},
    ) as r:
        body = await r.read()
        assert r.status == 200, body
        assert r.headers["Content-Type"] == "application/octet-stream"
        assert r.headers.get("Transfer-Encoding") == "chunked"
    golden = spec.golden("4.10-get-responses.response.bin").replace(
        b"hn01 (GenericService)", b"CN01 (GenericService)"
    )
    got, want = _records(body), _records(golden)
    # Responses may come in any order (§4.10 last paragraph); the trailer is last.
    assert (
        got[-1]
        == want[-1]
        == b"http://hpc.microsoft.com/EndOfGetResponse\xef\xbf\xbf2\xef\xbf\xbfSuccess"
    )
    assert Counter(got[:-1]) == Counter(want[:-1])
    assert len(body) == len(golden)

    # GET .../Status (JSON) -> 3
    async with http.get(
        URL(base + f"/WindowsHPC/HPCLAB/session/{sid}/batch/b1/Status", encoded=True),
        headers={**av, **auth, "Accept": "application/json"},
    ) as r:
        body = await r.read()
        assert r.status == 200, body
        assert r.headers["Content-Type"] == "application/json; charset=utf-8"
        assert body == spec.golden("4.10-get-request-status.response.json")

    # POST .../Purge, then POST .../Close: 200, no body
    for path in (f"session/{sid}/batch/b1/Purge", f"session/{sid}/Close"):
        async with http.post(
            URL(base + "/WindowsHPC/HPCLAB/" + path, encoded=True),
            data=b"",
            headers={**av, **auth},
        ) as r:
            body = await r.read()
            assert r.status == 200, (path, body)
            assert body == b"", path


async def test_status_xml_golden(start_server, http, spec):
    """§4.7 XML form, byte-exact, for each reachable state (Processing via a slow service)."""
    server = await start_server(latency_ms=1500)
    w = spec.Wire(http, server.base_url)
    sid = await w.session()
    ready = await w.status(sid, "b1", accept=None)
    assert ready.status == 200
    assert ready.headers["Content-Type"] == "application/xml; charset=utf-8"
    assert (
        ready.body
        == b'<BrokerClientStatus xmlns="http://hpc.microsoft.com">Ready</BrokerClientStatus>'
    )
    await w.send_ok(sid, "b1", ("x", "u"), commit=True)
    processing = await w.status(sid, "b1", accept="application/xml")
    assert processing.status == 200
    assert processing.body == spec.golden("4.7-get-request-status-processing.response.xml")
    await w.wait_status(sid, "b1", 3)
    finished = await w.status(sid, "b1", accept=None)
    assert (
        finished.body
        == b'<BrokerClientStatus xmlns="http://hpc.microsoft.com">Finished</BrokerClientStatus>'
    )
