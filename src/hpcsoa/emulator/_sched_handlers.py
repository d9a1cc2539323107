"""aiohttp handlers of the scheduler operations (spec §6.3–§8) and ``install_scheduler``.

Every handler reads its parameters through ``RequestContext`` (query names are matched
case-insensitively), calls :class:`SchedulerState`, and answers with the DataContract bodies
of §2.6. A :class:`SchedulerFault` or a malformed body becomes a :class:`FaultError`, which
the app renders as ``HpcWebServiceFault`` or, for scheduler operations without
``api-version``, as the legacy ``<string>`` (§2.7).

Get Clusters and Get Version belong to the SOA half.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeVar

from .._exceptions import DecodeError
from ..protocol import Operation, parse_bool
from ..protocol._catalog import (
    JOB_LIST_DEFAULT_PROPERTIES,
    JOB_PROPERTIES,
    NODE_PROPERTIES,
    TASK_LIST_DEFAULT_PROPERTIES,
    TASK_PROPERTIES,
    Catalog,
    JobState,
    NodeState,
    TaskState,
    WireEnum,
    select,
)
from ..protocol._datacontract import (
    decode_property_array,
    decode_string,
    encode_int,
    encode_object_array,
    encode_property_array,
    encode_string,
    encode_string_array,
)
from ..protocol._jobxml import decode_job_xml
from ..protocol._paging import CONTINUATION_HEADER, LEGACY_CONTINUATION_HEADER
from ._context import FaultError, Handler, RequestContext, empty_response, xml_response
from ._sched_queries import ListFilter, parse_filter, sort_key
from ._sched_records import Codes, SchedulerFault, job_value, node_value, task_value
from ._sched_render import job_pairs, job_xml, node_pairs, task_pairs, task_xml
from ._scheduler_state import SchedulerState

if TYPE_CHECKING:
    from aiohttp import web

    from ._state import EmulatorState

__all__ = ["install_scheduler", "scheduler_handlers"]

E = TypeVar("E", bound=WireEnum)

_FILTER_MIN_VERSION: Final = "2012-11-01"
_DEFAULT_ROWS: Final = 10


def _bad(code: int, message: str) -> FaultError:
    return FaultError(400, code, message)


def _faults(
    fn: Callable[[RequestContext, SchedulerState], Awaitable[web.StreamResponse]],
) -> Handler:
    """Adapt a handler: pass the scheduler, map ``SchedulerFault`` / ``DecodeError``."""

    @functools.wraps(fn)
    async def handler(ctx: RequestContext) -> web.StreamResponse:
        sched = ctx.state.scheduler
        if not isinstance(sched, SchedulerState):
            raise FaultError(404, Codes.INVALID_ARGUMENT, "The scheduler is not enabled.")
        sched.ensure_started()
        try:
            return await fn(ctx, sched)
        except SchedulerFault as exc:
            raise FaultError(exc.status, exc.code, exc.message) from None
        except DecodeError as exc:
            raise _bad(Codes.INVALID_ARGUMENT, f"The request body is not valid: {exc}") from None

    return handler


# --- parameters --------------------------------------------------------------------------------


def _int(ctx: RequestContext, name: str) -> int:
    raw = ctx.params[name]
    try:
        value = int(raw, 10)
    except ValueError:
        raise _bad(Codes.INVALID_ARGUMENT, f"{raw!r} is not a valid {name}.") from None
    if not 0 <= value <= 2**31 - 1:
        raise _bad(Codes.INVALID_ARGUMENT, f"{raw!r} is not a valid {name}.")
    return value


def _bool(ctx: RequestContext, name: str, default: bool) -> bool:
    raw = ctx.q(name)
    if raw is None or raw == "":
        return default
    try:
        return parse_bool(raw)
    except ValueError:
        raise _bad(Codes.INVALID_ARGUMENT, f"{name}={raw!r} is not True or False.") from None


def _names(ctx: RequestContext, param: str = "Names") -> list[str] | None:
    raw = ctx.q(param)
    if raw is None or not raw.strip():
        return None
    return [n.strip() for n in raw.split(",") if n.strip()]


def _properties(ctx: RequestContext, catalog: Catalog) -> list[str] | None:
    names = _names(ctx, "Properties")
    if names is None:
        return None
    try:
        return select(catalog, names)
    except ValueError as exc:
        raise _bad(Codes.INVALID_PROPERTY, f"{exc}.") from None


def _xml_render(ctx: RequestContext) -> bool:
    raw = ctx.q("Render")
    if raw is None or raw == "" or raw.lower() == "restproprender":
        return False
    if raw.lower() == "hpcjobxml":
        return True
    raise _bad(Codes.INVALID_ARGUMENT, f"Render={raw!r}: expected RestPropRender or HpcJobXml.")


def _rows(ctx: RequestContext) -> int:
    raw = ctx.q("RowsPerRead")
    if raw is None or raw == "":
        return _DEFAULT_ROWS
    try:
        value = int(raw, 10)
    except ValueError:
        value = 0
    if value < 1:
        raise _bad(Codes.INVALID_ARGUMENT, f"RowsPerRead={raw!r}: expected a positive integer.")
    return value


def _filter(ctx: RequestContext, state_name: str, enum_cls: type[E]) -> ListFilter[E] | None:
    raw = ctx.q("$filter")
    if raw is None:
        return None
    render = ctx.q("Render")
    if render is None or render.lower() != "restproprender":
        raise _bad(Codes.INVALID_QUERY, "$filter requires Render=RestPropRender.")
    if ctx.api_version is None or not ctx.api_version.at_least(_FILTER_MIN_VERSION):
        raise _bad(Codes.INVALID_QUERY, f"$filter requires api-version {_FILTER_MIN_VERSION}.")
    try:
        return parse_filter(raw, state_name, enum_cls)
    except ValueError as exc:
        raise _bad(Codes.INVALID_QUERY, f"$filter is not valid: {exc}") from None


def _sort_by(ctx: RequestContext, param: str, catalog: Catalog, default: str) -> str:
    raw = ctx.q(param)
    spec = catalog.lookup(raw) if raw else None
    return spec.name if spec is not None and spec.get else default  # unknown → by id


async def _props_body(ctx: RequestContext) -> list[tuple[str, str | None]]:
    return decode_property_array(await ctx.body())


async def _message(ctx: RequestContext) -> str:
    body = await ctx.body()
    if not body.strip():
        return ""  # the C# sample sends no body at all when there is no reason
    return decode_string(body)


# --- paging (§2.8) -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Query:
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Page:
    keys: list[object]
    names: tuple[str, ...]
    token: str | None  # x-ms-continuation-QueryId
    next_object: int | None  # x-ms-continuation-CurrentObjectNumber (pre-SP3)


def _page(
    ctx: RequestContext,
    sched: SchedulerState,
    scope: Hashable,
    names: Sequence[str],
    compute: Callable[[], list[object]],
    page_size: int,
) -> _Page:
    """One page of a list (§2.8): resumed from ``QueryId``, else computed afresh.

    The deprecated pre-SP3 ``CurrentObjectNumber`` is honoured too: it skips that many rows
    of a fresh query, and every page that is not the last names the next row number.
    """
    token = ctx.q("QueryId")
    if token:
        got = sched.queries.resume(token, user=ctx.user, operation=ctx.operation.value, scope=scope)
        if got is None:
            raise _bad(Codes.INVALID_QUERY, "The QueryId is unknown or has expired.")
        keys, next_token, params = got
        assert isinstance(params, _Query)
        return _Page(keys, params.names, next_token, None)
    raw_start = ctx.q("CurrentObjectNumber")
    try:
        start = int(raw_start or "0", 10)
    except ValueError:
        start = -1
    if start < 0:
        raise _bad(Codes.INVALID_ARGUMENT, f"CurrentObjectNumber={raw_start!r} is not valid.")
    rows = compute()[start:]
    keys, next_token = sched.queries.page(
        rows,
        page_size,
        user=ctx.user,
        operation=ctx.operation.value,
        scope=scope,
        params=_Query(tuple(names)),
    )
    next_object = start + len(keys) if next_token is not None else None
    return _Page(keys, tuple(names), next_token, next_object)


def _list_response(objects: list[list[tuple[str, str | None]]], page: _Page) -> web.Response:
    resp = xml_response(encode_object_array(objects))
    if page.token is not None:
        resp.headers[CONTINUATION_HEADER] = page.token
    if page.next_object is not None:
        resp.headers[LEGACY_CONTINUATION_HEADER] = str(page.next_object)
    return resp


# --- cluster, nodes, templates (§6) ---------------------------------------------------------------


@_faults
async def get_active_head_node(ctx: RequestContext, sched: SchedulerState) -> web.StreamResponse:
    return xml_response(encode_string(sched.head_node))


@_faults
async def get_node(ctx: RequestContext, sched: SchedulerState) -> web.StreamResponse:
    node = sched.node(ctx.params["node"])
    return xml_response(encode_property_array(node_pairs(node, NODE_PROPERTIES.names)))


@_faults
async def list_nodes(ctx: RequestContext, sched: SchedulerState) -> web.StreamResponse:
    names = _properties(ctx, NODE_PROPERTIES) or list(NODE_PROPERTIES.names)
    flt = _filter(ctx, "NodeState", NodeState)
    sort = _sort_by(ctx, "SortNodesBy", NODE_PROPERTIES, "Id")

    def compute() -> list[object]:
        nodes = [
            n for n in sched.nodes.values() if flt is None or flt.matches(n.state, n.change_time)
        ]
        nodes.sort(key=lambda n: sort_key(node_value(n, sort), n.id))
        return [n.name for n in nodes]

    page = _page(ctx, sched, None, names, compute, _rows(ctx))
    objects = [
        node_pairs(sched.nodes[str(k).lower()], page.names)
        for k in page.keys
        if str(k).lower() in sched.nodes
    ]
    return _list_response(objects, page)


@_faults
async def list_node_groups(ctx: RequestContext, sched: SchedulerState) -> web.StreamResponse:
    objects = [[("Name", name), ("Description", desc)] for name, desc in sched.groups.values()]
    return xml_response(encode_object_array(objects))


@_faults
async def get_node_group_members(ctx: RequestContext, sched: SchedulerState) -> web.StreamResponse:
    return xml_response(encode_string_array(sched.group_members(ctx.params["group"])))


@_faults
async def list_job_templates(ctx: RequestContext, sched: SchedulerState) -> web.StreamResponse:
    return xml_response(encode_string_array(sched.templates))


# --- jobs (§7) -----------------------------------------------------------------------------------


@_faults
async def create_job(ctx: RequestContext, sched: SchedulerState) -> web.StreamResponse:
    return xml_response(encode_int(sched.create_job(ctx.user, await _props_body(ctx))))


@_faults
async def create_job_from_xml(ctx: RequestContext, sched: SchedulerState) -> web.StreamResponse:
    doc = decode_job_xml(await ctx.body())
    return xml_response(encode_int(sched.create_job_from_xml(ctx.user, doc)))


@_faults
async def get_job(ctx: RequestContext, sched: SchedulerState) -> web.StreamResponse:
    names = _properties(ctx, JOB_PROPERTIES)
    as_xml = _xml_render(ctx)
    job = sched.job(_int(ctx, "job_id"))
    if as_xml:
        return xml_response(job_xml(sched, job, names))
    return xml_response(
        encode_property_array(job_pairs(sched, job, names or JOB_PROPERTIES.gettable))
    )


@_faults
async def list_jobs(ctx: RequestContext, sched: SchedulerState) -> web.StreamResponse:
    names = _properties(ctx, JOB_PROPERTIES) or list(JOB_LIST_DEFAULT_PROPERTIES)
    flt = _filter(ctx, "JobState", JobState)
    sort = _sort_by(ctx, "SortJobsBy", JOB_PROPERTIES, "Id")
    owner = ctx.q("Owner")

    def compute() -> list[object]:
        jobs = [
            j
            for j in sched.jobs.values()
            if (not owner or j.owner.lower() == owner.lower())
            and (flt is None or flt.matches(j.state, j.change_time))
        ]
        if sort != "Id":
            jobs.sort(key=lambda j: sort_key(job_value(j, sort, []), j.id))
        else:
            jobs.sort(key=lambda j: j.id)
        return [j.id for j in jobs]

    page = _page(ctx, sched, None, names, compute, _rows(ctx))
    objects = [job_pairs(sched, sched.jobs[k], page.names) for k in page.keys if k in sched.jobs]
    return _list_response(objects, page)


@_faults
async def set_job_properties(ctx: RequestContext, sched: SchedulerState) -> web.StreamResponse:
    sched.set_job_properties(ctx.user, _int(ctx, "job_id"), await _props_body(ctx))
    return empty_response()


@_faults
async def submit_job(ctx: RequestContext, sched: SchedulerState) -> web.StreamResponse:
    sched.submit_job(ctx.user, _int(ctx, "job_id"), await _props_body(ctx))
    return empty_response()


@_faults
async def cancel_job(ctx: RequestContext, sched: SchedulerState) -> web.StreamResponse:
    forced = _bool(ctx, "Forced", False)
    sched.cancel_job(ctx.user, _int(ctx, "job_id"), await _message(ctx), forced)
    return empty_response()


@_faults
async def requeue_job(ctx: RequestContext, sched: SchedulerState) -> web.StreamResponse:
    sched.requeue_job(ctx.user, _int(ctx, "job_id"))  # any properties in the body are ignored
    return empty_response()


@_faults
async def get_job_custom_properties(
    ctx: RequestContext, sched: SchedulerState
) -> web.StreamResponse:
    job = sched.job(_int(ctx, "job_id"))
    return xml_response(
        encode_property_array(sched.get_pairs(job.custom, _names(ctx), missing=None))
    )


@_faults
async def set_job_custom_properties(
    ctx: RequestContext, sched: SchedulerState
) -> web.StreamResponse:
    job = sched.job(_int(ctx, "job_id"))
    sched.set_pairs(ctx.user, job, job.custom, await _props_body(ctx), env=False)
    return empty_response()


@_faults
async def get_job_env(ctx: RequestContext, sched: SchedulerState) -> web.StreamResponse:
    job = sched.job(_int(ctx, "job_id"))
    return xml_response(encode_property_array(sched.get_pairs(job.env, _names(ctx), missing="")))


@_faults
async def set_job_env(ctx: RequestContext, sched: SchedulerState) -> web.StreamResponse:
    job = sched.job(_int(ctx, "job_id"))
    sched.set_pairs(ctx.user, job, job.env, await _props_body(ctx), env=True)
    return empty_response()


# --- tasks and subtasks (§8) ---------------------------------------------------------------------


@_faults
async def add_task(ctx: RequestContext, sched: SchedulerState) -> web.StreamResponse:
    task_id = sched.add_task(ctx.user, _int(ctx, "job_id"), await _props_body(ctx))
    return xml_response(encode_int(task_id))


@_faults
async def list_tasks(ctx: RequestContext, sched: SchedulerState) -> web.StreamResponse:
    job = sched.job(_int(ctx, "job_id"))
    names = _properties(ctx, TASK_PROPERTIES) or list(TASK_LIST_DEFAULT_PROPERTIES)
    expand = _bool(ctx, "ExpandParametric", True)
    flt = _filter(ctx, "TaskState", TaskState)
    sort = _sort_by(ctx, "SortTasksBy", TASK_PROPERTIES, "")

    def compute() -> list[object]:
        rows = [
            (t, u)
            for t, u in sched.task_rows(job, expand)
            if flt is None or flt.matches(u.state, u.change_time)
        ]
        if sort:
            rows.sort(key=lambda r: sort_key(task_value(job, r[0], r[1], sort), r[0].nice_id))
        return [(t.nice_id, getattr(u, "instance_id", 0)) for t, u in rows]

    page = _page(ctx, sched, job.id, names, compute, _rows(ctx))
    objects = []
    for key in page.keys:
        assert isinstance(key, tuple)
        row = sched.find_row(job, key)
        if row is not None:
            objects.append(task_pairs(job, row[0], row[1], page.names))
    return _list_response(objects, page)


@_faults
async def get_task(ctx: RequestContext, sched: SchedulerState) -> web.StreamResponse:
    names = _properties(ctx, TASK_PROPERTIES)
    as_xml = _xml_render(ctx)
    job, task = sched.task(_int(ctx, "job_id"), _int(ctx, "task_id"))
    if as_xml:
        return xml_response(task_xml(job, task, task, names))
    pairs = task_pairs(job, task, task, names or TASK_PROPERTIES.gettable)
    return xml_response(encode_property_array(pairs))


@_faults
async def set_task_properties(ctx: RequestContext, sched: SchedulerState) -> web.StreamResponse:
    job_id, task_id = _int(ctx, "job_id"), _int(ctx, "task_id")
    sched.set_task_properties(ctx.user, job_id, task_id, await _props_body(ctx))
    return empty_response()


@_faults
async def cancel_task(ctx: RequestContext, sched: SchedulerState) -> web.StreamResponse:
    _bool(ctx, "Forced", False)
    job_id, task_id = _int(ctx, "job_id"), _int(ctx, "task_id")
    sched.cancel_task(ctx.user, job_id, task_id, await _message(ctx))
    return empty_response()


@_faults
async def requeue_task(ctx: RequestContext, sched: SchedulerState) -> web.StreamResponse:
    sched.requeue_task(ctx.user, _int(ctx, "job_id"), _int(ctx, "task_id"))
    return empty_response()


@_faults
async def get_task_custom_properties(
    ctx: RequestContext, sched: SchedulerState
) -> web.StreamResponse:
    _job, task = sched.task(_int(ctx, "job_id"), _int(ctx, "task_id"))
    return xml_response(
        encode_property_array(sched.get_pairs(task.custom, _names(ctx), missing=None))
    )


@_faults
async def set_task_custom_properties(
    ctx: RequestContext, sched: SchedulerState
) -> web.StreamResponse:
    job, task = sched.task(_int(ctx, "job_id"), _int(ctx, "task_id"))
    sched.set_pairs(ctx.user, job, task.custom, await _props_body(ctx), env=False)
    return empty_response()


@_faults
async def get_task_env(ctx: RequestContext, sched: SchedulerState) -> web.StreamResponse:
    _job, task = sched.task(_int(ctx, "job_id"), _int(ctx, "task_id"))
    return xml_response(encode_property_array(sched.get_pairs(task.env, _names(ctx), missing="")))


@_faults
async def set_task_env(ctx: RequestContext, sched: SchedulerState) -> web.StreamResponse:
    job, task = sched.task(_int(ctx, "job_id"), _int(ctx, "task_id"))
    sched.set_pairs(ctx.user, job, task.env, await _props_body(ctx), env=True)
    return empty_response()


def _sub_ids(ctx: RequestContext) -> tuple[int, int, int]:
    return _int(ctx, "job_id"), _int(ctx, "task_id"), _int(ctx, "subtask_id")


@_faults
async def get_subtask(ctx: RequestContext, sched: SchedulerState) -> web.StreamResponse:
    names = _properties(ctx, TASK_PROPERTIES)
    as_xml = _xml_render(ctx)
    job, task, sub = sched.subtask(*_sub_ids(ctx))
    if as_xml:
        return xml_response(task_xml(job, task, sub, names))
    pairs = task_pairs(job, task, sub, names or TASK_PROPERTIES.gettable)
    return xml_response(encode_property_array(pairs))


@_faults
async def set_subtask_properties(ctx: RequestContext, sched: SchedulerState) -> web.StreamResponse:
    sched.set_subtask_properties(ctx.user, *_sub_ids(ctx), await _props_body(ctx))
    return empty_response()


@_faults
async def cancel_subtask(ctx: RequestContext, sched: SchedulerState) -> web.StreamResponse:
    _bool(ctx, "Forced", False)
    sched.cancel_subtask(ctx.user, *_sub_ids(ctx), await _message(ctx))
    return empty_response()


@_faults
async def requeue_subtask(ctx: RequestContext, sched: SchedulerState) -> web.StreamResponse:
    sched.requeue_subtask(ctx.user, *_sub_ids(ctx))
    return empty_response()


def scheduler_handlers() -> dict[Operation, Handler]:
    """Operation → handler for every scheduler, node and template operation."""
    return {
        Operation.GET_ACTIVE_HEAD_NODE: get_active_head_node,
        Operation.GET_NODE: get_node,
        Operation.LIST_NODES: list_nodes,
        Operation.LIST_NODE_GROUPS: list_node_groups,
        Operation.GET_NODE_GROUP_MEMBERS: get_node_group_members,
        Operation.LIST_JOB_TEMPLATES: list_job_templates,
        Operation.CREATE_JOB: create_job,
        Operation.CREATE_JOB_FROM_XML: create_job_from_xml,
        Operation.LIST_JOBS: list_jobs,
        Operation.GET_JOB: get_job,
        Operation.SET_JOB_PROPERTIES: set_job_properties,
        Operation.SUBMIT_JOB: submit_job,
        Operation.CANCEL_JOB: cancel_job,
        Operation.REQUEUE_JOB: requeue_job,
        Operation.GET_JOB_CUSTOM_PROPERTIES: get_job_custom_properties,
        Operation.SET_JOB_CUSTOM_PROPERTIES: set_job_custom_properties,
        Operation.GET_JOB_ENV: get_job_env,
        Operation.SET_JOB_ENV: set_job_env,
        Operation.ADD_TASK: add_task,
        Operation.LIST_TASKS: list_tasks,
        Operation.GET_TASK: get_task,
        Operation.SET_TASK_PROPERTIES: set_task_properties,
        Operation.CANCEL_TASK: cancel_task,
        Operation.REQUEUE_TASK: requeue_task,
        Operation.GET_TASK_CUSTOM_PROPERTIES: get_task_custom_properties,
        Operation.SET_TASK_CUSTOM_PROPERTIES: set_task_custom_properties,
        Operation.GET_TASK_ENV: get_task_env,
        Operation.SET_TASK_ENV: set_task_env,
        Operation.GET_SUBTASK: get_subtask,
        Operation.SET_SUBTASK_PROPERTIES: set_subtask_properties,
        Operation.CANCEL_SUBTASK: cancel_subtask,
        Operation.REQUEUE_SUBTASK: requeue_subtask,
    }


def install_scheduler(state: EmulatorState) -> SchedulerState:
    """Create the scheduler for ``state``, wire the SOA broker's hooks, register handlers.

    SOA session ids then come from the job-id sequence and every session is visible as a
    Running service job (G28); canceling that job closes the session. Idempotent.
    """
    if isinstance(state.scheduler, SchedulerState):
        return state.scheduler
    sched = SchedulerState(state.config, state.clock)
    broker = state.broker
    broker.allocate_id = sched.allocate_job_id
    broker.on_session_created = sched.on_session_created
    broker.on_session_closed = sched.on_session_closed

    def close_session(session_id: int) -> None:
        session = broker.sessions.get(session_id)
        if session is not None:
            broker.close_session(session_id, session.owner)

    sched.on_service_job_canceled = close_session
    state.scheduler = sched
    state.extra_handlers.update(scheduler_handlers())
    return sched
