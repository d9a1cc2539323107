"""Strict length mode (spec §2.5, last paragraph): 411 for a POST/PUT without a length.

HTTP.sys refuses a ``POST``/``PUT`` that has neither ``Content-Length`` nor
``Transfer-Encoding``. The emulator accepts both forms by default; with ``strict_length`` (or
``hpcsoa serve --strict-length``) it answers ``411 Length Required`` with an
``HpcWebServiceFault`` body. aiohttp's client always sends a length, so these tests write
HTTP/1.1 by hand over a socket.
"""

from __future__ import annotations

import asyncio
import json
import types
import xml.etree.ElementTree as ET
from typing import Any

from hpcsoa.emulator._cli import build_parser, config_from_args

UNKNOWN_ERROR = 0x0F000000


class RawConnection:
    """One keep-alive HTTP/1.1 connection to the emulator, written and read by hand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def request(
        self, head: str, body: bytes = b"", timeout: float = 5.0
    ) -> tuple[int, dict[str, str], bytes]:
        """Send ``head`` (request line + headers, CRLF-separated, no blank line) and ``body``
        verbatim; read one response with a Content-Length body."""
        async with asyncio.timeout(timeout):
            self.writer.write(head.encode("latin-1") + b"\r\n\r\n" + body)
            await self.writer.drain()
            raw = await self.reader.readuntil(b"\r\n\r\n")
            lines = raw.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            data = await self.reader.readexactly(length)
            return status, headers, data

    async def aclose(self) -> None:
        self.writer.close()
        try:
            async with asyncio.timeout(5):
                await self.writer.wait_closed()
        except (ConnectionError, TimeoutError):
            pass


async def connect(server: Any) -> RawConnection:
    async with asyncio.timeout(5):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    return RawConnection(reader, writer)


def head(
    spec: types.ModuleType,
    server: Any,
    method: str,
    target: str,
    *extra: str,
    auth: bool = True,
    api_version: bool = True,
) -> str:
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{server.port}"]
    if api_version:
        lines.append(f"api-version: {spec.API_VERSION}")
    if auth:
        lines.append(f"Authorization: {spec.basic(*spec.ALICE)}")
    lines.extend(extra)
    return "\r\n".join(lines)


def fault_code(spec: types.ModuleType, body: bytes) -> int:
    root = ET.fromstring(body)
    assert root.tag == f"{{{spec.NS_COMMON}}}HpcWebServiceFault", body
    code = root.find(f"{{{spec.NS_COMMON}}}Code")
    assert code is not None
    return int(code.text or "")


async def test_default_mode_accepts_post_without_length(server, wire, spec) -> None:
    sid = await wire.session()
    conn = await connect(server)
    try:
        status, _, body = await conn.request(
            head(spec, server, "POST", f"/WindowsHPC/HPCLAB/session/{sid}/batch/b1/Commit")
        )
        assert (status, body) == (201, b"")
        status, _, _ = await conn.request(
            head(spec, server, "POST", f"/WindowsHPC/HPCLAB/session/{sid}/Close")
        )
        assert status == 200
    finally:
        await conn.aclose()
    assert (await wire.close(sid)).status == 404  # really closed


async def test_strict_mode_answers_411_with_a_fault(start_server, http, spec) -> None:
    server = await start_server(strict_length=True)
    wire = spec.Wire(http, server.base_url)
    sid = await wire.session()  # aiohttp sends Content-Length: accepted
    conn = await connect(server)
    try:
        commit = f"/WindowsHPC/HPCLAB/session/{sid}/batch/b1/Commit"
        status, headers, body = await conn.request(head(spec, server, "POST", commit))
        assert status == 411
        assert headers["content-type"] == "application/xml; charset=utf-8"
        assert fault_code(spec, body) == UNKNOWN_ERROR
        # The connection stays usable; the batch was not touched.
        status, _, body = await conn.request(
            head(spec, server, "GET", f"/WindowsHPC/HPCLAB/session/{sid}/batch/b1/Status")
        )  # a GET needs no length
        assert (status, body) == (
            200,
            f'<BrokerClientStatus xmlns="{spec.NS_STATUS}">Ready</BrokerClientStatus>'.encode(),
        )
        # Content-Length: 0 and chunked bodies are fine.
        status, _, _ = await conn.request(head(spec, server, "POST", commit, "Content-Length: 0"))
        assert status == 201
        status, _, _ = await conn.request(
            head(
                spec,
                server,
                "POST",
                f"/WindowsHPC/HPCLAB/session/{sid}/batch/b2?genericservice=true&commit=true",
                "Content-Type: application/octet-stream",
                "Transfer-Encoding: chunked",
            ),
            b"7\r\nx\xef\xbf\xbfu1\x00\r\n0\r\n\r\n",
        )
        assert status == 201
        # JSON fault for an SOA call that accepts JSON (§2.7).
        status, headers, body = await conn.request(
            head(
                spec,
                server,
                "POST",
                f"/WindowsHPC/HPCLAB/session/{sid}/Close",
                "Accept: application/json",
            )
        )
        assert status == 411
        assert headers["content-type"] == "application/json; charset=utf-8"
        assert json.loads(body)["Code"] == UNKNOWN_ERROR
    finally:
        await conn.aclose()
    assert await wire.status_value(sid, "b1") == 3
    records = await wire.generic_responses(sid, "b2")
    assert records.eor == (1, "Success")


async def test_strict_mode_checks_length_before_auth_and_routing(start_server, spec) -> None:
    server = await start_server(strict_length=True)
    conn = await connect(server)
    try:
        # HTTP.sys answers before the service: no credentials, no api-version, unknown path.
        for target in ("/WindowsHPC/Sessions/Create?durable=false", "/nowhere"):
            status, headers, body = await conn.request(
                head(spec, server, "POST", target, auth=False, api_version=False)
            )
            assert status == 411, target
            assert "www-authenticate" not in headers
            assert fault_code(spec, body) == UNKNOWN_ERROR
        # A scheduler operation without api-version would use the legacy <string> error
        # body; the 411 is an HpcWebServiceFault all the same.
        status, _, body = await conn.request(
            head(spec, server, "PUT", "/WindowsHPC/HPCLAB/Job/1", api_version=False)
        )
        assert status == 411
        assert fault_code(spec, body) == UNKNOWN_ERROR
        # A GET without a length is not affected: it reaches authentication.
        status, headers, _ = await conn.request(
            head(spec, server, "GET", "/WindowsHPC/Clusters", auth=False)
        )
        assert status == 401
        assert headers["www-authenticate"].startswith("Basic")
    finally:
        await conn.aclose()


async def test_strict_mode_flag_of_serve() -> None:
    parser = build_parser()
    assert config_from_args(parser.parse_args([])).strict_length is False
    assert config_from_args(parser.parse_args(["--strict-length"])).strict_length is True
