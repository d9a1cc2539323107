"""The TCP fault proxy itself, against a raw asyncio echo server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from fault_proxy import FaultProxy

pytestmark = pytest.mark.integration


@pytest.fixture
async def echo() -> AsyncIterator[int]:
    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while data := await asyncio.wait_for(r.read(65536), 10):
                w.write(data)
                await w.drain()
        except (OSError, TimeoutError):
            pass
        finally:
            w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


@pytest.fixture
async def proxy(echo: int) -> AsyncIterator[FaultProxy]:
    async with FaultProxy("127.0.0.1", echo, idle_timeout=5) as p:
        yield p


async def connect(proxy: FaultProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", proxy.port), 5)


async def read_all(r: asyncio.StreamReader, limit: int = 1 << 20) -> tuple[bytes, int]:
    """Everything until EOF (bounded), and how many reads it took."""
    out, reads = b"", 0
    async with asyncio.timeout(5):
        while len(out) < limit and (chunk := await r.read(65536)):
            out += chunk
            reads += 1
    return out, reads


async def test_relays_unchanged(proxy: FaultProxy) -> None:
    r, w = await connect(proxy)
    payload = bytes(range(256)) * 400
    w.write(payload)
    w.write_eof()
    got, _ = await read_all(r)
    w.close()
    assert got == payload
    assert proxy.bytes == {"upstream": len(payload), "downstream": len(payload)}


async def test_latency_and_slicer_delay_and_split(proxy: FaultProxy) -> None:
    proxy.add_toxic("lat", "latency", stream="upstream", latency=150)
    proxy.add_toxic("sl", "slicer", average_size=100, size_variation=20, delay_us=1000)
    r, w = await connect(proxy)
    start = time.monotonic()
    w.write(b"x" * 2000)
    w.write_eof()
    got, reads = await read_all(r)
    w.close()
    assert got == b"x" * 2000
    assert time.monotonic() - start >= 0.15
    assert reads >= 5  # ~20 slices, 1 ms apart


async def test_bandwidth_limits_rate(proxy: FaultProxy) -> None:
    proxy.add_toxic("bw", "bandwidth", rate=20)  # 20 KB/s → 6 KB takes ~0.3 s
    r, w = await connect(proxy)
    start = time.monotonic()
    w.write(b"y" * 6000)
    w.write_eof()
    got, _ = await read_all(r)
    w.close()
    assert got == b"y" * 6000
    assert time.monotonic() - start >= 0.25


@pytest.mark.parametrize("stream", ["upstream", "downstream"])
async def test_limit_data_closes_after_n_bytes(proxy: FaultProxy, stream: str) -> None:
    proxy.add_toxic("lim", "limit_data", stream=stream, bytes=1234)
    r, w = await connect(proxy)
    w.write(b"z" * 5000)
    got, _ = await read_all(r)  # EOF, not a reset
    w.close()
    assert proxy.bytes[stream] == 1234
    if stream == "downstream":
        assert got == b"z" * 1234
    else:  # the connection closed before the echo of the 1234 bytes could come back
        assert got in (b"", b"z" * 1234)


async def test_reset_peer_sends_rst(proxy: FaultProxy) -> None:
    proxy.add_toxic("rst", "reset_peer", bytes=100)
    r, w = await connect(proxy)
    w.write(b"a" * 1000)
    got = bytearray()

    async def drain() -> None:
        async with asyncio.timeout(5):
            while chunk := await r.read(65536):
                got.extend(chunk)

    with pytest.raises(ConnectionResetError):
        await drain()
    w.close()
    assert len(got) <= 100
    assert proxy.resets == 1


async def test_timeout_stalls_until_removed(proxy: FaultProxy) -> None:
    r, w = await connect(proxy)
    proxy.add_toxic("stall", "timeout", stream="upstream")
    w.write(b"lost")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(r.read(10), 0.2)  # nothing relayed, socket still open
    proxy.remove_toxic("stall")
    w.write(b"back")
    assert await asyncio.wait_for(r.read(10), 5) == b"back"
    w.close()


async def test_timeout_with_delay_closes(proxy: FaultProxy) -> None:
    proxy.add_toxic("stall", "timeout", timeout=100)
    r, w = await connect(proxy)
    w.write(b"hello")
    got, _ = await read_all(r)
    w.close()
    assert got == b""


async def test_match_times_and_aclose(echo: int) -> None:
    async with FaultProxy("127.0.0.1", echo, idle_timeout=5) as proxy:
        proxy.add_toxic("cut", "limit_data", bytes=3, match=rb"^POST /x", times=1)
        r, w = await connect(proxy)
        w.write(b"GET /a\r\n")  # not matched: relayed whole
        assert await asyncio.wait_for(r.readexactly(8), 5) == b"GET /a\r\n"
        w.write(b"POST /x\r\n")  # matched: cut after 3 bytes
        got, _ = await read_all(r)
        assert got == b"POS"
        w.close()
        r, w = await connect(proxy)  # times=1: the next POST passes
        w.write(b"POST /x\r\n")
        assert await asyncio.wait_for(r.readexactly(9), 5) == b"POST /x\r\n"
        # an open connection is closed by aclose
    got, _ = await read_all(r)
    assert got == b""
    w.close()
