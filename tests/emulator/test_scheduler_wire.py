"""Raw-HTTP conformance of the emulator's scheduler half (spec §2.6–§2.8, §6.3–§8).

Requests are built by hand with a plain ``aiohttp.ClientSession``; replies are checked with
``xml.etree`` and byte comparisons written from the spec, never with the codecs under test.
Every test runs in both URI forms (``/WindowsHPC/HPCLAB/...`` and ``/WindowsHPC/...``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from yarl import URL

from hpcsoa.emulator import EmulatorServer
from hpcsoa.emulator._sched_handlers import install_scheduler

pytestmark = pytest.mark.integration

ALICE = ("CONTOSO\\alice", "s3cret")
BOB = ("CONTOSO\\bob", "b0b")
NS_COMMON = "http://schemas.microsoft.com/HPCS2008R2/common"
NS_SER = "http://schemas.microsoft.com/2003/10/Serialization/"
NS_ARR = "http://schemas.microsoft.com/2003/10/Serialization/Arrays"
NS_SCHED = "http://schemas.microsoft.com/HPCS2008R2/scheduler/"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
AV = "2012-11-01.4.0"
CANCELED_FAULT = (
    f'<HpcWebServiceFault xmlns="{NS_COMMON}" xmlns:i="{NS_XSI}"><Code>-2147220984</Code>'
    "<Message>Jobs in the Canceled state cannot be canceled.</Message>"
    '<Values i:nil="true" xmlns:a="http://schemas.datacontract.org/2004/07/'
    'System.Collections.Generic"/></HpcWebServiceFault>'
).encode()
DATE_RE = re.compile(r"^\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}:\d{2} (AM|PM)$")


def props_body(*pairs: tuple[str, str]) -> bytes:
    inner = "".join(f"<Property><Name>{n}</Name><Value>{v}</Value></Property>" for n, v in pairs)
    return f'<ArrayOfProperty xmlns="{NS_COMMON}">{inner}</ArrayOfProperty>'.encode()


def string_body(text: str) -> bytes:
    return f'<string xmlns="{NS_SER}">{text}</string>'.encode()


@dataclass
class Reply:
    status: int
    headers: Any
    body: bytes

    def xml(self) -> ET.Element:
        assert self.status == 200, (self.status, self.body)
        assert self.headers["Content-Type"] == "application/xml; charset=utf-8"
        return ET.fromstring(self.body)

    def props(self) -> list[tuple[str, str | None]]:
        """An ArrayOfProperty, checking the DataContract shape of every element."""
        root = self.xml()
        assert root.tag == f"{{{NS_COMMON}}}ArrayOfProperty"
        return [_prop(p) for p in root]

    def objects(self) -> list[dict[str, str | None]]:
        root = self.xml()
        assert root.tag == f"{{{NS_COMMON}}}ArrayOfObject"
        out = []
        for obj in root:
            assert obj.tag == f"{{{NS_COMMON}}}Object"
            (props,) = list(obj)
            assert props.tag == f"{{{NS_COMMON}}}Properties"
            out.append(dict(_prop(p) for p in props))
        return out

    def as_int(self) -> int:
        assert self.body.startswith(f'<int xmlns="{NS_SER}">'.encode()), self.body
        return int(self.xml().text or "")

    def fault(self, status: int, code: int | None = None) -> str:
        assert self.status == status, (self.status, self.body)
        root = ET.fromstring(self.body)
        assert root.tag == f"{{{NS_COMMON}}}HpcWebServiceFault", self.body
        assert [c.tag.split("}")[1] for c in root] == ["Code", "Message", "Values"]
        if code is not None:
            assert int(root[0].text or "") == code
        return root[1].text or ""

    def legacy(self, status: int) -> str:
        assert self.status == status, (self.status, self.body)
        root = ET.fromstring(self.body)
        assert root.tag == f"{{{NS_SER}}}string", self.body
        return root.text or ""


def _prop(el: ET.Element) -> tuple[str, str | None]:
    assert el.tag == f"{{{NS_COMMON}}}Property"
    name, value = list(el)
    assert name.tag == f"{{{NS_COMMON}}}Name"  # Name precedes Value (ordinal order)
    assert value.tag == f"{{{NS_COMMON}}}Value"
    if value.get(f"{{{NS_XSI}}}nil") == "true":
        assert value.text is None
        return name.text or "", None
    return name.text or "", value.text or ""


class Wire:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        base: str,
        prefix: str,
        user: tuple[str, str] = ALICE,
    ) -> None:
        self.http, self.base, self.prefix, self.user = http, base, prefix, user

    async def req(
        self,
        method: str,
        path: str,
        query: str = "",
        body: bytes | None = None,
        *,
        av: str | None = AV,
        auth: tuple[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        user, pw = auth or self.user
        h = {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}
        if av is not None:
            h["api-version"] = av
        if body is not None:
            h["Content-Type"] = "application/xml; charset=utf-8"
        h.update(headers or {})
        absolute = path.lower().startswith("/windowshpc")
        url = self.base + (path if absolute else self.prefix + path)
        url += f"?{query}" if query else ""
        data = body if body is not None else (b"" if method in ("POST", "PUT") else None)
        async with asyncio.timeout(10):
            async with self.http.request(method, URL(url, encoded=True), data=data, headers=h) as r:
                return Reply(r.status, r.headers, await r.read())

    async def job(self, *pairs: tuple[str, str]) -> int:
        return (await self.req("POST", "/Jobs", body=props_body(*pairs))).as_int()

    async def task(self, job_id: int, *pairs: tuple[str, str]) -> int:
        return (await self.req("POST", f"/Job/{job_id}/Tasks", body=props_body(*pairs))).as_int()

    async def state(self, job_id: int) -> str | None:
        return dict((await self.req("GET", f"/Job/{job_id}", "Properties=State")).props())["State"]

    async def wait(self, job_id: int, *states: str) -> str:
        async with asyncio.timeout(10):
            while (got := await self.state(job_id)) not in states:
                await asyncio.sleep(0.02)
        assert got is not None
        return got


@pytest.fixture
async def server() -> AsyncIterator[EmulatorServer]:
    srv = EmulatorServer(
        users=dict([ALICE, BOB]), cluster="HPCLAB", nodes=2, cores_per_node=4, task_runtime_ms=20
    )
    sched = install_scheduler(srv.state)
    async with srv:
        await sched.start()
        yield srv
        await sched.aclose()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(params=["/WindowsHPC/HPCLAB", "/WindowsHPC"], ids=["pre2016", "hpc2016"])
def w(request: pytest.FixtureRequest, server: EmulatorServer, http: aiohttp.ClientSession) -> Wire:
    return Wire(http, server.base_url, request.param)


# --- jobs ----------------------------------------------------------------------------------------


async def test_create_job_returns_int_and_get_job_echoes_canonical_names(w: Wire) -> None:
    reply = await w.req(
        "POST",
        "/Jobs",
        body=props_body(("name", "nightly-build"), ("UNITTYPE", "2"), ("MinNodes", "1")),
    )
    job_id = reply.as_int()
    assert reply.body == f'<int xmlns="{NS_SER}">{job_id}</int>'.encode()
    got = await w.req("GET", f"/Job/{job_id}", "Properties=Id,name,STATE,UnitType")
    assert got.props() == [
        ("Id", str(job_id)),
        ("Name", "nightly-build"),
        ("State", "Configuring"),
        ("UnitType", "Node"),
    ]
    assert got.body.startswith(
        f'<ArrayOfProperty xmlns="{NS_COMMON}" xmlns:i="{NS_XSI}">'
        "<Property><Name>Id</Name>".encode()
    )
    # An empty body (the Java sample) creates a default job (G32).
    assert (await w.req("POST", "/Jobs", body=b"")).as_int() == job_id + 1


async def test_get_job_all_properties_types_and_nil(w: Wire) -> None:
    job_id = await w.job(("Name", "x"))
    props = dict((await w.req("GET", f"/Job/{job_id}")).props())
    assert "Password" not in props
    assert props["Owner"] == ALICE[0]
    assert props["EndTime"] is None  # i:nil
    assert props["IsExclusive"] == "False"
    assert props["Priority"] == "Normal"
    assert props["JobTemplate"] == "Default"
    assert props["CreateTime"] is not None
    assert DATE_RE.match(props["CreateTime"]), props["CreateTime"]


async def test_bad_properties_and_values(w: Wire) -> None:
    job_id = await w.job()
    msg = (await w.req("GET", f"/Job/{job_id}", "Properties=Id,Bogus")).fault(400)
    assert "Bogus" in msg
    legacy = (await w.req("GET", f"/Job/{job_id}", "Properties=Bogus", av=None)).legacy(400)
    assert "Bogus" in legacy
    reply = await w.req("PUT", f"/Job/{job_id}", body=props_body(("MinCores", "lots")))
    assert "MinCores" in reply.fault(400)
    reply = await w.req("POST", "/Jobs", body=props_body(("Priority", "Urgent")), av=None)
    assert "Priority" in reply.legacy(400)
    reply = await w.req("POST", "/Jobs", body=b"<ArrayOfProperty><Property>")
    reply.fault(400)
    reply = await w.req("GET", f"/Job/{job_id}", "Render=Fancy")
    reply.fault(400)


async def test_unknown_job_is_404_in_both_error_formats(w: Wire) -> None:
    assert "999" in (await w.req("GET", "/Job/999")).fault(404)
    assert "999" in (await w.req("GET", "/Job/999", av=None)).legacy(404)
    assert (await w.req("GET", "/Job/999/Task/1")).status == 404
    (await w.req("GET", "/Job/abc")).fault(400)


async def test_set_job_properties_and_state_rules(w: Wire) -> None:
    job_id = await w.job()
    reply = await w.req(
        "PUT", f"/Job/{job_id}", body=props_body(("Name", "renamed"), ("Priority", "4"))
    )
    assert (reply.status, reply.body) == (200, b"")
    got = dict(
        (await w.req("GET", f"/Job/{job_id}", "Properties=Name,Priority,ExpandedPriority")).props()
    )
    assert got == {"Name": "renamed", "Priority": "Highest", "ExpandedPriority": "4000"}
    await w.req("POST", f"/Job/{job_id}/Cancel")
    reply = await w.req("PUT", f"/Job/{job_id}", body=props_body(("Name", "again")))
    assert "Canceled" in reply.fault(400)


async def test_submit_run_and_cancel_faults(w: Wire) -> None:
    job_id = await w.job(("Name", "run"))
    (await w.req("POST", f"/Job/{job_id}/Submit", body=props_body())).fault(400)  # no tasks
    await w.task(job_id, ("CommandLine", "echo hello"))
    reply = await w.req("POST", f"/Job/{job_id}/Submit", body=b"")
    assert (reply.status, reply.body) == (200, b"")
    assert await w.wait(job_id, "Finished") == "Finished"
    task = dict(
        (await w.req("GET", f"/Job/{job_id}/Task/1", "Properties=Output,ExitCode,State")).props()
    )
    assert task == {"Output": "hello\n", "ExitCode": "0", "State": "Finished"}
    msg = (await w.req("POST", f"/Job/{job_id}/Cancel", body=b"")).fault(400, -2147220984)
    assert msg == "Jobs in the Finished state cannot be canceled."
    (await w.req("POST", f"/Job/{job_id}/Submit", body=b"")).fault(400)


async def test_cancel_with_reason_then_cancel_again(w: Wire) -> None:
    job_id = await w.job()
    await w.task(job_id, ("CommandLine", "sleep 30"))
    await w.req("POST", f"/Job/{job_id}/Submit")
    await w.wait(job_id, "Running")
    reply = await w.req(
        "POST", f"/Job/{job_id}/Cancel", "Forced=true", body=string_body("stop now")
    )
    assert (reply.status, reply.body) == (200, b"")
    props = dict(
        (
            await w.req("GET", f"/Job/{job_id}", "Properties=State,PreviousState,ErrorMessage")
        ).props()
    )
    assert props == {"State": "Canceled", "PreviousState": "Canceling", "ErrorMessage": "stop now"}
    again = await w.req("POST", f"/Job/{job_id}/Cancel")
    assert again.body == CANCELED_FAULT  # byte-exact §2.7 example
    legacy = await w.req("POST", f"/Job/{job_id}/Cancel", av=None)
    assert legacy.status == 400
    assert legacy.body == string_body("Jobs in the Canceled state cannot be canceled.")
    ccp = await w.req("POST", f"/Job/{job_id}/Cancel", headers={"CCP_Version": "2.0"})
    assert ccp.legacy(400).startswith("Jobs in the Canceled")
    too_long = await w.req("POST", f"/Job/{job_id}/Cancel", body=string_body("x" * 129))
    too_long.fault(400)


async def test_requeue(w: Wire) -> None:
    job_id = await w.job()
    await w.task(job_id, ("CommandLine", "exit 1"))
    msg = (await w.req("POST", f"/Job/{job_id}/Requeue", body=props_body())).fault(400)
    assert msg.startswith("Only jobs that are in the Canceled or Failed state can be requeued")
    await w.req("POST", f"/Job/{job_id}/Submit")
    assert await w.wait(job_id, "Failed") == "Failed"
    await w.req("PUT", f"/Job/{job_id}/Task/1", body=props_body(("CommandLine", "echo fixed")))
    reply = await w.req("POST", f"/Job/{job_id}/Requeue", body=props_body(("Ignored", "x")))
    assert (reply.status, reply.body) == (200, b"")
    assert await w.wait(job_id, "Finished") == "Finished"
    props = dict((await w.req("GET", f"/Job/{job_id}", "Properties=RequeueCount")).props())
    assert props == {"RequeueCount": "1"}


async def test_job_list_defaults_owner_sort_and_filter(w: Wire, server: EmulatorServer) -> None:
    a = await w.job(("Name", "b-job"))
    b = await w.job(("Name", "a-job"))
    bob = Wire(w.http, w.base, w.prefix, BOB)
    c = await bob.job(("Name", "c-job"))
    await w.req("POST", f"/Job/{a}/Cancel")
    rows = (await w.req("GET", "/Jobs")).objects()
    assert [list(r) for r in rows] == [["Id", "Owner", "Name", "State", "Priority"]] * 3
    assert [r["Id"] for r in rows] == [str(a), str(b), str(c)]
    owner = quote(ALICE[0])
    rows = (await w.req("GET", "/Jobs", f"Owner={owner}&Properties=Id")).objects()
    assert rows == [{"Id": str(a)}, {"Id": str(b)}]
    rows = (await w.req("GET", "/Jobs", "sortjobsby=Name&properties=Name")).objects()
    assert [r["Name"] for r in rows] == ["a-job", "b-job", "c-job"]
    rows = (await w.req("GET", "/Jobs", "SortJobsBy=NoSuchProperty&Properties=Id")).objects()
    assert [r["Id"] for r in rows] == [str(a), str(b), str(c)]  # unknown → by Id
    flt = quote("JobState eq canceled")
    rows = (await w.req("GET", "/Jobs", f"$filter={flt}&Render=RestPropRender")).objects()
    assert [r["Id"] for r in rows] == [str(a)]
    both = quote("JobState eq Canceled and ChangeTimeFrom eq 2000-01-01")
    rows = (await w.req("GET", "/Jobs", f"$filter={both}&Render=RestPropRender")).objects()
    assert [r["Id"] for r in rows] == [str(a)]
    (await w.req("GET", "/Jobs", f"$filter={flt}")).fault(400)  # Render required
    (await w.req("GET", "/Jobs", f"$filter={flt}&Render=RestPropRender", av="2011-11-01")).fault(
        400
    )
    bad = quote("JobState eq Sleeping")
    (await w.req("GET", "/Jobs", f"$filter={bad}&Render=RestPropRender")).fault(400)


async def test_job_list_continuation(w: Wire) -> None:
    ids = [await w.job(("Name", f"j{i}")) for i in range(7)]
    query = "Properties=Id&RowsPerRead=3"
    seen: list[str] = []
    pages = 0
    token: str | None = None
    while True:
        q = query + (f"&QueryId={quote(token)}" if token else "")
        reply = await w.req("GET", "/Jobs", q)
        seen += [r["Id"] or "" for r in reply.objects()]
        pages += 1
        token = reply.headers.get("x-ms-continuation-QueryId")
        if token is None:
            break
        assert pages < 5
    assert (pages, seen) == (3, [str(i) for i in ids])
    # Exactly one full page: no continuation header (§2.8 [PROPOSAL]).
    reply = await w.req("GET", "/Jobs", "RowsPerRead=7")
    assert len(reply.objects()) == 7
    assert "x-ms-continuation-QueryId" not in reply.headers
    # Query names are case-insensitive, the token is bound to the query and expires.
    first = await w.req("GET", "/Jobs", "rowsperread=2")
    token = first.headers["x-ms-continuation-QueryId"]
    second = await w.req("GET", "/Jobs", f"ROWSPERREAD=2&queryid={quote(token)}")
    assert [r["Id"] for r in second.objects()] == [str(ids[2]), str(ids[3])]
    bob = Wire(w.http, w.base, w.prefix, BOB)
    (await bob.req("GET", "/Jobs", f"RowsPerRead=2&QueryId={quote(token)}")).fault(400)
    (await w.req("GET", "/Jobs", "RowsPerRead=2&QueryId=not-a-token")).fault(400)
    # The deprecated pre-SP3 mechanism (§2.8): CurrentObjectNumber echoed from the header.
    legacy = await w.req("GET", "/Jobs", "Properties=Id&RowsPerRead=3&CurrentObjectNumber=3")
    assert [r["Id"] for r in legacy.objects()] == [str(i) for i in ids[3:6]]
    assert legacy.headers["x-ms-continuation-CurrentObjectNumber"] == "6"
    last = await w.req("GET", "/Jobs", "Properties=Id&RowsPerRead=3&CurrentObjectNumber=6")
    assert [r["Id"] for r in last.objects()] == [str(ids[6])]
    assert "x-ms-continuation-CurrentObjectNumber" not in last.headers
    (await w.req("GET", "/Jobs", "CurrentObjectNumber=-1")).fault(400)
    (await w.req("GET", "/Jobs", "RowsPerRead=0")).fault(400)


async def test_render_job_xml_and_create_from_it(w: Wire) -> None:
    job_id = await w.job(("Name", "orig"), ("Priority", "AboveNormal"))
    await w.task(job_id, ("CommandLine", "echo a"), ("Name", "t1"))
    await w.req("POST", f"/Job/{job_id}/CustomProperties", body=props_body(("color", "blue")))
    reply = await w.req("GET", f"/Job/{job_id}", "Render=HpcJobXml")
    root = reply.xml()
    assert root.tag == f"{{{NS_SCHED}}}Job"
    assert (root.get("Version"), root.get("Id"), root.get("Name")) == ("3.000", str(job_id), "orig")
    assert [c.tag.split("}")[1] for c in root] == ["Dependencies", "CustomProperties", "Tasks"]
    tasks = root.find(f"{{{NS_SCHED}}}Tasks")
    assert tasks is not None
    assert [t.get("CommandLine") for t in tasks] == ["echo a"]
    small = await w.req("GET", f"/Job/{job_id}", "Render=HpcJobXml&Properties=Id,State")
    assert small.body == (
        f'<Job Version="3.000" Id="{job_id}" State="Configuring" xmlns="{NS_SCHED}" />'.encode()
    )
    copy = (await w.req("POST", "/Jobs/JobFile", body=reply.body)).as_int()
    assert copy != job_id
    props = dict(
        (await w.req("GET", f"/Job/{copy}", "Properties=Name,Priority,State,Owner")).props()
    )
    assert props == {
        "Name": "orig",
        "Priority": "AboveNormal",
        "State": "Configuring",
        "Owner": ALICE[0],
    }
    custom = (await w.req("GET", f"/Job/{copy}/CustomProperties")).props()
    assert custom == [("color", "blue")]
    assert len((await w.req("GET", f"/Job/{copy}/Tasks")).objects()) == 1


async def test_create_job_from_xml_variants(w: Wire) -> None:
    doc = (
        '<Job Version="3.000" Name="sweep" UnitType="Core" MinCores="1" MaxCores="1">'
        "<Dependencies/>"
        '<Tasks><Task Version="3.000" Name="t1" CommandLine="echo hello" Type="Basic"/>'
        '<Task Version="3.000" Name="ps" CommandLine="echo *" Type="ParametricSweep" '
        'StartValue="1" EndValue="3" IncrementValue="1"/></Tasks></Job>'
    )
    raw_ns = doc.replace("<Job ", f'<Job xmlns="{NS_SCHED}" ', 1)
    wrapped = string_body(raw_ns.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
    for body in (raw_ns.encode(), doc.encode(), wrapped):
        job_id = (await w.req("POST", "/Jobs/JobFile", body=body)).as_int()
        rows = (await w.req("GET", f"/Job/{job_id}/Tasks", "ExpandParametric=false")).objects()
        assert [r["Name"] for r in rows] == ["t1", "ps"]
    (await w.req("POST", "/Jobs/JobFile", body=b"<Job><Tasks>")).fault(400)
    (await w.req("POST", "/Jobs/JobFile", body=b"<NotAJob/>")).fault(400)
    dtd = b'<!DOCTYPE Job [<!ENTITY x "y">]><Job Name="&x;"/>'
    (await w.req("POST", "/Jobs/JobFile", body=dtd)).fault(400)
    bad_value = b'<Job><Tasks><Task MinCores="many"/></Tasks></Job>'
    assert "MinCores" in (await w.req("POST", "/Jobs/JobFile", body=bad_value)).fault(400)


async def test_custom_properties_and_environment(w: Wire) -> None:
    job_id = await w.job()
    ok = await w.req(
        "POST", f"/Job/{job_id}/CustomProperties", body=props_body(("a", "1"), ("b", "2"))
    )
    assert (ok.status, ok.body) == (200, b"")
    assert (await w.req("GET", f"/Job/{job_id}/CustomProperties", "Names=b")).props() == [
        ("b", "2")
    ]
    await w.req("POST", f"/Job/{job_id}/EnvVariables", body=props_body(("X", "1"), ("Y", "2")))
    await w.req("POST", f"/Job/{job_id}/EnvVariables", body=props_body(("Y", "")))  # removes
    env = (await w.req("GET", f"/Job/{job_id}/EnvVariables", "names=X,Y,Z")).props()
    assert env == [("X", "1"), ("Y", ""), ("Z", "")]  # missing names: empty string (§7.10)
    assert (await w.req("GET", f"/Job/{job_id}/EnvVariables")).props() == [("X", "1")]
    bob = Wire(w.http, w.base, w.prefix, BOB)
    (await bob.req("POST", f"/Job/{job_id}/EnvVariables", body=props_body(("X", "2")))).fault(403)


# --- tasks and subtasks --------------------------------------------------------------------------


async def test_tasks_expand_parametric_and_paging(w: Wire) -> None:
    job_id = await w.job()
    sweep = await w.task(
        job_id,
        ("Commandline", "echo *"),  # the Python sample's spelling (§2.6)
        ("Type", "ParametricSweep"),
        ("StartValue", "1"),
        ("EndValue", "3"),
    )
    basic = await w.task(job_id, ("CommandLine", "hostname"), ("Name", "basic"))
    assert (sweep, basic) == (1, 2)
    msg = (await w.req("GET", f"/Job/{job_id}/Task/1/SubTask/1")).fault(400)
    assert "the specified subtask has not been expanded yet" in msg.lower()
    await w.req("POST", f"/Job/{job_id}/Submit")
    await w.wait(job_id, "Finished")
    rows = (await w.req("GET", f"/Job/{job_id}/Tasks")).objects()
    assert [r["TaskId"] for r in rows] == [
        f"{job_id}.1.1",
        f"{job_id}.1.2",
        f"{job_id}.1.3",
        f"{job_id}.2",
    ]
    assert list(rows[0]) == [
        "TaskId",
        "Name",
        "State",
        "CommandLine",
        "ExitCode",
        "ParentJobId",
        "JobTaskId",
        "InstanceId",
    ]
    assert [r["CommandLine"] for r in rows] == ["echo 1", "echo 2", "echo 3", "hostname"]
    masters = (await w.req("GET", f"/Job/{job_id}/Tasks", "ExpandParametric=False")).objects()
    assert len(masters) == 2
    # §2.8 example: 4 tasks with RowsPerRead=3 → 3 rows + header, then 1 row and no header.
    page1 = await w.req("GET", f"/Job/{job_id}/Tasks", "RowsPerRead=3&Properties=TaskId")
    assert len(page1.objects()) == 3
    token = page1.headers["x-ms-continuation-QueryId"]
    page2 = await w.req(
        "GET", f"/Job/{job_id}/Tasks", f"RowsPerRead=3&Properties=TaskId&QueryId={quote(token)}"
    )
    assert page2.objects() == [{"TaskId": f"{job_id}.2"}]
    assert "x-ms-continuation-QueryId" not in page2.headers
    sub = dict((await w.req("GET", f"/Job/{job_id}/Task/1/SubTask/2")).props())
    assert (sub["TaskId"], sub["InstanceId"], sub["Output"], sub["State"]) == (
        f"{job_id}.1.2",
        "2",
        "2\n",
        "Finished",
    )
    (await w.req("GET", f"/Job/{job_id}/Task/1/SubTask/4")).fault(404)
    (await w.req("GET", f"/Job/{job_id}/Task/2/SubTask/1")).fault(404)
    flt = quote("TaskState eq Finished")
    rows = (
        await w.req("GET", f"/Job/{job_id}/Tasks", f"$filter={flt}&Render=RestPropRender")
    ).objects()
    assert len(rows) == 4
    rows = (
        await w.req("GET", f"/Job/{job_id}/Tasks", "SortTasksBy=CommandLine&Properties=CommandLine")
    ).objects()
    assert [r["CommandLine"] for r in rows] == ["echo 1", "echo 2", "echo 3", "hostname"]


async def test_task_get_set_xml_and_case_insensitive_paths(w: Wire) -> None:
    job_id = await w.job()
    await w.task(job_id, ("CommandLine", "echo x"), ("Name", "first"))
    path = w.prefix.lower() + f"/job/{job_id}/TASK/1"
    assert dict((await w.req("GET", path, "PROPERTIES=name")).props()) == {"Name": "first"}
    reply = await w.req(
        "PUT", f"/Job/{job_id}/Task/1", body=props_body(("name", "renamed"), ("MinCores", "2"))
    )
    assert (reply.status, reply.body) == (200, b"")
    xml = await w.req("GET", f"/Job/{job_id}/Task/1", "Render=HpcJobXml&Properties=Name,State")
    expected = f'<Task Version="3.000" Name="renamed" State="Configuring" xmlns="{NS_SCHED}" />'
    assert xml.body == expected.encode()
    full = (await w.req("GET", f"/Job/{job_id}/Task/1", "Render=HpcJobXml")).xml()
    assert full.tag == f"{{{NS_SCHED}}}Task"
    assert full.get("MinCores") == "2"
    (await w.req("PUT", f"/Job/{job_id}/Task/1", body=props_body(("ExitCode", "0")))).fault(400)
    (await w.req("GET", f"/Job/{job_id}/Task/1", "Properties=NoSuch")).fault(400)
    await w.req("POST", f"/Job/{job_id}/Task/1/CustomProperties", body=props_body(("k", "v")))
    assert (await w.req("GET", f"/Job/{job_id}/Task/1/CustomProperties")).props() == [("k", "v")]
    await w.req("POST", f"/Job/{job_id}/Task/1/EnvVariables", body=props_body(("E", "1")))
    env = (await w.req("GET", f"/Job/{job_id}/Task/1/EnvVariables", "Names=E,F")).props()
    assert env == [("E", "1"), ("F", "")]


async def test_cancel_and_requeue_task(w: Wire) -> None:
    job_id = await w.job(("RunUntilCanceled", "true"))
    await w.task(job_id, ("CommandLine", "sleep 30"))
    await w.req("POST", f"/Job/{job_id}/Submit")
    await w.wait(job_id, "Running")
    reply = await w.req("POST", f"/Job/{job_id}/Task/1/Cancel", body=string_body("enough"))
    assert (reply.status, reply.body) == (200, b"")
    task = dict(
        (await w.req("GET", f"/Job/{job_id}/Task/1", "Properties=State,ErrorMessage")).props()
    )
    assert task == {"State": "Failed", "ErrorMessage": "enough"}  # §8.5: Failed, not Canceled
    msg = (await w.req("POST", f"/Job/{job_id}/Task/1/Cancel")).fault(400, -2147220984)
    assert "Failed" in msg
    reply = await w.req("POST", f"/Job/{job_id}/Task/1/Requeue", body=props_body())
    assert reply.status == 200
    task = dict(
        (await w.req("GET", f"/Job/{job_id}/Task/1", "Properties=State,RequeueCount")).props()
    )
    assert task["RequeueCount"] == "1"
    assert task["State"] in ("Queued", "Running")
    await w.req("POST", f"/Job/{job_id}/Cancel")
    assert await w.state(job_id) == "Canceled"


async def test_cancel_task_fails_the_job(w: Wire) -> None:
    job_id = await w.job()
    await w.task(job_id, ("CommandLine", "sleep 30"))
    await w.req("POST", f"/Job/{job_id}/Submit")
    await w.wait(job_id, "Running")
    await w.req("POST", f"/Job/{job_id}/Task/1/Cancel")
    assert await w.wait(job_id, "Failed") == "Failed"


async def test_subtask_operations(w: Wire) -> None:
    job_id = await w.job()
    await w.task(
        job_id, ("CommandLine", "sleep 30"), ("Type", "ParametricSweep"), ("EndValue", "2")
    )
    await w.req("POST", f"/Job/{job_id}/Submit")
    await w.wait(job_id, "Running")
    reply = await w.req(
        "POST", f"/Job/{job_id}/Task/1/SubTask/1/Cancel", "Forced=True", body=string_body("x")
    )
    assert (reply.status, reply.body) == (200, b"")
    sub = dict(
        (
            await w.req("GET", f"/Job/{job_id}/Task/1/SubTask/1", "Properties=State,ErrorMessage")
        ).props()
    )
    assert sub == {"State": "Failed", "ErrorMessage": "x"}
    # Set Subtask Properties may carry <Type> between Name and Value (§8.9).
    body = (
        f'<ArrayOfProperty xmlns="{NS_COMMON}"><Property><Name>CommandLine</Name>'
        "<Type>System.String</Type><Value>echo patched</Value></Property></ArrayOfProperty>"
    ).encode()
    assert (await w.req("PUT", f"/Job/{job_id}/Task/1/SubTask/1", body=body)).status == 200
    assert (
        await w.req("POST", f"/Job/{job_id}/Task/1/SubTask/1/Requeue", body=props_body())
    ).status == 200
    async with asyncio.timeout(10):
        while (
            dict(
                (await w.req("GET", f"/Job/{job_id}/Task/1/SubTask/1", "Properties=State")).props()
            )["State"]
            != "Finished"
        ):
            await asyncio.sleep(0.02)
    sub = dict(
        (
            await w.req("GET", f"/Job/{job_id}/Task/1/SubTask/1", "Properties=Output,CommandLine")
        ).props()
    )
    assert sub == {"Output": "patched\n", "CommandLine": "echo patched"}
    xml = await w.req(
        "GET", f"/Job/{job_id}/Task/1/SubTask/2", "Render=HpcJobXml&Properties=InstanceId"
    )
    assert xml.body == f'<Task Version="3.000" InstanceId="2" xmlns="{NS_SCHED}" />'.encode()
    (await w.req("POST", f"/Job/{job_id}/Task/1/SubTask/2/Requeue")).fault(400)  # running


# --- nodes, groups, cluster ----------------------------------------------------------------------


async def test_get_node_and_node_list(w: Wire) -> None:
    props = (await w.req("GET", "/Node/CN01")).props()
    names = [n for n, _ in props]
    assert names == [
        "Availability",
        "AzureServiceName",
        "CpuSpeed",
        "DnsSuffix",
        "Guid",
        "Id",
        "JobType",
        "Location",
        "MemorySize",
        "MoveToOffline",
        "Name",
        "NodeGroups",
        "NumCores",
        "NumSockets",
        "OfflineTime",
        "OnlineTime",
        "Reachable",
        "State",
    ]
    d = dict(props)
    assert (d["Name"], d["State"], d["NumCores"], d["Reachable"]) == ("CN01", "Online", "4", "True")
    assert d["OfflineTime"] is None
    assert "CN99" in (await w.req("GET", "/Node/CN99")).fault(404)
    (await w.req("GET", "/Node/CN01", av=None)).fault(400)  # api-version required
    page = await w.req("GET", "/Nodes", "Properties=Name,Id,MemorySize&RowsPerRead=2")
    assert page.objects() == [
        {"Name": "HN01", "Id": "1", "MemorySize": "8192"},
        {"Name": "CN01", "Id": "2", "MemorySize": "8192"},
    ]
    token = page.headers["x-ms-continuation-QueryId"]
    rest = await w.req(
        "GET", "/Nodes", f"Properties=Name,Id,MemorySize&RowsPerRead=2&QueryId={quote(token)}"
    )
    assert [r["Name"] for r in rest.objects()] == ["CN02"]
    assert "x-ms-continuation-QueryId" not in rest.headers
    flt = quote("NodeState eq online")
    rows = (
        await w.req("GET", "/Nodes", f"$filter={flt}&Render=RestPropRender&Properties=Name")
    ).objects()
    assert len(rows) == 3
    flt = quote("NodeState eq draining")
    rows = (await w.req("GET", "/Nodes", f"$filter={flt}&Render=RestPropRender")).objects()
    assert rows == []
    rows = (await w.req("GET", "/Nodes", "SortNodesBy=Name&Properties=Name")).objects()
    assert [r["Name"] for r in rows] == ["CN01", "CN02", "HN01"]
    (await w.req("GET", "/Nodes", "Properties=Bogus")).fault(400)


async def test_node_groups_templates_head_node(w: Wire) -> None:
    groups = (await w.req("GET", "/Nodegroups")).objects()  # the .NET client's spelling
    assert [list(g) for g in groups] == [["Name", "Description"]] * 3
    assert [g["Name"] for g in groups] == ["HeadNodes", "ComputeNodes", "WCFBrokerNodes"]
    members = await w.req("GET", "/NodeGroup/ComputeNodes")
    assert (
        members.body
        == (
            f'<ArrayOfstring xmlns="{NS_ARR}" xmlns:i="{NS_XSI}">'
            "<string>CN01</string><string>CN02</string></ArrayOfstring>"
        ).encode()
    )
    (await w.req("GET", "/NodeGroup/Nope")).fault(404)
    templates = await w.req("GET", "/JobTemplates", av=None)
    assert (
        templates.body
        == (
            f'<ArrayOfstring xmlns="{NS_ARR}" xmlns:i="{NS_XSI}">'
            "<string>Default</string></ArrayOfstring>"
        ).encode()
    )
    head = await w.req("GET", "/ActiveHeadnode", av="2012-03-31.3.4")
    assert head.body == string_body("HN01")
    (await w.req("GET", "/ActiveHeadnode", av="2011-11-01")).fault(400)


# --- auth and SOA service jobs -------------------------------------------------------------------


async def test_wrong_credentials(w: Wire) -> None:
    reply = await w.req("GET", "/Jobs", auth=(ALICE[0], "wrong"))
    assert reply.status == 401
    assert reply.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert b"wrong" not in reply.body


async def test_others_jobs_are_readable_not_writable(w: Wire) -> None:
    job_id = await w.job(("Name", "mine"))
    bob = Wire(w.http, w.base, w.prefix, BOB)
    assert dict((await bob.req("GET", f"/Job/{job_id}", "Properties=Name")).props()) == {
        "Name": "mine"
    }
    (await bob.req("PUT", f"/Job/{job_id}", body=props_body(("Name", "theirs")))).fault(403)
    (await bob.req("POST", f"/Job/{job_id}/Tasks", body=props_body())).fault(403)
    (await bob.req("POST", f"/Job/{job_id}/Cancel")).fault(403)


async def test_soa_sessions_are_service_jobs(w: Wire) -> None:
    info = {
        "MaxMessageSize": 65536,
        "Password": ALICE[1],
        "Runtime": -1,
        "ServiceName": "CcpEchoSvc",
        "Username": ALICE[0],
    }
    created = await w.req(
        "POST",
        "/Sessions/Create",
        "durable=false",
        json.dumps(info).encode(),
        av="2011-11-01",
        headers={"Content-Type": "application/json; charset=utf-8", "Accept": "application/json"},
    )
    assert created.status == 201, created.body
    sid = json.loads(created.body)["Id"]
    job = dict((await w.req("GET", f"/Job/{sid}", "Properties=State,ServiceName,Owner")).props())
    assert job == {"State": "Running", "ServiceName": "CcpEchoSvc", "Owner": ALICE[0]}
    rows = (await w.req("GET", "/Jobs", "Properties=Id,ServiceName")).objects()
    assert {"Id": str(sid), "ServiceName": "CcpEchoSvc"} in rows
    assert (await w.job()) == sid + 1  # one id sequence (G28)
    closed = await w.req("POST", f"/Session/{sid}/Close", av="2011-11-01")
    assert closed.status == 200
    assert await w.state(sid) == "Finished"
