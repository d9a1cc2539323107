"""Services of the emulator: CcpEchoSvc, user services, concurrency, latency, faults."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
import xml.etree.ElementTree as ET

import aiohttp
import pytest

from hpcsoa.emulator import EmulatorServer, TypedCall
from hpcsoa.emulator._services import LatencyModel

ALICE = ("HPCLAB\\alice", "s3cret")
AUTH = "Basic " + base64.b64encode(f"{ALICE[0]}:{ALICE[1]}".encode()).decode()
H = {"api-version": "2011-11-01", "Authorization": AUTH}
SEP = b"\xef\xbf\xbf"
NS_SOAP = "http://www.w3.org/2003/05/soap-envelope"
NS_WSA = "http://www.w3.org/2005/08/addressing"
NS_HPC = "http://www.microsoft.com/hpc"


def start_info(service: str) -> bytes:
    return (
        '{"MaxMessageSize":65536,"Password":"s3cret","Runtime":-1,'
        f'"ServiceName":"{service}","Username":"HPCLAB\\\\alice"}}'
    ).encode()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as s:
        yield s


class Batch:
    def __init__(self, http: aiohttp.ClientSession, server: EmulatorServer, sid: int, name: str):
        self.http = http
        self.base = f"{server.base_url}/WindowsHPC/HPCLAB/session/{sid}/batch/{name}"

    async def send(self, body: bytes, *, generic: bool = True, commit: bool = True) -> int:
        q = f"?genericservice={str(generic).lower()}&commit={str(commit).lower()}"
        async with self.http.post(self.base + q, data=body, headers=H) as resp:
            await resp.read()
            return resp.status

    async def responses(self, *, generic: bool = True, clientdata: str = "") -> bytes:
        q = (
            f"/Response?genericservice={str(generic).lower()}&clientdata={clientdata}"
            "&count=-1&reset=true"
        )
        async with asyncio.timeout(10), self.http.post(self.base + q, headers=H) as resp:
            assert resp.status == 200
            return await resp.read()


async def open_batch(http, server, service: str = "CcpEchoSvc", name: str = "b") -> Batch:
    async with http.post(
        f"{server.base_url}/WindowsHPC/HPCLAB/Sessions/Create?durable=false",
        data=start_info(service),
        headers={**H, "Content-Type": "application/json", "Accept": "application/json"},
    ) as resp:
        assert resp.status == 201, await resp.text()
        sid = (await resp.json())["Id"]
    return Batch(http, server, sid, name)


def generic(*records: tuple[str, str]) -> bytes:
    return b"".join(i.encode() + SEP + u.encode() + b"\x00" for i, u in records)


def records(body: bytes) -> list[list[bytes]]:
    return [r.split(SEP) for r in body.split(b"\x00")[:-1]]


def envelope(action: str, body: str, message_id: str, user_data: str) -> str:
    return (
        f'<s:Envelope xmlns:s="{NS_SOAP}" xmlns:a="{NS_WSA}"><s:Header>'
        f'<a:Action s:mustUnderstand="1">{action}</a:Action><a:MessageID>{message_id}</a:MessageID>'
        f'<HPCServer2008_Broker_UserDataNS xmlns="{NS_HPC}">{user_data}'
        "</HPCServer2008_Broker_UserDataNS>"
        f"</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    )


def soap_array(*envelopes: str) -> bytes:
    return (
        "<HPCServer2008_WebAPI_MessageArray>"
        + "".join(envelopes)
        + "</HPCServer2008_WebAPI_MessageArray>"
    ).encode()


def parse_envelopes(body: bytes) -> list[ET.Element]:
    return list(ET.fromstring(body))


def header(env: ET.Element, tag: str) -> str | None:
    el = env.find(f"{{{NS_SOAP}}}Header/{tag}")
    return None if el is None else (el.text or "")


# --- CcpEchoSvc ----------------------------------------------------------------------------------


async def test_echo_typed_and_generic_and_unknown_action(http) -> None:
    async with EmulatorServer(users=dict([ALICE]), machine_name="NODE7") as server:
        batch = await open_batch(http, server)
        body = soap_array(
            envelope(
                "http://tempuri.org/IEchoSvc/Echo",
                '<Echo xmlns="http://tempuri.org/"><input>hi &amp; bye</input></Echo>',
                "urn:uuid:00000000-0000-0000-0000-000000000001",
                "u1",
            ),
            envelope(
                "http://hpc.microsoft.com/GenericService/IGenericService/GenericOperation",
                '<GenericOperation xmlns="http://hpc.microsoft.com/GenericService"><args>g</args></GenericOperation>',
                "urn:uuid:00000000-0000-0000-0000-000000000002",
                "u2",
            ),
            envelope(
                "http://tempuri.org/IEchoSvc/Missing",
                '<Missing xmlns="http://tempuri.org/"/>',
                "urn:uuid:00000000-0000-0000-0000-000000000003",
                "u3",
            ),
        )
        assert await batch.send(body, generic=False) == 201
        envs = parse_envelopes(await batch.responses(generic=False, clientdata="cb"))
        by_user = {header(e, f"{{{NS_HPC}}}HPCServer2008_Broker_UserDataNS"): e for e in envs[:-1]}
        echo = by_user["u1"]
        assert header(echo, f"{{{NS_WSA}}}Action") == "http://tempuri.org/IEchoSvc/EchoResponse"
        assert (
            header(echo, f"{{{NS_WSA}}}RelatesTo")
            == "urn:uuid:00000000-0000-0000-0000-000000000001"
        )
        assert header(echo, f"{{{NS_HPC}}}HPCServer2008_Broker_ResponseCallbackId") == "cb"
        result = echo.find(
            f"{{{NS_SOAP}}}Body/{{http://tempuri.org/}}EchoResponse/{{http://tempuri.org/}}EchoResult"
        )
        assert result is not None
        assert result.text == "NODE7:hi & bye"
        gen = by_user["u2"].find(
            f"{{{NS_SOAP}}}Body/{{http://hpc.microsoft.com/GenericService}}GenericOperationResponse"
        )
        assert gen is not None
        assert "".join(gen.itertext()) == "NODE7 (GenericService): g"
        fault = by_user["u3"]
        assert (
            header(fault, f"{{{NS_WSA}}}Action")
            == "http://hpc.microsoft.com/session/RetryOperationError"
        )
        assert fault.find(f"{{{NS_SOAP}}}Body/{{{NS_SOAP}}}Fault") is not None
        assert b"ContractFilter mismatch" in ET.tostring(fault)
        assert (
            header(envs[-1], f"{{{NS_WSA}}}Action") == "http://hpc.microsoft.com/EndOfGetResponse"
        )


async def test_generic_requests_read_as_soap_get_stable_relates_to(http) -> None:
    async with EmulatorServer(users=dict([ALICE])) as server:
        batch = await open_batch(http, server)
        await batch.send(generic(("a", "1"), ("b", "2")))
        first = parse_envelopes(await batch.responses(generic=False))
        again = parse_envelopes(await batch.responses(generic=False))
        ids = [header(e, f"{{{NS_WSA}}}RelatesTo") for e in first[:-1]]
        assert len(set(ids)) == 2
        assert all(i and i.startswith("urn:uuid:") for i in ids)
        assert ids == [header(e, f"{{{NS_WSA}}}RelatesTo") for e in again[:-1]]


# --- user services -------------------------------------------------------------------------------


async def test_user_services_sync_async_typed_and_failing(http) -> None:
    threads: set[str] = set()

    def upper(arg):
        threads.add(threading.current_thread().name)
        if isinstance(arg, TypedCall):
            return f"{arg.operation}:{arg.get('x')}:{arg.namespace}"
        if arg == "boom":
            raise ValueError("no booms")
        return arg.upper()

    async def slow(arg):
        await asyncio.sleep(0.01)
        return f"slow {arg}"

    services = {"Upper": upper, "Slow": slow, "Bad": lambda arg: "nul\x00 in output"}
    async with EmulatorServer(users=dict([ALICE]), services=services) as server:
        up = await open_batch(http, server, "upper")  # service names are case-insensitive
        await up.send(generic(("abc", "1"), ("boom", "2")))
        recs = {r[2]: r for r in records(await up.responses())[:-1]}
        assert recs[b"1"] == [
            b"http://hpc.microsoft.com/GenericService/IGenericService/GenericOperationResponse",
            b"ABC",
            b"1",
        ]
        assert recs[b"2"][0] == b"http://hpc.microsoft.com/session/RetryOperationError"
        assert recs[b"2"][1] == b"ValueError: no booms"
        assert all(t.startswith("hpcsoa-service") for t in threads)  # sync: off the event loop

        typed = await open_batch(http, server, "Upper", "t")
        await typed.send(
            soap_array(
                envelope("urn:svc/Op", '<Op xmlns="urn:svc"><x>42</x></Op>', "urn:uuid:1", "u")
            ),
            generic=False,
        )
        env = parse_envelopes(await typed.responses(generic=False))[0]
        assert header(env, f"{{{NS_WSA}}}Action") == "urn:svc/OpResponse"
        assert "".join(env.find(f"{{{NS_SOAP}}}Body").itertext()) == "Op:42:urn:svc"

        slow_batch = await open_batch(http, server, "Slow")
        await slow_batch.send(generic(("x", "1")))
        assert records(await slow_batch.responses())[0][1] == b"slow x"

        bad = await open_batch(http, server, "Bad")
        await bad.send(generic(("x", "1")))
        rec = records(await bad.responses())[0]
        assert rec[0] == b"http://hpc.microsoft.com/session/RetryOperationError"
        assert b"cannot be represented" in rec[1]


async def test_unknown_service_and_service_versions(http) -> None:
    async with EmulatorServer(users=dict([ALICE])) as server:
        async with http.post(
            f"{server.base_url}/WindowsHPC/Sessions/Create?durable=false",
            data=start_info("NoSuchSvc"),
            headers={**H, "Content-Type": "application/json", "Accept": "application/json"},
        ) as resp:
            assert resp.status == 400
            assert (await resp.json())["Code"] == 0x0300001E
        url = f"{server.base_url}/WindowsHPC/HPCLAB/SoaService/CcpEchoSvc/Versions"
        async with http.get(url, headers=H) as resp:
            assert resp.status == 200
            body = await resp.read()
        assert b"<_Major>0</_Major>" in body
        async with http.get(url.replace("CcpEchoSvc", "Nope"), headers=H) as resp:
            assert resp.status == 404


async def test_concurrency_is_bounded_by_cores_and_order_is_completion_order(http) -> None:
    active = 0
    peak = 0

    async def sleepy(arg: str) -> str:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(float(arg))
        active -= 1
        return arg

    async with EmulatorServer(users=dict([ALICE]), services={"Sleepy": sleepy}, cores=3) as server:
        batch = await open_batch(http, server, "Sleepy")
        inputs = ["0.3", "0.01", "0.2", "0.02", "0.1", "0.03"]
        started = time.monotonic()
        await batch.send(generic(*[(x, str(i)) for i, x in enumerate(inputs)]))
        out = [r[1].decode() for r in records(await batch.responses())[:-1]]
        assert sorted(out) == sorted(inputs)
        assert out != inputs  # completion order, not request order
        assert out.index("0.01") < out.index("0.3")
        assert peak == 3
        assert time.monotonic() - started < 2


async def test_latency_is_simulated(http) -> None:
    async with EmulatorServer(users=dict([ALICE]), latency_ms=50, cores=2) as server:
        batch = await open_batch(http, server)
        started = time.monotonic()
        await batch.send(generic(*[("x", str(i)) for i in range(4)]))
        assert len(records(await batch.responses())) == 5
        assert time.monotonic() - started >= 0.1  # 4 requests x 50 ms on 2 cores


def test_latency_models_are_seeded() -> None:
    for spec in ("uniform:1,5", "exp:2", "normal:3,1"):
        m1, m2, m3 = LatencyModel(spec, 1), LatencyModel(spec, 1), LatencyModel(spec, 2)
        draws = [m1.sample() for _ in range(20)]
        assert draws == [m2.sample() for _ in range(20)]
        assert draws != [m3.sample() for _ in range(20)]
        assert all(x >= 0 for x in draws)
    uniform = LatencyModel("uniform:1,5", 3)
    assert all(0.001 <= uniform.sample() <= 0.005 for _ in range(100))
    assert LatencyModel(0, 0).is_zero
    assert LatencyModel("12.5", 0).sample() == 0.0125


async def test_purge_while_requests_are_in_flight_drops_their_answers(http) -> None:
    async def slow(arg: str) -> str:
        await asyncio.sleep(0.2)
        return arg

    async with EmulatorServer(users=dict([ALICE]), services={"Slow": slow}) as server:
        batch = await open_batch(http, server, "Slow")
        await batch.send(generic(("a", "1")), commit=False)
        async with http.post(batch.base + "/Purge", headers=H) as resp:
            assert resp.status == 200
        await asyncio.sleep(0.4)
        assert server.state.counters.responses_stored == 0
        async with http.get(
            batch.base + "/Status", headers={**H, "Accept": "application/json"}
        ) as resp:
            assert await resp.read() == b"1"  # a fresh, empty batch
