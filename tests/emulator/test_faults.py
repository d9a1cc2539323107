"""The fault plan: parsing, matching, and every action as a plain aiohttp client sees it."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import aiohttp
import pytest
from aiohttp.test_utils import make_mocked_request

from hpcsoa.emulator import EmulatorServer, FaultPlan, FaultRule
from hpcsoa.emulator._app import _is_loopback
from hpcsoa.emulator._faults import FaultPlanRunner

ALICE = ("HPCLAB\\alice", "s3cret")
AUTH = "Basic " + base64.b64encode(f"{ALICE[0]}:{ALICE[1]}".encode()).decode()
H = {"api-version": "2011-11-01", "Authorization": AUTH}
START_INFO = (
    b'{"MaxMessageSize":65536,"Password":"s3cret","Runtime":-1,'
    b'"ServiceName":"CcpEchoSvc","Username":"HPCLAB\\\\alice"}'
)
SEP = b"\xef\xbf\xbf"
REPLY = b"http://hpc.microsoft.com/GenericService/IGenericService/GenericOperationResponse"


def plan(*rules: dict, seed: int = 0) -> FaultPlan:
    return FaultPlan.from_json({"seed": seed, "rules": list(rules)})


@pytest.fixture
async def server():
    async with EmulatorServer(users=dict([ALICE])) as s:
        yield s


@pytest.fixture
async def http():
    # force_close: every request on a fresh connection, so aiohttp never silently retries a
    # request whose keep-alive connection we dropped
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
        yield s


async def new_session(http, server) -> int:
    async with http.post(
        f"{server.base_url}/WindowsHPC/HPCLAB/Sessions/Create?durable=false",
        data=START_INFO,
        headers={**H, "Content-Type": "application/json", "Accept": "application/json"},
    ) as resp:
        assert resp.status == 201, await resp.text()
        return int((await resp.json())["Id"])


async def fill(http, server, sid: int, batch: str, n: int) -> None:
    body = b"".join(f"in{i}".encode() + SEP + str(i).encode() + b"\x00" for i in range(n))
    url = (
        f"{server.base_url}/WindowsHPC/HPCLAB/session/{sid}/batch/{batch}"
        "?genericservice=true&commit=true"
    )
    async with http.post(url, data=body, headers=H) as resp:
        assert resp.status == 201


def responses_url(server, sid: int, batch: str) -> str:
    return (
        f"{server.base_url}/WindowsHPC/HPCLAB/session/{sid}/batch/{batch}/Response"
        "?genericservice=true&action=&clientdata=&count=-1&reset=true"
    )


# --- the plan itself ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rules": [{"status": 503, "colour": "red"}]}, "unknown fault rule keys"),
        ({"rules": [{"operation": "no_such_op", "status": 503}]}, "unknown operation"),
        ({"rules": [{"operation": "commit"}]}, "needs an action"),
        ({"rules": [{"path": "(", "status": 503}]}, "invalid path regex"),
        ({"rules": [{"probability": 2, "status": 503}]}, "probability"),
        ({"rules": [{"abort": "during"}]}, "abort"),
        ({"rules": {}}, "'rules' must be a list"),
        ({"rules": [], "extra": 1}, "unknown fault plan keys"),
        ("{not json", "not valid JSON"),
    ],
)
def test_invalid_plans_are_rejected(data, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FaultPlan.from_json(data)


def test_plan_round_trips_and_rule_index_in_errors() -> None:
    p = plan(
        {
            "operation": "SEND_REQUESTS",
            "nth": 2,
            "times": 1,
            "status": 503,
            "headers": {"Retry-After": 1},
        },
        {"path": "/Response", "duplicate": 2},
    )
    assert p.rules[0].operation == "send_requests"
    assert p.rules[0].headers == {"Retry-After": "1"}
    assert FaultPlan.from_json(json.dumps(p.to_json())) == p
    with pytest.raises(ValueError, match="fault rule 1"):
        FaultPlan.from_json({"rules": [{"status": 500}, {"nth": 0, "status": 500}]})


def test_nth_times_and_probability_are_deterministic() -> None:
    runner = FaultPlanRunner(plan({"method": "POST", "nth": 2, "times": 2, "status": 503}))
    fired = [runner.decide("POST", "/x", None) is not None for _ in range(5)]
    assert fired == [False, True, True, False, False]
    assert runner.decide("GET", "/x", None) is None
    assert runner.snapshot()["matched"] == [5]

    def draws(seed: int) -> list[bool]:
        r = FaultPlanRunner(plan({"probability": 0.5, "status": 503}, seed=seed))
        return [r.decide("GET", "/", None) is not None for _ in range(40)]

    assert draws(7) == draws(7)
    assert draws(7) != draws(8)
    assert 5 < sum(draws(7)) < 35


def test_matchers() -> None:
    rule = FaultRule(method="post", path=r"/batch/[^/]+$", operation="send_requests", status=503)
    assert rule.matches("POST", "/WindowsHPC/session/1/BATCH/b1", "send_requests")
    assert not rule.matches("GET", "/WindowsHPC/session/1/batch/b1", "send_requests")
    assert not rule.matches("POST", "/WindowsHPC/session/1/batch/b1/Commit", "send_requests")
    assert not rule.matches("POST", "/WindowsHPC/session/1/batch/b1", "commit")


# --- actions, observed from a plain client --------------------------------------------------------


async def test_status_with_retry_after_then_normal(server, http) -> None:
    server.set_fault_plan(
        plan(
            {
                "operation": "get_clusters",
                "times": 1,
                "status": 503,
                "headers": {"Retry-After": "2"},
            }
        )
    )
    url = f"{server.base_url}/WindowsHPC/Clusters"
    async with http.get(url, headers=H) as resp:
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "2"
        assert b"<HpcWebServiceFault" in await resp.read()
    async with http.get(url, headers=H) as resp:
        assert resp.status == 200


async def test_status_with_custom_body_and_json_faults(server, http) -> None:
    server.set_fault_plan(plan({"path": "Status$", "status": 429, "body": "slow down", "times": 1}))
    sid = await new_session(http, server)
    url = f"{server.base_url}/WindowsHPC/session/{sid}/batch/b/Status"
    async with http.get(url, headers=H) as resp:
        assert resp.status == 429
        assert await resp.text() == "slow down"
    server.set_fault_plan(plan({"path": "Status$", "status": 500}))
    async with http.get(url, headers={**H, "Accept": "application/json"}) as resp:
        assert resp.status == 500
        assert (await resp.json())["Code"] == 0x0F000000


async def test_delay(server, http) -> None:
    server.set_fault_plan(plan({"operation": "get_version", "delay_ms": 300}))
    started = time.monotonic()
    async with http.get(f"{server.base_url}/WindowsHPC/Version", headers=H) as resp:
        assert resp.status == 200
    assert time.monotonic() - started >= 0.3


async def test_abort_before_leaves_state_alone(server, http) -> None:
    server.set_fault_plan(plan({"operation": "create_session", "abort": "before", "times": 1}))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await new_session(http, server)
    assert server.state.sessions_created == 0
    await new_session(http, server)
    assert server.state.sessions_created == 1


async def test_abort_after_changes_state_without_a_response(server, http) -> None:
    server.set_fault_plan(plan({"operation": "create_session", "abort": "after", "times": 1}))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await new_session(http, server)
    assert server.state.sessions_created == 1  # the session exists; the client never heard


async def test_truncate_plain_response(server, http) -> None:
    server.set_fault_plan(plan({"operation": "get_clusters", "truncate_after": 40}))
    async with http.get(f"{server.base_url}/WindowsHPC/Clusters", headers=H) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()


async def test_garble_plain_response(server, http) -> None:
    server.set_fault_plan(plan({"operation": "get_clusters", "garble": 1}))
    async with http.get(f"{server.base_url}/WindowsHPC/Clusters", headers=H) as resp:
        body = await resp.read()
    assert b"</garbled>" in body
    assert body.startswith(b"<ArrayOfObject")


async def test_stream_truncate(server, http) -> None:
    sid = await new_session(http, server)
    await fill(http, server, sid, "b", 5)
    server.set_fault_plan(plan({"operation": "get_responses", "truncate_after": 150}))
    received = bytearray()

    async def drain(resp: aiohttp.ClientResponse) -> None:
        async for chunk in resp.content.iter_any():
            received.extend(chunk)

    async with http.post(responses_url(server, sid, "b"), headers=H) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await drain(resp)
    assert len(received) == 150
    assert received.startswith(REPLY)


async def test_stream_garble_and_duplicate(server, http) -> None:
    sid = await new_session(http, server)
    await fill(http, server, sid, "b", 3)
    server.set_fault_plan(
        plan({"operation": "get_responses", "garble": 2, "duplicate": 3, "times": 1})
    )
    async with http.post(responses_url(server, sid, "b"), headers=H) as resp:
        body = await resp.read()
    records = body.split(b"\x00")[:-1]
    assert len(records) == 5  # 3 responses + the duplicate + the end marker
    assert records[0].count(SEP) == 2
    assert SEP not in records[1]  # garbled: no field separators left
    assert records[2] == records[3]  # duplicated
    assert records[4].startswith(b"http://hpc.microsoft.com/EndOfGetResponse")
    # the fault fired once; a replay is clean
    async with http.post(responses_url(server, sid, "b"), headers=H) as resp:
        clean = (await resp.read()).split(b"\x00")[:-1]
    assert len(clean) == 4
    assert all(r.count(SEP) == 2 for r in clean)


async def test_stream_abort_after_marks_responses_delivered(server, http) -> None:
    sid = await new_session(http, server)
    await fill(http, server, sid, "b", 2)
    server.set_fault_plan(plan({"operation": "get_responses", "abort": "after", "times": 1}))

    async def read() -> bytes:
        async with http.post(responses_url(server, sid, "b"), headers=H) as resp:
            return await resp.read()

    with pytest.raises(aiohttp.ClientError):
        await read()
    assert server.state.counters.responses_delivered == 2
    batch = server.state.broker.sessions[sid].batch("b")
    assert batch is not None
    assert batch.since_reset == 2


async def test_soap_stream_garble_breaks_one_envelope(server, http) -> None:
    sid = await new_session(http, server)
    await fill(http, server, sid, "b", 2)
    server.set_fault_plan(plan({"operation": "get_responses", "garble": 1}))
    url = responses_url(server, sid, "b").replace("genericservice=true", "genericservice=false")
    async with http.post(url, headers=H) as resp:
        body = await resp.read()
    assert body.count(b"<s:Envelope") == 3
    assert b"</garbled>" in body


# --- the admin route ------------------------------------------------------------------------------


async def test_admin_route_sets_reads_and_clears_the_plan(server, http) -> None:
    admin = f"{server.base_url}/hpcsoa-admin/fault-plan"
    rules = {"rules": [{"operation": "get_clusters", "status": 503, "times": 1}]}
    async with http.put(admin, data=json.dumps(rules), headers=H) as resp:
        assert resp.status == 200
    async with http.get(f"{server.base_url}/WindowsHPC/Clusters", headers=H) as resp:
        assert resp.status == 503
    async with http.get(admin, headers=H) as resp:
        snapshot = await resp.json()
    assert snapshot["fired"] == [1]
    assert snapshot["plan"]["rules"][0]["status"] == 503
    async with http.put(admin, data=b'{"rules": [{"nope": 1}]}', headers=H) as resp:
        assert resp.status == 400
        assert "unknown fault rule keys" in (await resp.json())["error"]
    async with http.delete(admin, headers=H) as resp:
        assert resp.status == 200
    assert server.state.faults.plan is None
    async with http.get(admin) as resp:
        assert resp.status == 401  # the admin API wants the same credentials
    async with http.get(f"{server.base_url}/hpcsoa-admin/stats", headers=H) as resp:
        stats = await resp.json()
    assert stats["sessions_created"] == 0


@pytest.mark.parametrize(
    ("peer", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("::1", True),
        ("192.0.2.7", False),
        ("fd00::2", False),
    ],
)
def test_admin_route_is_loopback_only(peer: str, loopback: bool) -> None:
    class _Transport:
        def get_extra_info(self, name: str, default=None):
            return (peer, 1234) if name == "peername" else default

        def is_closing(self) -> bool:
            return False

    request = make_mocked_request("GET", "/hpcsoa-admin/fault-plan", transport=_Transport())
    assert _is_loopback(request) is loopback


async def test_admin_route_refuses_non_loopback_peer(http) -> None:
    # Bind every interface and reach the server over a non-loopback address, when one exists.
    import socket

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # UDP connect sends nothing: picks the source
            addr = probe.getsockname()[0]
    except OSError:
        pytest.skip("no non-loopback IPv4 address")
    if addr.startswith("127.") or addr == "0.0.0.0":
        pytest.skip("no non-loopback IPv4 address")
    async with EmulatorServer(users=dict([ALICE]), host="0.0.0.0") as server:
        url = f"http://{addr}:{server.port}/hpcsoa-admin/fault-plan"
        try:
            async with asyncio.timeout(5), http.get(url, headers=H) as resp:
                assert resp.status == 403
        except (aiohttp.ClientConnectionError, TimeoutError):
            pytest.skip("host address not reachable")
