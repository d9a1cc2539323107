"""``hpcsoa session ...``: the SOA operations one at a time, for debugging an endpoint.

Each command is one process, so a session created here outlives the command: ``create``
prints the id, later commands name it (``attach`` checks it, ``close`` ends it).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import click

from ._base import HpcGroup, run_async
from ._errors import CliError, ExitCode
from ._options import Connection, connection_options, open_client, resolve_connection
from ._output import emit_json, enum_text, print_table, to_jsonable
from ._sweep_io import SweepItem, as_text, iter_csv, iter_jsonl

if TYPE_CHECKING:
    from hpcsoa import BrokerClientStatus, HpcClient, SoaSession

__all__ = ["session"]

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
batch_option = click.option(
    "--batch",
    "batch_name",
    default="default",
    show_default=True,
    help="Batch (broker client id).",
)
durable_option = click.option("--durable", is_flag=True, help="The session is durable.")


def _session_info(session: SoaSession) -> dict[str, Any]:
    return {
        "id": session.id,
        "broker_node": session.broker_node,
        "durable": session.is_durable,
        "max_message_size": session.max_message_size,
    }


def _print_info(info: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(info)
    else:
        print_table(["field", "value"], list(info.items()), show_header=False)


def _show_session(
    conn: Connection,
    as_json: bool,
    open_session: Callable[[HpcClient], Awaitable[SoaSession]],
) -> None:
    """Create or attach, print what the service says, and leave the session running."""

    async def go() -> dict[str, Any]:
        async with open_client(conn) as client:
            s = await open_session(client)
            info = _session_info(s)
            await s.detach()
            return info

    _print_info(run_async(go()), as_json)


@click.group(cls=HpcGroup)
def session() -> None:
    """Create, inspect and close SOA sessions and their batches, one call at a time."""


@session.command()
@click.option("--service", required=True, help="SOA service name, e.g. CcpEchoSvc.")
@durable_option
@json_option
@connection_options
def create(conn: Connection, service: str, durable: bool, as_json: bool) -> int:
    """Create a session and print its id (it stays open: close it with `session close`)."""
    conn = resolve_connection(conn)
    _show_session(conn, as_json, lambda c: c.create_session(service, durable=durable))
    return ExitCode.OK


@session.command()
@click.argument("session_id", type=int)
@durable_option
@json_option
@connection_options
def attach(conn: Connection, session_id: int, durable: bool, as_json: bool) -> int:
    """Attach to a session and print what the service says about it."""
    conn = resolve_connection(conn)
    _show_session(conn, as_json, lambda c: c.attach_session(session_id, durable=durable))
    return ExitCode.OK


@session.command()
@click.argument("session_id", type=int)
@durable_option
@connection_options
def close(conn: Connection, session_id: int, durable: bool) -> int:
    """Close a session (ends its service job; stored responses are deleted)."""
    conn = resolve_connection(conn)

    async def go() -> None:
        async with open_client(conn) as client:
            s = await client.attach_session(session_id, durable=durable)
            await s.aclose()

    run_async(go())
    click.echo(f"session {session_id} closed", err=True)
    return ExitCode.OK


@session.command()
@click.argument("session_id", type=int)
@batch_option
@durable_option
@json_option
@connection_options
def status(conn: Connection, session_id: int, batch_name: str, durable: bool, as_json: bool) -> int:
    """Print a batch's status (Ready, Processing, Finished, ...)."""
    conn = resolve_connection(conn)

    async def go() -> BrokerClientStatus:
        async with open_client(conn) as client:
            s = await client.attach_session(session_id, durable=durable)
            try:
                return await s.batch(batch_name).status()
            finally:
                await s.detach()

    name = enum_text(run_async(go()))
    if as_json:
        emit_json({"session": session_id, "batch": batch_name, "status": name})
    else:
        click.echo(name)
    return ExitCode.OK


@session.command()
@click.argument("session_id", type=int)
@batch_option
@durable_option
@connection_options
def purge(conn: Connection, session_id: int, batch_name: str, durable: bool) -> int:
    """Delete a batch's requests and responses (open response streams end)."""
    conn = resolve_connection(conn)

    async def go() -> None:
        async with open_client(conn) as client:
            s = await client.attach_session(session_id, durable=durable)
            try:
                await s.batch(batch_name).purge()
            finally:
                await s.detach()

    run_async(go())
    click.echo(f"batch {batch_name!r} of session {session_id} purged", err=True)
    return ExitCode.OK


@session.command()
@click.argument("session_id", type=int)
@batch_option
@click.option("--input", "input_path", required=True, help="JSONL or CSV inputs, or - (stdin).")
@click.option("--input-column", help="CSV column holding the input.")
@click.option("--commit/--no-commit", default=True, show_default=True, help="Commit after sending.")
@click.option("--generic/--soap", default=True, show_default=True)
@durable_option
@connection_options
def send(
    conn: Connection,
    session_id: int,
    batch_name: str,
    input_path: str,
    input_column: str | None,
    commit: bool,
    generic: bool,
    durable: bool,
) -> int:
    """Send inputs into a batch (and commit it): read the results with `session responses`."""
    if not generic:
        raise CliError("session send supports generic services only; use `hpcsoa sweep --soap`")
    conn = resolve_connection(conn)
    items = _read_inputs(input_path, input_column)

    async def go() -> int:
        async with open_client(conn) as client:
            s = await client.attach_session(session_id, durable=durable)
            try:
                batch = s.batch(batch_name, generic=generic)
                sent = await batch.send([as_text(item.input) for item in items])
                if commit:
                    await batch.commit()
                return sent
            finally:
                await s.detach()

    sent = run_async(go())
    click.echo(f"{sent} requests sent to batch {batch_name!r}" + (", committed" * commit), err=True)
    return ExitCode.OK


def _read_inputs(path: str, input_column: str | None) -> list[SweepItem]:
    if path == "-":
        return list(iter_jsonl(sys.stdin.buffer, source="<stdin>"))
    try:
        stream = open(path, "rb")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    with stream:
        if input_column is not None or path.lower().endswith(".csv"):
            return list(iter_csv(stream, source=path, input_column=input_column, id_column=None))
        return list(iter_jsonl(stream, source=path))


@session.command()
@click.argument("session_id", type=int)
@batch_option
@click.option("--generic/--soap", default=True, show_default=True)
@durable_option
@connection_options
def responses(
    conn: Connection, session_id: int, batch_name: str, generic: bool, durable: bool
) -> int:
    """Stream a batch's responses to stdout as JSON lines until the end of the batch."""
    conn = resolve_connection(conn)

    async def go() -> int:
        faults = 0
        async with open_client(conn) as client:
            s = await client.attach_session(session_id, durable=durable)
            try:
                batch = s.batch(batch_name, generic=generic)
                async with batch.responses() as stream:
                    async for r in stream:
                        if r.fault is not None:
                            faults += 1
                        emit_json(
                            {
                                "output": r.output,
                                "user_data": r.user_data,
                                "action": r.action,
                                "message_id": r.message_id,
                                "fault": to_jsonable(r.fault),
                            }
                        )
            finally:
                await s.detach()
        return faults

    faults = run_async(go())
    return ExitCode.FAULTED if faults else ExitCode.OK
