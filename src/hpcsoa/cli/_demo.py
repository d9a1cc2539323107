"""``hpcsoa demo``: the embedded emulator plus a real SOA workload, in under a minute.

1. Start :class:`hpcsoa.emulator.EmulatorServer` in-process on 127.0.0.1 with TLS (a fresh
   self-signed certificate, pinned by the client through its SHA-256) and Basic auth (a
   random password).
2. Push ``--requests`` inputs through ``session.map`` on ``CcpEchoSvc`` with a live
   progress bar, checking every echo.
3. Run a small parametric-sweep job through the job API.
4. Print a summary table; with ``--keep-serving``, print the URL and credentials and serve
   until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import signal
import time
from typing import Any

import click

import hpcsoa

from ._base import HpcCommand, run_async
from ._errors import ExitCode
from ._options import window_option
from ._output import enum_text, make_console, print_table
from ._progress import make_progress

__all__ = ["DemoReport", "demo", "run_demo"]

DEMO_USER = "HPCLAB\\demo"
SWEEP_INSTANCES = 8


@dataclasses.dataclass(slots=True)
class DemoReport:
    """What the demo measured."""

    requests: int = 0
    completed: int = 0
    faults: int = 0
    mismatches: int = 0
    retries: int = 0
    sweep_seconds: float = 0.0
    latencies_ms: list[float] = dataclasses.field(default_factory=list, repr=False)
    job_id: int | None = None
    job_state: str = "-"
    job_tasks: int = 0
    job_seconds: float = 0.0
    wall_seconds: float = 0.0
    serving: bool = False


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, max(0, round(q / 100.0 * (len(sorted_values) - 1))))
    return sorted_values[k]


async def _soa_sweep(client: hpcsoa.HpcClient, report: DemoReport, *, window: int) -> None:
    n = report.requests
    session = await client.create_session("CcpEchoSvc")
    progress = make_progress("CcpEchoSvc", total=n)
    started = time.monotonic()
    try:
        async with session:
            inputs = (f"hello {i}" for i in range(n))
            async for r in session.map(inputs, window=window):
                report.completed += 1
                if r.fault is not None:
                    report.faults += 1
                elif r.output is None or not r.output.endswith(r.input):
                    report.mismatches += 1
                report.latencies_ms.append(r.latency * 1000.0)
                report.retries = session.retried
                progress.update(report.completed, faults=report.faults, retries=report.retries)
            report.retries = session.retried
    finally:
        report.sweep_seconds = time.monotonic() - started
        progress.update(report.completed, faults=report.faults, retries=report.retries)
        progress.close()


async def _sweep_job(client: Any, report: DemoReport) -> None:
    started = time.monotonic()
    job_id = await client.jobs.create(name="hpcsoa demo sweep")
    report.job_id = job_id
    await client.tasks.add(
        job_id,
        name="square",
        command_line="echo instance *",
        type="ParametricSweep",
        start_value=1,
        end_value=SWEEP_INSTANCES,
        increment_value=1,
    )
    await client.jobs.submit(job_id)
    job = await client.jobs.wait(job_id, timeout=30.0)
    report.job_state = "unknown" if job.state is None else enum_text(job.state)
    report.job_tasks = SWEEP_INSTANCES
    report.job_seconds = time.monotonic() - started


async def run_demo(
    *,
    requests: int,
    service_latency_ms: float,
    window: int,
    keep_serving: bool,
    with_job: bool = True,
    report: DemoReport | None = None,
) -> DemoReport:
    """Run the whole demo and print its summary; returns the measurements.

    ``report`` (filled in place) lets a caller see how far the demo got when interrupted.
    """
    from hpcsoa.emulator import EmulatorServer

    report = report if report is not None else DemoReport()
    report.requests = requests
    started = time.monotonic()
    password = secrets.token_urlsafe(12)
    err = make_console(stderr=True)
    async with EmulatorServer(
        users={DEMO_USER: password},
        tls=True,
        latency_ms=service_latency_ms,
        cores=64,
    ) as server:
        pin = server.cert_sha256 or ""
        err.print(
            f"emulator: {server.base_url} (TLS, certificate SHA-256 {pin[:16]}..., "
            "pinned by the client; Basic auth)"
        )
        async with hpcsoa.HpcClient(
            server.base_url,
            username=DEMO_USER,
            password=password,
            pin_sha256=server.cert_sha256,
        ) as client:
            await _soa_sweep(client, report, window=window)
            if with_job:
                await _sweep_job(client, report)
        report.wall_seconds = time.monotonic() - started
        _print_summary(report)
        if keep_serving:
            report.serving = True
            out = make_console()
            out.print(f"serving at {server.base_url} until Ctrl-C (or SIGTERM)")
            out.print(f"  user:        {DEMO_USER}")
            out.print(f"  password:    {password}")
            out.print(f"  pin-sha256:  {server.cert_sha256}")
            out.print(
                f"  try: hpcsoa jobs list --url {server.base_url} --username '{DEMO_USER}' "
                f"--password '{password}' --pin-sha256 {server.cert_sha256}"
            )
            await _until_terminated()
    return report


async def _until_terminated() -> None:
    """Wait for SIGTERM (Ctrl-C arrives as KeyboardInterrupt through asyncio.run)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await stop.wait()
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGTERM)


def _print_summary(report: DemoReport) -> None:
    lat = sorted(report.latencies_ms)
    rate = report.completed / report.sweep_seconds if report.sweep_seconds > 0 else 0.0
    rows: list[tuple[str, str]] = [
        ("requests (CcpEchoSvc, session.map)", f"{report.completed:,} / {report.requests:,}"),
        ("throughput", f"{rate:,.0f} req/s"),
        (
            "latency p50 / p90 / p99",
            f"{_percentile(lat, 50):.1f} / {_percentile(lat, 90):.1f} / "
            f"{_percentile(lat, 99):.1f} ms",
        ),
        ("faults", str(report.faults)),
        ("wrong echoes", str(report.mismatches)),
        ("retries", str(report.retries)),
        ("sweep wall time", f"{report.sweep_seconds:.2f} s"),
    ]
    if report.job_id is not None:
        rows.append(
            (
                "parametric-sweep job",
                f"#{report.job_id}: {report.job_tasks} instances, {report.job_state} "
                f"in {report.job_seconds:.2f} s",
            )
        )
    rows.append(("total wall time", f"{report.wall_seconds:.2f} s"))
    print_table(["", ""], rows, title="hpcsoa demo: summary", show_header=False)


@click.command(cls=HpcCommand)
@click.option(
    "--requests",
    type=click.IntRange(1, 10_000_000),
    default=100_000,
    show_default=True,
    help="Requests to push through CcpEchoSvc.",
)
@click.option(
    "--service-latency-ms",
    type=click.FloatRange(0, 60_000),
    default=0.0,
    show_default=True,
    help="Simulated service time per request.",
)
@window_option
@click.option("--keep-serving", is_flag=True, help="Keep the emulator up afterwards (Ctrl-C).")
@click.option("--no-job", is_flag=True, hidden=True, help="Skip the parametric-sweep job.")
def demo(
    requests: int, service_latency_ms: float, window: int, keep_serving: bool, no_job: bool
) -> int:
    """Run the embedded emulator (TLS + Basic auth) and a real SOA workload through it.

    Pushes --requests inputs through session.map on CcpEchoSvc with a live progress bar,
    runs a small parametric-sweep job, then prints throughput, latency percentiles,
    retries, faults and wall time.
    """
    report = DemoReport()
    try:
        run_async(
            run_demo(
                requests=requests,
                service_latency_ms=service_latency_ms,
                window=window,
                keep_serving=keep_serving,
                with_job=not no_job,
                report=report,
            )
        )
    except KeyboardInterrupt:
        if report.serving:  # Ctrl-C is how --keep-serving is meant to end
            return ExitCode.OK
        raise
    if report.faults or report.mismatches:
        return ExitCode.FAULTED
    return ExitCode.OK
