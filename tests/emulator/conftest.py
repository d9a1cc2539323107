"""Fixtures for the raw-HTTP conformance suite of the emulator's SOA half (issue 3).

These tests check the *server* against ``spec/hpc-rest-api.md``. They are written from the spec
only: requests are built by hand with a plain ``aiohttp.ClientSession`` (never our client, never
the protocol codecs) and replies are compared against the spec's bytes. Everything here is
deliberately naive: a tiny generic-framing splitter, ``xml.etree`` for XML, ``json`` for JSON.

Fixtures:

* ``start_server(**overrides)``: start an :class:`hpcsoa.emulator.EmulatorServer` on
  127.0.0.1 port 0 with the suite's defaults (cluster ``HPCLAB``, machine ``CN01``, users alice
  and bob) and stop it at teardown.
* ``server``: one default server.
* ``http``: a plain ``aiohttp.ClientSession``.
* ``wire`` / ``bob``: :class:`Wire` helpers speaking for ``CONTOSO\\alice`` / ``CONTOSO\\bob``.
* ``spec``: this module (constants, builders, parsers), since test modules cannot import a
  non-package conftest reliably.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import pathlib
import re
import sys
import types
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from yarl import URL

if TYPE_CHECKING:
    from multidict import CIMultiDictProxy

# --- spec constants (copied from the spec text, not from the code under test) ---------------

API_VERSION = "2011-11-01"
CLUSTER = "HPCLAB"
MACHINE = "CN01"
ALICE = ("CONTOSO\\alice", "s3cret")
BOB = ("CONTOSO\\bob", "b0b")
USERS = {ALICE[0]: ALICE[1], BOB[0]: BOB[1]}

PRE2016 = "/WindowsHPC/HPCLAB"  # §2.1 before HPC Pack 2016: cluster segment
HPC2016 = "/WindowsHPC"  # §2.1 HPC Pack 2016: no cluster segment

SEP = b"\xef\xbf\xbf"  # §3.6 U+FFFF in UTF-8
END = b"\x00"  # §3.6 record terminator
GENERIC_REPLY_ACTION = (
    "http://hpc.microsoft.com/GenericService/IGenericService/GenericOperationResponse"
)
GENERIC_REQUEST_ACTION = "http://hpc.microsoft.com/GenericService/IGenericService/GenericOperation"
EOR_ACTION = "http://hpc.microsoft.com/EndOfGetResponse"
ECHO_ACTION = "http://tempuri.org/IEchoSvc/Echo"
ECHO_REPLY_ACTION = "http://tempuri.org/IEchoSvc/EchoResponse"

NS_COMMON = "http://schemas.microsoft.com/HPCS2008R2/common"
NS_SOA = "http://hpc.microsoft.com/"
NS_STATUS = "http://hpc.microsoft.com"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS_SOAP = "http://www.w3.org/2003/05/soap-envelope"
NS_WSA = "http://www.w3.org/2005/08/addressing"
NS_HPC = "http://www.microsoft.com/hpc"
NS_TEMPURI = "http://tempuri.org/"
NS_GENERIC = "http://hpc.microsoft.com/GenericService"
NS_SER = "http://schemas.microsoft.com/2003/10/Serialization/"

# §3.7 fault codes
INVALID_SESSION_ID = 50331649
ACCESS_DENIED_BROKER_QUEUE = 50331653
INVALID_ATTACH_DURABLE = 50331658
INVALID_ATTACH_INTERACTIVE = 50331659
SERVICE_NOT_FOUND = 50331678
API_VERSION_INCORRECT = 50331700
ARGUMENT_ERROR = 251723775
EOM_REJECTED = 16777227
EOM_REJECT_GET_RESPONSE = 16777240
EOM_REJECT_END_REQUESTS = 16777241
FLUSH_REJECTED = 16777242
CLIENT_TIMEOUT = 67108867

STATUS_NAMES = {0: "Unknown", 1: "Ready", 2: "Processing", 3: "Finished"}

# Generous bound for anything that should happen "now" on a loaded 2-core machine.
PROMPT = 5.0

SERVER_DEFAULTS: dict[str, Any] = {
    "users": USERS,
    "cluster": CLUSTER,
    "machine_name": MACHINE,
    "latency_ms": 0,
    "cores": 8,
    "client_idle_timeout_ms": 60_000,
    "session_idle_timeout_ms": 60_000,
}


def _b(value: bool) -> str:
    return "true" if value else "false"


def basic(user: str, password: str) -> str:
    """Authorization header value built by hand (§2.4), never aiohttp.BasicAuth."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


# --- generic framing (§3.6) -------------------------------------------------------------------


def generic_body(*records: tuple[str, str]) -> bytes:
    """Send Requests body: ``input EF BF BF userdata 00`` per record."""
    return b"".join(i.encode() + SEP + u.encode() + END for i, u in records)


def echo_record(text: str, userdata: str, machine: str = MACHINE) -> bytes:
    """The generic CcpEchoSvc reply record of §3.4/§3.6 (without terminator)."""
    return SEP.join(
        [
            GENERIC_REPLY_ACTION.encode(),
            f"{machine} (GenericService): {text}".encode(),
            userdata.encode(),
        ]
    )


def eor_record(count: int, reason: str = "Success") -> bytes:
    return SEP.join([EOR_ACTION.encode(), str(count).encode(), reason.encode()])


def split_records(body: bytes) -> list[bytes]:
    """Split a complete generic body into records; every record must be 00-terminated."""
    assert body.endswith(END) or body == b"", f"generic body not 00-terminated: {body[-80:]!r}"
    return body.split(END)[:-1] if body else []


@dataclass
class GenericBody:
    """A parsed Get Responses generic body: response records and the optional trailer."""

    records: list[bytes]
    eor: tuple[int, str] | None

    @property
    def fields(self) -> list[list[bytes]]:
        return [r.split(SEP) for r in self.records]

    @property
    def userdata(self) -> list[str]:
        return [r.split(SEP)[2].decode() for r in self.records]


def parse_generic(body: bytes) -> GenericBody:
    recs = split_records(body)
    for r in recs:
        assert len(r.split(SEP)) == 3, f"record has not 3 fields: {r!r}"
        assert not r.startswith(EOR_ACTION.encode()) or r is recs[-1], (
            f"EndOfResponses not last: {body!r}"
        )
    if recs and recs[-1].startswith(EOR_ACTION.encode() + SEP):
        _, count, reason = recs[-1].split(SEP)
        return GenericBody(recs[:-1], (int(count), reason.decode()))
    return GenericBody(recs, None)


# --- SOAP (§3.5, §4.6) ------------------------------------------------------------------------


def soap_envelope(
    action: str,
    body_xml: str,
    *,
    message_id: str | None = None,
    userdata: str | None = None,
    client_id: str | None = None,
    prefix: str = "HPCServer2008",
) -> str:
    """One SOAP 1.2 request envelope as in §3.5 (message_id ``""`` omits the header)."""
    mid = f"urn:uuid:{uuid.uuid4()}" if message_id is None else message_id
    headers = [f'<a:Action s:mustUnderstand="1">{action}</a:Action>']
    if mid:
        headers.append(f"<a:MessageID>{mid}</a:MessageID>")
    if userdata is not None:
        headers.append(
            f'<{prefix}_Broker_UserDataNS xmlns="{NS_HPC}">{userdata}</{prefix}_Broker_UserDataNS>'
        )
    if client_id is not None:
        headers.append(
            f'<{prefix}_Broker_ClientIdNS xmlns="{NS_HPC}">{client_id}</{prefix}_Broker_ClientIdNS>'
        )
    return (
        f'<s:Envelope xmlns:s="{NS_SOAP}" xmlns:a="{NS_WSA}"><s:Header>'
        + "".join(headers)
        + f"</s:Header><s:Body>{body_xml}</s:Body></s:Envelope>"
    )


def echo_envelope(text: str, **kw: Any) -> str:
    return soap_envelope(
        ECHO_ACTION, f'<Echo xmlns="{NS_TEMPURI}"><input>{text}</input></Echo>', **kw
    )


def generic_envelope(text: str, **kw: Any) -> str:
    return soap_envelope(
        GENERIC_REQUEST_ACTION,
        f'<GenericOperation xmlns="{NS_GENERIC}"><args>{text}</args></GenericOperation>',
        **kw,
    )


def soap_array(*envelopes: str, root: str = "HPCServer2008_WebAPI_MessageArray") -> bytes:
    return (f"<{root}>" + "".join(envelopes) + f"</{root}>").encode()


@dataclass
class Envelope:
    """The interesting parts of one response envelope."""

    element: ET.Element
    action: str | None
    relates_to: str | None
    to: str | None
    request_action: str | None
    userdata: str | None
    callback_id: str | None  # None = header absent; "" = empty element
    body_child: ET.Element | None

    @property
    def is_eor(self) -> bool:
        return self.action == EOR_ACTION

    @property
    def is_fault(self) -> bool:
        return self.body_child is not None and self.body_child.tag == f"{{{NS_SOAP}}}Fault"

    def result_text(self, operation: str = "Echo", ns: str = NS_TEMPURI) -> str | None:
        assert self.body_child is not None
        assert self.body_child.tag == f"{{{ns}}}{operation}Response", self.body_child.tag
        res = self.body_child.find(f"{{{ns}}}{operation}Result")
        assert res is not None
        return res.text

    def eor(self) -> tuple[int, str]:
        assert self.body_child is not None
        assert self.body_child.tag == f"{{{NS_TEMPURI}}}EndOfResponses", self.body_child.tag
        count = self.body_child.find(f"{{{NS_TEMPURI}}}Count")
        reason = self.body_child.find(f"{{{NS_TEMPURI}}}Reason")
        assert count is not None
        assert reason is not None
        return int(count.text or ""), reason.text or ""


def _hpc_header(header: ET.Element, name: str) -> str | None:
    el = header.find(f"{{{NS_HPC}}}HPCServer2008_{name}")
    if el is None:
        return None
    return el.text or ""


def parse_envelope(env: ET.Element) -> Envelope:
    assert env.tag == f"{{{NS_SOAP}}}Envelope", env.tag
    header = env.find(f"{{{NS_SOAP}}}Header")
    body = env.find(f"{{{NS_SOAP}}}Body")
    assert header is not None, "envelope without s:Header"
    assert body is not None, "envelope without s:Body"

    def text(tag: str) -> str | None:
        el = header.find(tag)
        return None if el is None else (el.text or "")

    children = list(body)
    return Envelope(
        element=env,
        action=text(f"{{{NS_WSA}}}Action"),
        relates_to=text(f"{{{NS_WSA}}}RelatesTo"),
        to=text(f"{{{NS_WSA}}}To"),
        request_action=_hpc_header(header, "Broker_RequestActionNS"),
        userdata=_hpc_header(header, "Broker_UserDataNS"),
        callback_id=_hpc_header(header, "Broker_ResponseCallbackId"),
        body_child=children[0] if children else None,
    )


@dataclass
class SoapBody:
    root_tag: str
    envelopes: list[Envelope]

    @property
    def responses(self) -> list[Envelope]:
        return [e for e in self.envelopes if not e.is_eor]

    @property
    def eor(self) -> tuple[int, str] | None:
        eors = [e for e in self.envelopes if e.is_eor]
        assert len(eors) <= 1, "more than one EndOfResponses"
        if not eors:
            return None
        assert self.envelopes[-1].is_eor, "EndOfResponses is not the last envelope"
        return eors[0].eor()


def parse_soap(body: bytes) -> SoapBody:
    root = ET.fromstring(body)
    return SoapBody(root.tag, [parse_envelope(e) for e in root])


# --- faults (§2.7) ----------------------------------------------------------------------------


@dataclass
class Fault:
    code: int
    message: str
    fmt: str


@dataclass
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    def fault(self) -> Fault:
        """Parse the HpcWebServiceFault (XML or compact JSON per Content-Type)."""
        ctype = self.content_type.lower()
        assert self.body, f"status {self.status} without a fault body"
        if "json" in ctype:
            data = json.loads(self.body)
            assert isinstance(data, dict), self.body
            # G12: compact, alphabetical keys.
            assert list(data) == ["Code", "Message", "Values"], self.body
            assert isinstance(data["Code"], int), self.body
            assert b'{"Code":' == self.body[:8], self.body
            return Fault(data["Code"], data["Message"], "json")
        assert "xml" in ctype, f"fault with Content-Type {ctype!r}: {self.body[:200]!r}"
        root = ET.fromstring(self.body)
        assert root.tag == f"{{{NS_COMMON}}}HpcWebServiceFault", root.tag
        names = [c.tag.split("}")[1] for c in root]
        assert names == ["Code", "Message", "Values"], names
        code_el = root.find(f"{{{NS_COMMON}}}Code")
        msg_el = root.find(f"{{{NS_COMMON}}}Message")
        assert code_el is not None
        assert msg_el is not None
        return Fault(int(code_el.text or ""), msg_el.text or "", "xml")

    def expect(self, status: int, code: int | None = None, *, codes: Iterable[int] = ()) -> Fault:
        """Assert an error reply: status, fault body, and fault code (one of ``codes``)."""
        assert self.status == status, f"expected {status}, got {self.status}: {self.body[:300]!r}"
        fault = self.fault()
        allowed = set(codes) | ({code} if code is not None else set())
        if allowed:
            assert fault.code in allowed, f"fault code {fault.code} not in {allowed}: {fault}"
        return fault


# --- streamed Get Responses -------------------------------------------------------------------


class ResponseStream:
    """An open Get Responses body read incrementally with bounded waits.

    The request runs as a task, so a server that sends the status line only with the first
    record is not mistaken for a hang; every read is bounded by ``asyncio.timeout``.
    """

    def __init__(self, pending: asyncio.Task[aiohttp.ClientResponse]) -> None:
        self._pending = pending
        self.resp: aiohttp.ClientResponse | None = None
        self.buf = bytearray()
        self.eof = False

    async def started(self, timeout: float = PROMPT) -> aiohttp.ClientResponse:
        """The response once its status line and headers arrived."""
        if self.resp is None:
            async with asyncio.timeout(timeout):
                self.resp = await asyncio.shield(self._pending)
        return self.resp

    async def _more(self) -> None:
        resp = await self.started()
        chunk = await resp.content.readany()
        if not chunk:
            self.eof = True
        self.buf += chunk

    async def read_records(self, n: int, timeout: float = PROMPT) -> list[bytes]:
        """Wait for at least ``n`` complete generic records (00-terminated) in total."""
        async with asyncio.timeout(timeout):
            while self.buf.count(END) < n and not self.eof:
                await self._more()
        recs = bytes(self.buf).split(END)[:-1]
        assert len(recs) >= n, f"stream ended after {len(recs)} records: {bytes(self.buf)!r}"
        return recs

    async def read_to_eof(self, timeout: float = PROMPT) -> bytes:
        async with asyncio.timeout(timeout):
            while not self.eof:
                await self._more()
        return bytes(self.buf)

    async def read_envelopes(self, n: int, timeout: float = PROMPT) -> list[Envelope]:
        """Wait for at least ``n`` complete SOAP envelopes (incremental XML parse)."""
        parser = ET.XMLPullParser(events=("start", "end"))
        fed = 0
        found: list[Envelope] = []
        depth = 0

        def feed() -> None:
            nonlocal depth, fed
            parser.feed(bytes(self.buf[fed:]))
            fed = len(self.buf)
            for event, el in parser.read_events():
                if event == "start":
                    depth += 1
                else:
                    depth -= 1
                    if depth == 1:
                        found.append(parse_envelope(el))

        feed()
        async with asyncio.timeout(timeout):
            while len(found) < n and not self.eof:
                await self._more()
                feed()
        assert len(found) >= n, f"stream ended after {len(found)} envelopes: {bytes(self.buf)!r}"
        return found

    async def assert_quiet(self, duration: float) -> None:
        """Assert that nothing more arrives and the stream stays open for ``duration``."""
        before = len(self.buf)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(duration):
                while not self.eof:
                    await self._more()
        assert not self.eof, f"stream ended early: {bytes(self.buf)!r}"
        assert len(self.buf) == before, f"unexpected data: {bytes(self.buf[before:])!r}"

    async def aclose(self) -> None:
        if not self._pending.done():
            self._pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                await self._pending
            return
        if self._pending.cancelled() or self._pending.exception() is not None:
            return
        resp = self._pending.result()
        resp.release()
        resp.close()


# --- the raw HTTP helper ----------------------------------------------------------------------


@dataclass
class Wire:
    """Raw-HTTP speaker for one user. Paths are relative to ``prefix`` unless absolute."""

    http: aiohttp.ClientSession
    base_url: str
    user: tuple[str, str] = ALICE
    prefix: str = PRE2016
    extra_headers: dict[str, str] = field(default_factory=dict)

    def url(self, path: str, query: str | None = None) -> URL:
        full = path if path.lower().startswith("/windowshpc") else self.prefix + path
        text = self.base_url + full + (f"?{query}" if query is not None else "")
        return URL(text, encoded=True)

    def headers(
        self,
        *,
        api_version: str | None = API_VERSION,
        accept: str | None = None,
        content_type: str | None = None,
        auth: bool = True,
        extra: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        h: dict[str, str] = {}
        if api_version is not None:
            h["api-version"] = api_version
        if accept is not None:
            h["Accept"] = accept
        if content_type is not None:
            h["Content-Type"] = content_type
        if auth:
            h["Authorization"] = basic(*self.user)
        h.update(self.extra_headers)
        h.update(extra or {})
        return h

    async def request(
        self,
        method: str,
        path: str,
        query: str | None = None,
        *,
        body: bytes | AsyncIterator[bytes] | None = None,
        timeout: float = PROMPT * 2,
        **header_kw: Any,
    ) -> Reply:
        data: Any = body if body is not None else (b"" if method == "POST" else None)
        if isinstance(data, bytes) and len(data) > 1024 * 1024:
            data = io.BytesIO(data)  # aiohttp warns about large raw bytes bodies
        async with asyncio.timeout(timeout):
            async with self.http.request(
                method, self.url(path, query), data=data, headers=self.headers(**header_kw)
            ) as resp:
                raw = await resp.read()
                return Reply(resp.status, resp.headers, raw)

    @contextlib.asynccontextmanager
    async def stream(
        self, path: str, query: str | None = None, **header_kw: Any
    ) -> AsyncIterator[ResponseStream]:
        pending = asyncio.ensure_future(
            self.http.request(
                "POST", self.url(path, query), data=b"", headers=self.headers(**header_kw)
            )
        )
        stream = ResponseStream(pending)
        try:
            yield stream
        finally:
            await stream.aclose()

    # -- operations ---------------------------------------------------------------------------

    def start_info(self, **members: Any) -> dict[str, Any]:
        info: dict[str, Any] = {
            "MaxMessageSize": 65536,
            "Password": self.user[1],
            "Runtime": -1,
            "ServiceName": "CcpEchoSvc",
            "Username": self.user[0],
        }
        info.update(members)
        return info

    async def create(
        self, durable: bool = False, accept: str | None = None, **members: Any
    ) -> Reply:
        body = json.dumps(self.start_info(**members), separators=(",", ":")).encode()
        return await self.request(
            "POST",
            "/sessions/Create",
            f"durable={'true' if durable else 'false'}",
            body=body,
            content_type="application/json; charset=utf-8",
            accept=accept,
        )

    async def session(self, durable: bool = False, **members: Any) -> int:
        reply = await self.create(durable, accept="application/json", **members)
        assert reply.status == 201, reply
        sid = json.loads(reply.body)["Id"]
        assert isinstance(sid, int)
        return sid

    async def send(
        self,
        sid: int,
        batch: str,
        body: bytes | AsyncIterator[bytes],
        *,
        generic: bool = True,
        commit: bool = False,
        **kw: Any,
    ) -> Reply:
        q = f"genericservice={_b(generic)}&commit={_b(commit)}"
        kw.setdefault("content_type", "application/octet-stream")
        return await self.request("POST", f"/session/{sid}/batch/{batch}", q, body=body, **kw)

    async def send_ok(
        self, sid: int, batch: str, *records: tuple[str, str], commit: bool = False
    ) -> None:
        reply = await self.send(sid, batch, generic_body(*records), commit=commit)
        expected = 201 if commit else 200
        assert reply.status == expected, (reply.status, reply.body)

    async def commit(self, sid: int, batch: str, **kw: Any) -> Reply:
        return await self.request("POST", f"/session/{sid}/batch/{batch}/Commit", **kw)

    async def status(self, sid: int, batch: str, accept: str | None = "application/json") -> Reply:
        return await self.request("GET", f"/session/{sid}/batch/{batch}/Status", accept=accept)

    async def status_value(self, sid: int, batch: str) -> int:
        reply = await self.status(sid, batch)
        assert reply.status == 200, reply
        return int(reply.body)

    async def wait_status(self, sid: int, batch: str, value: int, timeout: float = PROMPT) -> None:
        async with asyncio.timeout(timeout):
            while (got := await self.status_value(sid, batch)) != value:
                assert got in (1, 2, 3), got
                await asyncio.sleep(0.02)

    async def purge(self, sid: int, batch: str, **kw: Any) -> Reply:
        return await self.request("POST", f"/session/{sid}/batch/{batch}/Purge", **kw)

    async def close(self, sid: int, **kw: Any) -> Reply:
        return await self.request("POST", f"/session/{sid}/Close", **kw)

    async def attach(self, sid: int, durable: bool = False, **kw: Any) -> Reply:
        return await self.request(
            "GET", f"/session/{sid}/Attach", f"durable={'true' if durable else 'false'}", **kw
        )

    @staticmethod
    def response_query(
        *,
        generic: bool = True,
        count: int | str = -1,
        reset: bool | str = True,
        action: str = "",
        clientdata: str = "",
    ) -> str:
        r = reset if isinstance(reset, str) else ("true" if reset else "false")
        return (
            f"genericservice={'true' if generic else 'false'}&action={action}"
            f"&clientdata={clientdata}&count={count}&reset={r}"
        )

    async def responses(self, sid: int, batch: str, timeout: float = PROMPT, **q: Any) -> Reply:
        """A whole Get Responses call (only for calls that are expected to end by themselves)."""
        header_kw = {k: q.pop(k) for k in ("accept", "api_version") if k in q}
        return await self.request(
            "POST",
            f"/session/{sid}/batch/{batch}/Response",
            self.response_query(**q),
            timeout=timeout,
            **header_kw,
        )

    async def generic_responses(self, sid: int, batch: str, **q: Any) -> GenericBody:
        reply = await self.responses(sid, batch, **q)
        assert reply.status == 200, (reply.status, reply.body)
        return parse_generic(reply.body)

    async def soap_responses(self, sid: int, batch: str, **q: Any) -> SoapBody:
        reply = await self.responses(sid, batch, generic=False, **q)
        assert reply.status == 200, (reply.status, reply.body)
        return parse_soap(reply.body)

    def open_responses(
        self, sid: int, batch: str, **q: Any
    ) -> contextlib.AbstractAsyncContextManager[ResponseStream]:
        header_kw = {k: q.pop(k) for k in ("accept",) if k in q}
        return self.stream(
            f"/session/{sid}/batch/{batch}/Response", self.response_query(**q), **header_kw
        )


def multiset(items: Iterable[bytes]) -> Counter[bytes]:
    return Counter(items)


def session_info_json(
    authority: str, sid: int, *, durable: bool = False, max_size: int = 65536
) -> bytes:
    """The exact compact WebSessionInfo JSON of §4.1 (ServiceVersion null for CcpEchoSvc)."""
    return (
        f'{{"BrokerNode":"{authority}","Id":{sid},"IsDurable":{"true" if durable else "false"},'
        f'"MaxMessageSize":{max_size},"ServiceOperationTimeout":86400000,"ServiceVersion":null}}'
    ).encode()


ID_RE = re.compile(rb'"Id":(\d+),')


FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "spec"


def golden(name: str) -> bytes:
    """A byte-exact sample copied from the spec (tests/fixtures/spec)."""
    return (FIXTURES / name).read_bytes()


# --- fixtures ---------------------------------------------------------------------------------

# conftest modules outside packages all share the module name "conftest", so test modules
# cannot import from here reliably; they get this module through the ``spec`` fixture.
_THIS: types.ModuleType = sys.modules[__name__]


@pytest.fixture
def spec() -> types.ModuleType:
    """This module: spec constants, body builders and parsers for the test modules."""
    return _THIS


StartServer = Callable[..., Awaitable[Any]]


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    from hpcsoa.emulator import EmulatorServer

    async with contextlib.AsyncExitStack() as stack:

        async def _start(**overrides: Any) -> Any:
            kwargs = {**SERVER_DEFAULTS, **overrides}
            return await stack.enter_async_context(EmulatorServer(**kwargs))

        yield _start


@pytest.fixture
async def server(start_server: StartServer) -> Any:
    return await start_server()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(limit=64, force_close=False)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
        yield session


@pytest.fixture
def wire(server: Any, http: aiohttp.ClientSession) -> Wire:
    return Wire(http, server.base_url)


@pytest.fixture
def bob(server: Any, http: aiohttp.ClientSession) -> Wire:
    return Wire(http, server.base_url, user=BOB)
