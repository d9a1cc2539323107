"""Emulator throughput: generic echo, zero latency, batch 100, 8 concurrent batches.

Compares the emulator (``python -m hpcsoa.emulator``) with a minimal aiohttp.web server that
does the same wire work without any broker state (decode the generic records, echo them,
encode the response records and trailer in one chunked write). Each server runs in its own
process; one plain aiohttp client drives both with the same loop:

    per worker: Send Requests (100 records, commit=true) to a fresh batch, Get Responses
    (count=-1) read to the end-of-responses trailer, then Purge the batch (as the .NET
    client's BrokerClient.Close does); repeat. ``--no-purge`` skips the purge, so the
    emulator keeps every delivered response (an interactive batch holds them until they are
    acknowledged, purged or the batch times out).

Repetitions alternate between the two servers (≥ 3 each) and the table reports medians and
the ratio emulator / baseline (target ≥ 0.6).

Run: ``.venv/bin/python benchmarks/bench_emulator.py [--reps 5] [--seconds 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import os
import statistics
import subprocess
import sys
import time

import aiohttp
from aiohttp import web

from hpcsoa.protocol._generic import (
    GenericRequestDecoder,
    encode_generic_requests,
    encode_generic_response,
    encode_generic_trailer,
)
from hpcsoa.protocol._models import (
    GENERIC_REPLY_ACTION,
    EndOfResponses,
    GenericRequest,
)

BATCH = 100
CONCURRENCY = 8
USER, PASSWORD = "HPCLAB\\bench", "bench"
AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
EOR_MARKER = b"http://hpc.microsoft.com/EndOfGetResponse"
_BATCH_IDS = itertools.count()  # batch names are never reused across repetitions


# --- the baseline server: same framing work, no state machine ------------------------------------


def baseline_app() -> web.Application:
    stash: dict[str, list[GenericRequest]] = {}
    machine = "CN01"

    async def send(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != AUTH:
            return web.Response(status=401)
        decoder = GenericRequestDecoder(65536)
        records = decoder.feed(await request.read())
        decoder.close()
        stash.setdefault(request.match_info["batch"], []).extend(records)
        return web.Response(status=201)

    async def purge(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != AUTH:
            return web.Response(status=401)
        stash.pop(request.match_info["batch"], None)
        return web.Response(status=200)

    async def responses(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != AUTH:
            return web.Response(status=401)
        records = stash.pop(request.match_info["batch"], [])
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        parts = [
            encode_generic_response(
                GENERIC_REPLY_ACTION, f"{machine} (GenericService): {r.input}", r.user_data
            )
            for r in records
        ]
        parts.append(encode_generic_trailer(EndOfResponses(len(records))))
        await resp.write(b"".join(parts))
        await resp.write_eof()
        return resp

    app = web.Application(client_max_size=256 * 1024 * 1024)
    app.router.add_post("/WindowsHPC/HPCLAB/session/{sid}/batch/{batch}", send)
    app.router.add_post("/WindowsHPC/HPCLAB/session/{sid}/batch/{batch}/Response", responses)
    app.router.add_post("/WindowsHPC/HPCLAB/session/{sid}/batch/{batch}/Purge", purge)
    return app


async def serve_baseline() -> None:
    runner = web.AppRunner(baseline_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(f"baseline listening on http://127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()


# --- the client load -----------------------------------------------------------------------


async def create_session(http: aiohttp.ClientSession, base: str) -> int:
    body = (
        b'{"MaxMessageSize":65536,"Password":"bench","Runtime":-1,'
        b'"ServiceName":"CcpEchoSvc","Username":"HPCLAB\\\\bench"}'
    )
    headers = {
        "api-version": "2011-11-01",
        "Authorization": AUTH,
        "Content-Type": "application/json; charset=utf-8",
        "Accept": "application/json",
    }
    async with http.post(
        f"{base}/WindowsHPC/HPCLAB/Sessions/Create?durable=false", data=body, headers=headers
    ) as resp:
        if resp.status != 201:
            raise RuntimeError(f"create session: {resp.status} {await resp.text()}")
        return int((await resp.json())["Id"])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (Linux ``/proc``; 0.0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(base: str, seconds: float, sid: int, purge: bool = True) -> tuple[float, int]:
    """Run the load for ``seconds``; return (messages per second, messages)."""
    headers = {"api-version": "2011-11-01", "Authorization": AUTH}
    send_headers = {**headers, "Content-Type": "application/octet-stream"}
    body = encode_generic_requests(GenericRequest(f"payload-{i:04d}", str(i)) for i in range(BATCH))
    connector = aiohttp.TCPConnector(limit=CONCURRENCY * 2)
    done = 0
    async with aiohttp.ClientSession(connector=connector) as http:
        prefix = f"{base}/WindowsHPC/HPCLAB/session/{sid}/batch"
        deadline = time.perf_counter() + seconds

        async def worker(w: int) -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                batch = f"w{w}b{next(_BATCH_IDS)}"
                async with http.post(
                    f"{prefix}/{batch}?genericservice=true&commit=true",
                    data=body,
                    headers=send_headers,
                ) as resp:
                    if resp.status != 201:
                        raise RuntimeError(f"send: {resp.status} {await resp.text()}")
                async with http.post(
                    f"{prefix}/{batch}/Response?genericservice=true&action=&clientdata=&count=-1&reset=true",
                    headers=headers,
                ) as resp:
                    data = await resp.read()
                records = data.count(b"\x00")
                if records != BATCH + 1 or EOR_MARKER not in data:
                    raise RuntimeError(f"short response body ({records} records)")
                if purge:
                    async with http.post(f"{prefix}/{batch}/Purge", headers=headers) as resp:
                        if resp.status != 200:
                            raise RuntimeError(f"purge: {resp.status} {await resp.text()}")
                done += BATCH

        start = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(CONCURRENCY)))
        elapsed = time.perf_counter() - start
    return done / elapsed, done


def start_process(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    url = next((w for w in line.split() if w.startswith("http")), None)
    if url is None:
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r}")
    return proc, url


async def run(reps: int, seconds: float, purge: bool) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, ["src", os.environ.get("PYTHONPATH")])),
    }
    emu, emu_url = start_process(
        [
            "-m",
            "hpcsoa.emulator",
            "--user",
            f"{USER}:{PASSWORD}",
            "--log-level",
            "warning",
            "--client-idle-timeout-ms",
            "0",
            "--session-idle-timeout-ms",
            "0",
        ],
        env,
    )
    base, base_url = start_process([__file__, "--serve-baseline"], env)
    try:
        async with aiohttp.ClientSession() as http:
            sid = await create_session(http, emu_url)
        results: dict[str, list[float]] = {"emulator": [], "baseline": []}
        cpu_us: dict[str, list[float]] = {"emulator": [], "baseline": []}
        await drive(emu_url, 0.5, sid)  # warm-up both
        await drive(base_url, 0.5, 1)
        for rep in range(reps):
            order = [("emulator", emu_url, sid, emu), ("baseline", base_url, 1, base)]
            if rep % 2:
                order.reverse()
            for name, url, s, proc in order:
                cpu0 = cpu_seconds(proc.pid)
                rate, done = await drive(url, seconds, s, purge)
                results[name].append(rate)
                cpu_us[name].append((cpu_seconds(proc.pid) - cpu0) / done * 1e6)
    finally:
        for proc in (emu, base):
            proc.terminate()
            proc.wait(timeout=10)
    emu_med = statistics.median(results["emulator"])
    base_med = statistics.median(results["baseline"])
    print(
        f"generic echo, zero latency, batch {BATCH}, {CONCURRENCY} concurrent batches, "
        f"{'purge after each batch' if purge else 'no purge'}, {reps} reps x {seconds}s"
    )
    print("| server   | median msg/s | server CPU us/msg | runs (msg/s) |")
    print("|----------|-------------:|------------------:|--------------|")
    for name in ("emulator", "baseline"):
        runs = ", ".join(f"{v:,.0f}" for v in results[name])
        cpu = statistics.median(cpu_us[name])
        print(f"| {name:<8} | {statistics.median(results[name]):12,.0f} | {cpu:17.2f} | {runs} |")
    print(f"ratio emulator/baseline (msg/s): {emu_med / base_med:.2f} (target >= 0.60)")
    cpu_ratio = statistics.median(cpu_us["baseline"]) / statistics.median(cpu_us["emulator"])
    print(f"ratio baseline/emulator (server CPU per message): {cpu_ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=5, help="repetitions per server (>= 3)")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of one repetition")
    parser.add_argument(
        "--no-purge", action="store_true", help="do not purge batches after reading"
    )
    parser.add_argument("--serve-baseline", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline:
        asyncio.run(serve_baseline())
        return
    if args.reps < 3:
        parser.error("--reps must be >= 3")
    asyncio.run(run(args.reps, args.seconds, not args.no_purge))


if __name__ == "__main__":
    main()
