"""A small asyncio TCP fault proxy with Toxiproxy-named toxics (research doc §4.3).

Toxiproxy itself is not available here, so this stands in for it in tests::

    async with FaultProxy("127.0.0.1", upstream_port) as proxy:
        proxy.add_toxic("cut", "reset_peer", stream="upstream", bytes=5000, match=rb"/batch/")
        ...  # talk to proxy.url

Toxics (``stream`` is ``"upstream"``, client → server, or ``"downstream"``):

* ``latency``: ``latency`` ms (+ up to ``jitter`` ms) before each chunk.
* ``bandwidth``: ``rate`` KB/s: chunks are split and delayed to that rate.
* ``slicer``: split chunks into ``average_size`` (± ``size_variation``) byte slices with
  ``delay_us`` between them.
* ``limit_data``: close the connection (FIN both ways) after ``bytes`` bytes.
* ``reset_peer``: after ``bytes`` bytes, reset both sides (SO_LINGER 0 + ``abort()``: RST).
* ``timeout``: stop relaying (data is dropped) and keep the socket open; with ``timeout`` ms
  > 0, close the connection after that long.

Options of every toxic: ``toxicity`` (chance, drawn from the proxy's seeded RNG, that it
applies to a given connection), ``times`` (at most that many connections), ``match`` (a
regex over the client's bytes: the toxic applies on a connection while the latest request
head the client sent on it matches; byte counts, ``toxicity`` and ``times`` then count per
request). Toxics can be added and removed
at any time and apply to open connections at their next chunk. Every wait is bounded
(``idle_timeout``); ``aclose()`` closes every connection. Binds 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FaultProxy", "Toxic"]

KINDS = frozenset({"latency", "bandwidth", "slicer", "limit_data", "reset_peer", "timeout"})
_REQUEST_HEAD = re.compile(rb"^[A-Z]{3,7} /")


@dataclass
class Toxic:
    name: str
    kind: str
    stream: str = "downstream"
    toxicity: float = 1.0
    times: int | None = None
    match: re.Pattern[bytes] | None = None
    attrs: dict[str, float] = field(default_factory=dict)
    fired: int = 0  # connections it has been applied to


class _Conn:
    def __init__(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        self.client = (cr, cw)
        self.upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.head = b""
        self.count: dict[tuple[str, str], int] = {}  # (toxic, stream) → bytes since armed
        self.decided: dict[str, bool] = {}
        self.tasks: list[asyncio.Task[None]] = []


class FaultProxy:
    """TCP relay 127.0.0.1:port → ``upstream_host:upstream_port`` with switchable toxics."""

    def __init__(
        self, upstream_host: str, upstream_port: int, *, seed: int = 0, idle_timeout: float = 30.0
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.idle_timeout = idle_timeout
        self.toxics: dict[str, Toxic] = {}
        self.rng = random.Random(seed)
        self.connections = 0
        self.resets = 0
        self.bytes = {"upstream": 0, "downstream": 0}
        self._conns: set[_Conn] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def add_toxic(
        self,
        name: str,
        kind: str,
        *,
        stream: str = "downstream",
        toxicity: float = 1.0,
        times: int | None = None,
        match: bytes | None = None,
        **attrs: float,
    ) -> Toxic:
        if kind not in KINDS or stream not in ("upstream", "downstream"):
            raise ValueError(f"bad toxic {kind!r}/{stream!r}")
        pattern = re.compile(match) if match is not None else None
        toxic = Toxic(name, kind, stream, toxicity, times, pattern, dict(attrs))
        self.toxics[name] = toxic
        return toxic

    def remove_toxic(self, name: str) -> None:
        self.toxics.pop(name, None)

    def clear(self) -> None:
        self.toxics.clear()

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._conns):
            self._close(conn, reset=False)
        tasks = [t for c in list(self._conns) for t in c.tasks]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    # -- relaying ------------------------------------------------------------------------

    async def _handle(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        conn = _Conn(cr, cw)
        self._conns.add(conn)
        self.connections += 1
        try:
            try:
                conn.upstream = await asyncio.wait_for(
                    asyncio.open_connection(*self.upstream), self.idle_timeout
                )
            except (OSError, TimeoutError):
                return
            ur, uw = conn.upstream
            up = asyncio.create_task(self._pump(conn, cr, uw, "upstream"))
            down = asyncio.create_task(self._pump(conn, ur, cw, "downstream"))
            conn.tasks += [up, down]
            await asyncio.wait([up, down], return_when=asyncio.FIRST_COMPLETED)
            for t in (up, down):
                t.cancel()
            await asyncio.wait([up, down], timeout=5)
        finally:
            self._close(conn, reset=False)
            self._conns.discard(conn)

    def _active(self, conn: _Conn, stream: str) -> list[Toxic]:
        out = []
        for toxic in list(self.toxics.values()):
            if toxic.stream != stream:
                continue
            if toxic.match is not None and not toxic.match.search(conn.head):
                continue
            if toxic.name not in conn.decided:
                exhausted = toxic.times is not None and toxic.fired >= toxic.times
                ok = not exhausted and self.rng.random() < toxic.toxicity
                conn.decided[toxic.name] = ok
                toxic.fired += ok
            if conn.decided[toxic.name]:
                out.append(toxic)
        return out

    def _see_request(self, conn: _Conn, data: bytes) -> None:
        """Re-arm ``match`` toxics at each new request head the client sends."""
        if _REQUEST_HEAD.match(data):
            conn.head = data[:4096]
            # a toxic with ``match`` counts bytes and decides again per request
            for t in self.toxics.values():
                if t.match is not None:
                    conn.decided.pop(t.name, None)
                    conn.count.pop((t.name, t.stream), None)

    async def _pump(
        self, conn: _Conn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, stream: str
    ) -> None:
        with contextlib.suppress(OSError, TimeoutError, ConnectionError):
            while True:
                data = await asyncio.wait_for(reader.read(65536), self.idle_timeout)
                if not data:
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                    return
                if stream == "upstream":
                    self._see_request(conn, data)
                if not await self._relay(conn, data, writer, stream):
                    return

    async def _relay(
        self, conn: _Conn, data: bytes, writer: asyncio.StreamWriter, stream: str
    ) -> bool:
        """Apply the toxics to one chunk and forward it; ``False`` ends the connection."""
        slices = [data]
        for toxic in self._active(conn, stream):
            a, kind = toxic.attrs, toxic.kind
            key = (toxic.name, stream)
            if kind == "timeout":
                if a.get("timeout", 0) > 0:
                    await self._sleep(a["timeout"] / 1000)
                    self._close(conn, reset=False)
                    return False
                return True  # drop the data, keep the socket open
            if kind == "latency":
                await self._sleep(
                    (a.get("latency", 0) + self.rng.random() * a.get("jitter", 0)) / 1000
                )
            elif kind in ("limit_data", "reset_peer"):
                seen = conn.count.get(key, 0)
                room = int(a.get("bytes", 0)) - seen
                total = sum(map(len, slices))
                conn.count[key] = seen + total
                if room < total:
                    await self._write(writer, [b"".join(slices)[: max(room, 0)]], stream)
                    self.resets += kind == "reset_peer"
                    self._close(conn, reset=kind == "reset_peer")
                    return False
            elif kind == "slicer":
                size, var = int(a.get("average_size", 1)), int(a.get("size_variation", 0))
                out = []
                for part in slices:
                    i = 0
                    while i < len(part):
                        n = max(1, size + self.rng.randint(-var, var))
                        out.append(part[i : i + n])
                        i += n
                slices = out
                delay = a.get("delay_us", 0) / 1e6
                for s in slices:
                    await self._write(writer, [s], stream)
                    await self._sleep(delay)
                slices = []
            elif kind == "bandwidth":
                rate = max(a.get("rate", 1.0), 0.001) * 1000  # bytes per second
                for part in slices:
                    for i in range(0, len(part), 1024):
                        piece = part[i : i + 1024]
                        await self._write(writer, [piece], stream)
                        await self._sleep(len(piece) / rate)
                slices = []
        await self._write(writer, slices, stream)
        return True

    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(min(max(seconds, 0.0), self.idle_timeout))  # bounded, always

    async def _write(self, writer: asyncio.StreamWriter, parts: list[bytes], stream: str) -> None:
        for p in parts:
            if p:
                writer.write(p)
                self.bytes[stream] += len(p)
        await asyncio.wait_for(writer.drain(), self.idle_timeout)

    def _close(self, conn: _Conn, *, reset: bool) -> None:
        writers = [conn.client[1]] + ([conn.upstream[1]] if conn.upstream else [])
        for w in writers:
            sock: Any = w.get_extra_info("socket")
            if reset and sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            if reset:
                w.transport.abort()
            else:
                w.close()
