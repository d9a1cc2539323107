"""``hpcsoa sweep``: push a file of inputs through an SOA service, one result line per input.

The engine is ``SoaSession.map``: it keeps at most ``--window`` requests outstanding and
yields each result once. This module only adds ids, the output file and ``--resume``:

* every input has an id; results are written as ``{"id", "output", "fault", "latency_ms"}``;
* the output file is appended and flushed page by page, so a crash loses at most the last
  unflushed page, and ``--resume`` redoes exactly the ids missing from the file;
* the positions handed to ``map`` are mapped back to ids through a dict holding only the
  outstanding inputs (memory stays O(window)).
"""

from __future__ import annotations

import dataclasses
import os
import stat
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import IO, Any

import click

import hpcsoa

from ._base import HpcCommand, run_async
from ._errors import CliError, ExitCode
from ._options import (
    Connection,
    connection_options,
    open_client,
    resolve_connection,
    window_option,
)
from ._output import to_jsonable
from ._progress import ProgressReporter, make_progress
from ._sweep_io import (
    ResultWriter,
    SweepId,
    SweepItem,
    ThreadedReader,
    as_text,
    count_items,
    iter_csv,
    iter_jsonl,
    load_done_ids,
)

__all__ = ["SweepOptions", "SweepStats", "run_sweep", "sweep"]

_COUNT_LIMIT = 256 * 1024 * 1024  # files larger than this are not pre-counted


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SweepOptions:
    """Everything ``hpcsoa sweep`` was asked to do (connection options aside)."""

    service: str
    input: str
    output: str
    format: str = "auto"
    input_column: str | None = None
    id_column: str | None = None
    window: int = 10_000
    ordered: bool = False
    generic: bool = True
    action: str | None = None
    contract: str | None = None
    operation: str | None = None
    namespace: str | None = None
    param: str = "input"
    batch: str | None = None
    durable: bool = False
    resume: bool = False
    overwrite: bool = False
    quiet: bool = False
    connections: int = 16


@dataclasses.dataclass(slots=True)
class SweepStats:
    """Counters of one sweep run."""

    total: int | None = None
    skipped: int = 0
    done: int = 0
    faults: int = 0
    retries: int = 0
    elapsed: float = 0.0
    session_id: int | None = None


def _input_format(opts: SweepOptions) -> str:
    if opts.format != "auto":
        return opts.format
    if opts.input_column or opts.id_column:
        return "csv"
    return "csv" if opts.input.lower().endswith(".csv") else "jsonl"


def _open_input(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None


def _reader(opts: SweepOptions) -> Callable[[], Iterator[SweepItem]]:
    """A factory of fresh iterators over the inputs (so a file can be read twice)."""
    fmt = _input_format(opts)
    source = "<stdin>" if opts.input == "-" else opts.input

    def make() -> Iterator[SweepItem]:
        stream = _open_input(opts.input)
        try:
            if fmt == "csv":
                yield from iter_csv(
                    stream,
                    source=source,
                    input_column=opts.input_column,
                    id_column=opts.id_column,
                )
            else:
                yield from iter_jsonl(stream, source=source)
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()

    return make


def _prepare_output(opts: SweepOptions) -> set[SweepId]:
    """Check the output target; with ``--resume`` return the ids already done."""
    if opts.output == "-":
        if opts.resume:
            raise CliError("--resume needs an output file, not stdout")
        return set()
    exists = os.path.exists(opts.output) and os.path.getsize(opts.output) > 0
    if opts.resume:
        return load_done_ids(opts.output)
    if exists:
        if not opts.overwrite:
            raise CliError(
                f"{opts.output} already exists",
                hint="use --resume to continue that sweep, or --overwrite to start afresh",
            )
        with open(opts.output, "wb"):
            pass
    return set()


def _fault_json(fault: Any) -> Any:
    if fault is None:
        return None
    value = to_jsonable(fault)
    if isinstance(value, dict | str | int | float):
        return value
    return str(fault)


def _session_retries(session: hpcsoa.SoaSession) -> int:
    return session.retried


def _numbered(
    items: Iterator[SweepItem],
    pending: dict[int, SweepId],
    build: Callable[[SweepItem], Any],
) -> Iterator[Any]:
    for position, item in enumerate(items):
        pending[position] = item.id
        yield build(item)


async def _anumbered(
    items: AsyncIterator[SweepItem],
    pending: dict[int, SweepId],
    build: Callable[[SweepItem], Any],
) -> AsyncIterator[Any]:
    position = 0
    async for item in items:
        pending[position] = item.id
        position += 1
        yield build(item)


def _is_regular_file(path: str) -> bool:
    if path == "-":
        return False
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _request_builder(opts: SweepOptions) -> Callable[[SweepItem], Any]:
    """How one input becomes what ``session.map`` sends.

    Generic: the input as text. SOAP with ``--action``: the input is the body XML. SOAP with
    ``--operation``: a JSON object input gives the operation's parameters, any other input
    is the single parameter ``--param``.
    """
    if opts.generic:
        return lambda item: as_text(item.input)
    if opts.action is not None:
        action = opts.action
        return lambda item: hpcsoa.Request(action, as_text(item.input))
    if opts.operation is None:
        raise CliError(
            "--soap needs --operation (or --action with XML bodies as inputs)",
            hint="e.g. --soap --contract IEchoSvc --operation Echo --param input",
        )
    operation = opts.operation
    contract = opts.contract or "IEchoSvc"
    namespace = opts.namespace or "http://tempuri.org/"
    param = opts.param

    def build(item: SweepItem) -> Any:
        value = item.input
        params = value if isinstance(value, dict) else {param: value}
        return hpcsoa.Request.wcf(operation, params, contract=contract, namespace=namespace)

    return build


async def run_sweep(
    conn: Connection,
    opts: SweepOptions,
    *,
    make_items: Callable[[], Iterator[SweepItem]],
    done_ids: set[SweepId],
    total: int | None,
    stats: SweepStats | None = None,
) -> SweepStats:
    """Run the sweep; every completed result is in the output file when this returns or raises.

    ``stats`` (filled in place) lets the caller report progress after an interruption.
    """
    stats = stats if stats is not None else SweepStats()
    stats.total, stats.skipped = total, len(done_ids)
    build = _request_builder(opts)
    seen: set[SweepId] = set()

    def todo() -> Iterator[SweepItem]:
        for item in make_items():
            if item.id in seen:
                raise CliError(f"the id {item.id!r} appears more than once in the input")
            seen.add(item.id)
            if item.id not in done_ids:
                yield item

    progress: ProgressReporter | None = None
    writer = ResultWriter(opts.output)
    started = time.monotonic()
    # A regular file is read in the loop itself: reads never block for long, and a sync
    # iterable lets session.map pack full Send Requests POSTs. A pipe or terminal is read in
    # a thread so a slow producer never stalls the responses being streamed back.
    reader: ThreadedReader[SweepItem] | None = None
    if not _is_regular_file(opts.input):
        reader = ThreadedReader(todo)
    try:
        limits = hpcsoa.PoolLimits(max_connections=opts.connections)
        async with open_client(conn, limits=limits) as client:
            session = await client.create_session(opts.service, durable=opts.durable)
            stats.session_id = session.id
            progress = make_progress(
                "sweep",
                total=total,
                initial=stats.skipped,
                quiet=opts.quiet,
            )
            async with session:
                pending: dict[int, SweepId] = {}
                requests: Iterator[Any] | AsyncIterator[Any] = (
                    _numbered(todo(), pending, build)
                    if reader is None
                    else _anumbered(reader, pending, build)
                )
                map_kwargs: dict[str, Any] = {
                    "window": opts.window,
                    "ordered": opts.ordered,
                    "generic": opts.generic,
                }
                if opts.batch is not None:
                    map_kwargs["batch"] = opts.batch
                async for result in session.map(requests, **map_kwargs):
                    item_id = pending.pop(result.index)
                    latency = getattr(result, "latency", None)
                    latency_ms = None if latency is None else round(latency * 1000.0, 3)
                    writer.write(
                        {
                            "id": item_id,
                            "output": result.output,
                            "fault": _fault_json(result.fault),
                            "latency_ms": latency_ms,
                        }
                    )
                    stats.done += 1
                    if result.fault is not None:
                        stats.faults += 1
                    stats.retries = _session_retries(session)
                    progress.update(
                        stats.skipped + stats.done, faults=stats.faults, retries=stats.retries
                    )
                stats.retries = _session_retries(session)
    finally:
        if reader is not None:
            reader.close()
        writer.close()
        stats.elapsed = time.monotonic() - started
        if progress is not None:
            progress.update(stats.skipped + stats.done, faults=stats.faults, retries=stats.retries)
            progress.close()
    return stats


@click.command(cls=HpcCommand)
@click.option("--service", required=True, help="SOA service name, e.g. CcpEchoSvc.")
@click.option(
    "--input", "input_path", required=True, help="Input file (JSONL or CSV), or - for stdin."
)
@click.option("--output", "output_path", required=True, help="Output JSONL file (appended), or -.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "jsonl", "csv"]),
    default="auto",
    show_default=True,
    help="Input format; auto = csv for *.csv (or with a column option), else jsonl.",
)
@click.option("--input-column", help="CSV column holding the input (default: 'input' or sole).")
@click.option("--id-column", help="CSV column holding the id (default: 'id' or row number).")
@window_option
@click.option(
    "--ordered/--unordered",
    default=False,
    show_default=True,
    help="Write results in input order (bounded reorder buffer) or as they complete.",
)
@click.option(
    "--generic/--soap",
    default=True,
    show_default=True,
    help="Generic string service, or typed SOAP requests.",
)
@click.option("--action", help="SOAP: action URI; each input is then the body XML.")
@click.option("--operation", help="SOAP: WCF operation (e.g. Echo); inputs are its parameters.")
@click.option("--contract", help="SOAP: service contract (default IEchoSvc).")
@click.option("--namespace", help="SOAP: contract namespace (default http://tempuri.org/).")
@click.option(
    "--param",
    default="input",
    show_default=True,
    help="SOAP: parameter name for inputs that are not JSON objects.",
)
@click.option("--batch", "batch_name", help="Batch (broker client) name; default generated.")
@click.option("--durable", is_flag=True, help="Create a durable session.")
@click.option("--resume", is_flag=True, help="Skip ids already in the output file.")
@click.option("--overwrite", is_flag=True, help="Truncate an existing output file first.")
@click.option(
    "--connections",
    type=click.IntRange(1, 1024),
    default=16,
    show_default=True,
    help="HTTP connections in the pool.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@connection_options
def sweep(
    conn: Connection,
    service: str,
    input_path: str,
    output_path: str,
    fmt: str,
    input_column: str | None,
    id_column: str | None,
    window: int,
    ordered: bool,
    generic: bool,
    action: str | None,
    contract: str | None,
    operation: str | None,
    namespace: str | None,
    param: str,
    batch_name: str | None,
    durable: bool,
    resume: bool,
    overwrite: bool,
    connections: int,
    quiet: bool,
) -> int:
    """Send every input of a file through an SOA service; write one JSON line per input.

    Input is JSONL ({"id": ..., "input": ...} or bare JSON strings; ids default to line
    numbers) or CSV (--input-column, --id-column; ids default to row numbers). Each output
    line is {"id", "output", "fault", "latency_ms"}. Interrupted? Run the same command with
    --resume: ids already in the output file are skipped, nothing is done twice or lost.

    \b
    Example:
      hpcsoa sweep --url https://head --service CcpEchoSvc \\
          --input params.csv --input-column x --output results.jsonl
    """
    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other")
    opts = SweepOptions(
        service=service,
        input=input_path,
        output=output_path,
        format=fmt,
        input_column=input_column,
        id_column=id_column,
        window=window,
        ordered=ordered,
        generic=generic,
        action=action,
        contract=contract,
        operation=operation,
        namespace=namespace,
        param=param,
        batch=batch_name,
        durable=durable,
        resume=resume,
        overwrite=overwrite,
        quiet=quiet,
        connections=connections,
    )
    _request_builder(opts)  # fail on incomplete SOAP options before anything else
    conn = resolve_connection(conn)
    make_items = _reader(opts)
    total: int | None = None
    if input_path != "-":
        try:
            size = os.path.getsize(input_path)
        except OSError as exc:
            raise CliError(f"cannot read {input_path}: {exc.strerror}") from None
        if size <= _COUNT_LIMIT:
            total = count_items(make_items, source=input_path)
    done_ids = _prepare_output(opts)
    stats = SweepStats()
    try:
        run_async(
            run_sweep(
                conn, opts, make_items=make_items, done_ids=done_ids, total=total, stats=stats
            )
        )
    except KeyboardInterrupt:
        raise CliError(
            f"interrupted after {stats.done} results (all of them are in "
            f"{'stdout' if output_path == '-' else output_path})",
            hint="run the same command with --resume to continue where it stopped",
            code=ExitCode.INTERRUPTED,
        ) from None
    rate = stats.done / stats.elapsed if stats.elapsed > 0 else 0.0
    where = "stdout" if output_path == "-" else output_path
    click.echo(
        f"sweep: {stats.done} done, {stats.skipped} skipped (--resume), {stats.faults} faulted, "
        f"{stats.retries} retries in {stats.elapsed:.1f} s ({rate:,.0f}/s); results in {where}",
        err=True,
    )
    return ExitCode.FAULTED if stats.faults else ExitCode.OK
