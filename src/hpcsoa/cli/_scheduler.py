"""``hpcsoa jobs|tasks|nodes|cluster ...``: the scheduler API from the command line.

Tables by default, ``--json`` for scripts: list commands print one JSON object per line
(JSON Lines, streamed page by page as pages arrive), other commands one JSON object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import click

from ._base import HpcGroup, run_async
from ._errors import ExitCode
from ._options import Connection, connection_options, open_client, resolve_connection
from ._output import emit_json, make_console, print_table, to_jsonable

if TYPE_CHECKING:
    from hpcsoa import AsyncPager

__all__ = ["cluster", "jobs", "nodes", "tasks"]

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
page_size_option = click.option(
    "--page-size", type=click.IntRange(1, 100_000), default=None, help="Rows per page."
)

JOB_COLUMNS = ("Id", "Name", "State", "Owner", "Priority", "SubmitTime")
TASK_COLUMNS = ("TaskId", "Name", "State", "CommandLine", "ExitCode")
NODE_COLUMNS = ("Name", "State", "Reachable", "NumCores", "NodeGroups")


class _Model(Protocol):
    """What the CLI needs of ``hpcsoa.Job`` / ``Task`` / ``Node``."""

    properties: Mapping[str, object]

    def get(self, name: str, default: object = None) -> object: ...


def _model_json(model: _Model) -> dict[str, Any]:
    """Typed fields plus every property, JSON-ready (enums by name, dates as ISO 8601)."""
    out = to_jsonable(model)
    if isinstance(out, dict):
        out.pop("raw", None)
        return out
    return {"properties": to_jsonable(model.properties)}


def _rows(models: Sequence[_Model], columns: Sequence[str]) -> list[list[Any]]:
    return [[m.get(c) for c in columns] for m in models]


async def _stream_list(
    pager: AsyncPager[Any], columns: Sequence[str], as_json: bool, title: str
) -> int:
    """Print a listing page by page as pages arrive; returns the number of items."""
    count = 0
    console = None if as_json else make_console()
    first = True
    async for page in pager.by_page():
        count += len(page)
        if as_json:
            for model in page:
                emit_json(_model_json(model))
        elif page or first:
            print_table(
                columns,
                _rows(page, columns),
                title=title if first else None,
                show_header=first,
                console=console,
            )
        first = False
    return count


def _parse_properties(pairs: Sequence[str]) -> dict[str, object]:
    props: dict[str, object] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="'--set'")
        props[name.strip()] = value
    return props


def _show(model: _Model, as_json: bool, title: str) -> None:
    if as_json:
        emit_json(_model_json(model))
        return
    print_table(["property", "value"], list(model.properties.items()), title=title)


# --- jobs ----------------------------------------------------------------------------------


@click.group(cls=HpcGroup)
def jobs() -> None:
    """List, show, create, change, submit, cancel, requeue and wait for jobs."""


@jobs.command("list")
@click.option("--owner", help="Only jobs of this owner.")
@click.option("--state", help="Only jobs in this state (e.g. Running).")
@page_size_option
@json_option
@connection_options
def jobs_list(
    conn: Connection, owner: str | None, state: str | None, page_size: int | None, as_json: bool
) -> int:
    """List jobs, printing each page as it arrives."""
    conn = resolve_connection(conn)

    async def go() -> int:
        async with open_client(conn) as client:
            pager = client.jobs.list(
                owner=owner,
                state=state,
                page_size=page_size,
                properties=None if as_json else list(JOB_COLUMNS),
            )
            return await _stream_list(pager, JOB_COLUMNS, as_json, "jobs")

    run_async(go())
    return ExitCode.OK


@jobs.command("show")
@click.argument("job_id", type=int)
@json_option
@connection_options
def jobs_show(conn: Connection, job_id: int, as_json: bool) -> int:
    """Show every property of a job."""
    conn = resolve_connection(conn)

    async def go() -> Any:
        async with open_client(conn) as client:
            return await client.jobs.get(job_id)

    _show(run_async(go()), as_json, f"job {job_id}")
    return ExitCode.OK


# The wire spellings of hpcsoa.JobPriority (spec: Job Priority values).
_PRIORITIES = ("Lowest", "BelowNormal", "Normal", "AboveNormal", "Highest")


def _priority(value: str | None) -> str | None:
    """The wire spelling of a priority given in any case (click.Choice would list the
    choices lower-cased in its error, which are not the names the spec and README use)."""
    if value is None:
        return None
    for name in _PRIORITIES:
        if name.lower() == value.lower():
            return name
    raise click.BadParameter(f"{value!r} is not one of {', '.join(_PRIORITIES)}")


@jobs.command("create")
@click.option("--name", help="Job name.")
@click.option(
    "--priority",
    # A choice, not free text: a typo (or "High") is a usage error naming the valid values
    # before any request is made; any case is accepted and normalised to the wire spelling.
    callback=lambda _ctx, _param, value: _priority(value),
    metavar="PRIORITY",
    help="Lowest, BelowNormal, Normal, AboveNormal or Highest (any case).",
)
@click.option("--set", "props", multiple=True, metavar="NAME=VALUE", help="Any job property.")
@click.option(
    "--xml",
    "xml_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Create from a job XML file instead.",
)
@click.option("--submit", is_flag=True, help="Submit the job right away.")
@json_option
@connection_options
def jobs_create(
    conn: Connection,
    name: str | None,
    priority: str | None,
    props: tuple[str, ...],
    xml_file: str | None,
    submit: bool,
    as_json: bool,
) -> int:
    """Create a job and print its id."""
    properties = _parse_properties(props)
    if xml_file is not None and (properties or name or priority):
        raise click.UsageError("--xml cannot be combined with --name, --priority or --set")
    xml_text = None
    if xml_file is not None:
        with open(xml_file, encoding="utf-8") as f:
            xml_text = f.read()
    conn = resolve_connection(conn)

    async def go() -> int:
        async with open_client(conn) as client:
            if xml_text is not None:
                job_id = await client.jobs.create_from_xml(xml_text)
            else:
                job_id = await client.jobs.create(name=name, priority=priority, **properties)
            if submit:
                await client.jobs.submit(job_id)
            return int(job_id)

    job_id = run_async(go())
    if as_json:
        emit_json({"id": job_id, "submitted": submit})
    else:
        click.echo(job_id)
    return ExitCode.OK


@jobs.command("submit")
@click.argument("job_id", type=int)
@connection_options
def jobs_submit(conn: Connection, job_id: int) -> int:
    """Submit a job (Configuring → Queued)."""
    conn = resolve_connection(conn)

    async def go() -> None:
        async with open_client(conn) as client:
            await client.jobs.submit(job_id)

    run_async(go())
    click.echo(f"job {job_id}: submitted", err=True)
    return ExitCode.OK


@jobs.command("requeue")
@click.argument("job_id", type=int)
@connection_options
def jobs_requeue(conn: Connection, job_id: int) -> int:
    """Requeue a failed or canceled job."""
    conn = resolve_connection(conn)

    async def go() -> None:
        async with open_client(conn) as client:
            await client.jobs.requeue(job_id)

    run_async(go())
    click.echo(f"job {job_id}: requeued", err=True)
    return ExitCode.OK


@jobs.command("set")
@click.argument("job_id", type=int)
@click.option(
    "--set", "props", multiple=True, required=True, metavar="NAME=VALUE", help="A job property."
)
@connection_options
def jobs_set(conn: Connection, job_id: int, props: tuple[str, ...]) -> int:
    """Change job properties (which ones may change depends on the job's state)."""
    properties = _parse_properties(props)
    conn = resolve_connection(conn)

    async def go() -> None:
        async with open_client(conn) as client:
            await client.jobs.set_properties(job_id, properties)

    run_async(go())
    click.echo(f"job {job_id}: {', '.join(properties)} set", err=True)
    return ExitCode.OK


@jobs.command("cancel")
@click.argument("job_id", type=int)
@click.option("--message", default="", help="Reason recorded with the cancellation.")
@click.option("--forced", is_flag=True, help="Cancel without grace period.")
@connection_options
def jobs_cancel(conn: Connection, job_id: int, message: str, forced: bool) -> int:
    """Cancel a job."""
    conn = resolve_connection(conn)

    async def go() -> None:
        async with open_client(conn) as client:
            await client.jobs.cancel(job_id, message, forced=forced)

    run_async(go())
    click.echo(f"job {job_id}: canceled", err=True)
    return ExitCode.OK


@jobs.command("wait")
@click.argument("job_id", type=int)
@click.option("--timeout", type=click.FloatRange(0.1), default=None, help="Give up after S s.")
@json_option
@connection_options
def jobs_wait(conn: Connection, job_id: int, timeout: float | None, as_json: bool) -> int:
    """Wait until a job ends; exit 5 unless it Finished."""
    conn = resolve_connection(conn)

    async def go() -> Any:
        async with open_client(conn) as client:
            return await client.jobs.wait(job_id, timeout=timeout)

    job = run_async(go())
    state = str(job.state)
    if as_json:
        emit_json(_model_json(job))
    else:
        click.echo(f"job {job_id}: {state}")
    return ExitCode.OK if state.lower() == "finished" else ExitCode.FAULTED


# --- tasks ---------------------------------------------------------------------------------


@click.group(cls=HpcGroup)
def tasks() -> None:
    """List, show, add, change, cancel and requeue the tasks of a job."""


@tasks.command("list")
@click.argument("job_id", type=int)
@page_size_option
@json_option
@connection_options
def tasks_list(conn: Connection, job_id: int, page_size: int | None, as_json: bool) -> int:
    """List the tasks of a job."""
    conn = resolve_connection(conn)

    async def go() -> int:
        async with open_client(conn) as client:
            pager = client.tasks.list(
                job_id, page_size=page_size, properties=None if as_json else list(TASK_COLUMNS)
            )
            return await _stream_list(pager, TASK_COLUMNS, as_json, f"tasks of job {job_id}")

    run_async(go())
    return ExitCode.OK


@tasks.command("show")
@click.argument("job_id", type=int)
@click.argument("task_id", type=int)
@json_option
@connection_options
def tasks_show(conn: Connection, job_id: int, task_id: int, as_json: bool) -> int:
    """Show every property of a task."""
    conn = resolve_connection(conn)

    async def go() -> Any:
        async with open_client(conn) as client:
            return await client.tasks.get(job_id, task_id)

    _show(run_async(go()), as_json, f"task {job_id}.{task_id}")
    return ExitCode.OK


@tasks.command("add")
@click.argument("job_id", type=int)
@click.option("--command-line", required=True, help="The command the task runs.")
@click.option("--name", help="Task name.")
@click.option(
    "--sweep",
    metavar="START:END[:STEP]",
    help="Make it a parametric sweep; * in the command line is replaced by the index.",
)
@click.option("--set", "props", multiple=True, metavar="NAME=VALUE", help="Any task property.")
@json_option
@connection_options
def tasks_add(
    conn: Connection,
    job_id: int,
    command_line: str,
    name: str | None,
    sweep: str | None,
    props: tuple[str, ...],
    as_json: bool,
) -> int:
    """Add a task to a job and print its id."""
    properties = _parse_properties(props)
    if sweep is not None:
        parts = sweep.split(":")
        if len(parts) not in (2, 3) or not all(p.strip().lstrip("-").isdigit() for p in parts):
            raise click.BadParameter("expected START:END or START:END:STEP", param_hint="--sweep")
        properties["Type"] = "ParametricSweep"
        properties["StartValue"] = parts[0]
        properties["EndValue"] = parts[1]
        properties["IncrementValue"] = parts[2] if len(parts) == 3 else "1"
    conn = resolve_connection(conn)

    async def go() -> int:
        async with open_client(conn) as client:
            return int(await client.tasks.add(job_id, command_line, name=name, **properties))

    task_id = run_async(go())
    if as_json:
        emit_json({"job_id": job_id, "id": task_id})
    else:
        click.echo(task_id)
    return ExitCode.OK


@tasks.command("set")
@click.argument("job_id", type=int)
@click.argument("task_id", type=int)
@click.option(
    "--set", "props", multiple=True, required=True, metavar="NAME=VALUE", help="A task property."
)
@connection_options
def tasks_set(conn: Connection, job_id: int, task_id: int, props: tuple[str, ...]) -> int:
    """Change task properties."""
    properties = _parse_properties(props)
    conn = resolve_connection(conn)

    async def go() -> None:
        async with open_client(conn) as client:
            await client.tasks.set_properties(job_id, task_id, properties)

    run_async(go())
    click.echo(f"task {job_id}.{task_id}: {', '.join(properties)} set", err=True)
    return ExitCode.OK


@tasks.command("cancel")
@click.argument("job_id", type=int)
@click.argument("task_id", type=int)
@click.option("--message", default="", help="Reason recorded with the cancellation.")
@click.option("--forced", is_flag=True, help="Cancel without grace period.")
@connection_options
def tasks_cancel(conn: Connection, job_id: int, task_id: int, message: str, forced: bool) -> int:
    """Cancel a task."""
    conn = resolve_connection(conn)

    async def go() -> None:
        async with open_client(conn) as client:
            await client.tasks.cancel(job_id, task_id, message, forced=forced)

    run_async(go())
    click.echo(f"task {job_id}.{task_id}: canceled", err=True)
    return ExitCode.OK


@tasks.command("requeue")
@click.argument("job_id", type=int)
@click.argument("task_id", type=int)
@connection_options
def tasks_requeue(conn: Connection, job_id: int, task_id: int) -> int:
    """Requeue a failed or canceled task."""
    conn = resolve_connection(conn)

    async def go() -> None:
        async with open_client(conn) as client:
            await client.tasks.requeue(job_id, task_id)

    run_async(go())
    click.echo(f"task {job_id}.{task_id}: requeued", err=True)
    return ExitCode.OK


# --- nodes and cluster ---------------------------------------------------------------------


@click.group(cls=HpcGroup)
def nodes() -> None:
    """List and show compute nodes and node groups."""


@nodes.command("list")
@page_size_option
@json_option
@connection_options
def nodes_list(conn: Connection, page_size: int | None, as_json: bool) -> int:
    """List the cluster's nodes."""
    conn = resolve_connection(conn)

    async def go() -> int:
        async with open_client(conn) as client:
            return await _stream_list(
                client.nodes.list(page_size=page_size), NODE_COLUMNS, as_json, "nodes"
            )

    run_async(go())
    return ExitCode.OK


@nodes.command("show")
@click.argument("name")
@json_option
@connection_options
def nodes_show(conn: Connection, name: str, as_json: bool) -> int:
    """Show every property of a node."""
    conn = resolve_connection(conn)

    async def go() -> Any:
        async with open_client(conn) as client:
            return await client.nodes.get(name)

    _show(run_async(go()), as_json, f"node {name}")
    return ExitCode.OK


@nodes.command("groups")
@click.argument("group", required=False)
@json_option
@connection_options
def nodes_groups(conn: Connection, group: str | None, as_json: bool) -> int:
    """List node groups, or the members of GROUP."""
    conn = resolve_connection(conn)

    async def go() -> Any:
        async with open_client(conn) as client:
            if group is None:
                return await client.nodes.groups()
            return await client.nodes.group_members(group)

    result = run_async(go())
    values = list(result)
    if as_json:
        emit_json(to_jsonable(values))
    else:
        column = "member" if group else "group"
        print_table([column], [[getattr(v, "name", v)] for v in values])
    return ExitCode.OK


@click.group(cls=HpcGroup)
def cluster() -> None:
    """Cluster-wide information."""


@cluster.command("info")
@json_option
@connection_options
def cluster_info(conn: Connection, as_json: bool) -> int:
    """Cluster names, service version, active head node and job templates."""
    conn = resolve_connection(conn)

    async def go() -> dict[str, Any]:
        async with open_client(conn) as client:
            info: dict[str, Any] = {}
            info["clusters"] = list(await client.cluster.names())
            info["version"] = await client.cluster.version()
            try:
                info["active_head_node"] = await client.cluster.active_head_node()
            except Exception as exc:  # older api-versions do not have it
                info["active_head_node"] = None
                info["active_head_node_error"] = str(exc)
            info["job_templates"] = list(await client.cluster.job_templates())
            return info

    info = run_async(go())
    if as_json:
        emit_json(to_jsonable(info))
    else:
        rows = [[k, ", ".join(map(str, v)) if isinstance(v, list) else v] for k, v in info.items()]
        print_table(["field", "value"], rows, show_header=False, title="cluster")
    return ExitCode.OK
