"""``client.tasks``: task and subtask operations of the scheduler API (spec §8)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from ..protocol import Operation
from ..protocol._catalog import TASK_PROPERTIES, TaskState
from ..protocol._datacontract import (
    decode_int,
    decode_property_array,
    encode_property_array,
    encode_string,
)
from ._common import (
    XML,
    encode_props,
    filter_query,
    list_pager,
    name_value_body,
    properties_query,
)
from ._models import Task

if TYPE_CHECKING:
    from .._paging import AsyncPager
    from ..transport._requester import Requester

__all__ = ["SubtasksApi", "TasksApi"]

Ids = dict[str, str | int]


async def _cancel(
    requester: Requester, operation: Operation, ids: Ids, message: str, forced: bool
) -> None:
    if len(message) > 128:
        raise ValueError("the cancel message is limited to 128 characters")
    await requester.call(
        operation,
        path_params=ids,
        query=[("Forced", "True")] if forced else [],
        body=encode_string(message) if message else b"",
        content_type=XML if message else None,
    )


async def _get(
    requester: Requester,
    operation: Operation,
    ids: Ids,
    properties: Sequence[str] | str | None,
    *,
    xml: bool = False,
) -> bytes:
    query = properties_query(properties)
    if xml:
        query.append(("Render", "HpcJobXml"))
    resp = await requester.call(operation, path_params=ids, query=query, accept="application/xml")
    return resp.body


async def _set(
    requester: Requester, operation: Operation, ids: Ids, values: Mapping[str, object], what: str
) -> None:
    body = encode_property_array(encode_props(TASK_PROPERTIES, "set", values, what=what))
    await requester.call(operation, path_params=ids, body=body, content_type=XML)


async def _requeue(requester: Requester, operation: Operation, ids: Ids) -> None:
    await requester.call(
        operation, path_params=ids, body=encode_property_array([]), content_type=XML
    )


class SubtasksApi:
    """Parametric sweep instances (§8.9): ``client.tasks.subtasks``.

    Subtasks exist once the job is submitted; before that, :meth:`get` raises
    :class:`~hpcsoa.BadRequest` ("the specified subtask has not been expanded yet").
    """

    def __init__(self, requester: Requester) -> None:
        self._requester = requester

    def __repr__(self) -> str:
        return f"<SubtasksApi {self._requester.authority}>"

    @staticmethod
    def _ids(job_id: int, task_id: int, subtask_id: int) -> Ids:
        return {"job_id": job_id, "task_id": task_id, "subtask_id": subtask_id}

    async def get(
        self,
        job_id: int,
        task_id: int,
        subtask_id: int,
        *,
        properties: Sequence[str] | str | None = None,
    ) -> Task:
        """Get Subtask: instance ``subtask_id`` (1..n) of sweep task ``task_id``."""
        ids = self._ids(job_id, task_id, subtask_id)
        body = await _get(self._requester, Operation.GET_SUBTASK, ids, properties)
        return Task.from_properties(decode_property_array(body))

    async def get_xml(
        self,
        job_id: int,
        task_id: int,
        subtask_id: int,
        *,
        properties: Sequence[str] | str | None = None,
    ) -> str:
        """Get Subtask with ``Render=HpcJobXml``: the ``<Task>`` XML."""
        ids = self._ids(job_id, task_id, subtask_id)
        body = await _get(self._requester, Operation.GET_SUBTASK, ids, properties, xml=True)
        return body.decode("utf-8")

    async def set_properties(
        self,
        job_id: int,
        task_id: int,
        subtask_id: int,
        properties: Mapping[str, object] | None = None,
        **props: object,
    ) -> None:
        """Set Subtask Properties (applies to that subtask only)."""
        ids = self._ids(job_id, task_id, subtask_id)
        values = {**(properties or {}), **props}
        await _set(self._requester, Operation.SET_SUBTASK_PROPERTIES, ids, values, "set subtask")

    async def cancel(
        self, job_id: int, task_id: int, subtask_id: int, message: str = "", *, forced: bool = False
    ) -> None:
        """Cancel Subtask: it ends Failed with ``message`` as its ``ErrorMessage``."""
        ids = self._ids(job_id, task_id, subtask_id)
        await _cancel(self._requester, Operation.CANCEL_SUBTASK, ids, message, forced)

    async def requeue(self, job_id: int, task_id: int, subtask_id: int) -> None:
        """Requeue Subtask: a Failed, Canceled or Queued subtask runs again."""
        await _requeue(
            self._requester, Operation.REQUEUE_SUBTASK, self._ids(job_id, task_id, subtask_id)
        )


class TasksApi:
    """Add, inspect, change, cancel and requeue tasks (``client.tasks``).

    ``task_id`` is the job-relative number Add Task returns (``JobTaskId``: 1, 2, ...).
    Property arguments work as for :class:`~hpcsoa.scheduler.JobsApi` (catalog §A.2). Errors:
    :class:`~hpcsoa.NotFound` (unknown job/task), :class:`~hpcsoa.BadRequest` (invalid value,
    wrong state), :class:`~hpcsoa.Forbidden`, :class:`~hpcsoa.EncodeError` (bad argument).

    Attributes:
        subtasks: the :class:`SubtasksApi` for parametric sweep instances.
    """

    def __init__(self, requester: Requester) -> None:
        self._requester = requester
        self.subtasks = SubtasksApi(requester)

    def __repr__(self) -> str:
        return f"<TasksApi {self._requester.authority}>"

    @staticmethod
    def _ids(job_id: int, task_id: int) -> Ids:
        return {"job_id": job_id, "task_id": task_id}

    async def add(
        self,
        job_id: int,
        command_line: str | None = None,
        *,
        name: str | None = None,
        **props: object,
    ) -> int:
        """Add Task (§8.1); returns the task id within the job.

        A parametric sweep: ``type=TaskType.PARAMETRIC_SWEEP, start_value=1, end_value=10``
        (``increment_value`` optional); each ``*`` in the command line becomes the index.
        """
        values: dict[str, object] = {"CommandLine": command_line, "Name": name, **props}
        body = encode_property_array(
            encode_props(TASK_PROPERTIES, "create", values, what="add task")
        )
        resp = await self._requester.call(
            Operation.ADD_TASK,
            path_params={"job_id": job_id},
            body=body,
            content_type=XML,
            accept="application/xml",
        )
        return decode_int(resp.body)

    async def get(
        self, job_id: int, task_id: int, *, properties: Sequence[str] | str | None = None
    ) -> Task:
        """Get Task (§8.2): all properties, or only ``properties``."""
        body = await _get(
            self._requester, Operation.GET_TASK, self._ids(job_id, task_id), properties
        )
        return Task.from_properties(decode_property_array(body))

    async def get_xml(
        self, job_id: int, task_id: int, *, properties: Sequence[str] | str | None = None
    ) -> str:
        """Get Task with ``Render=HpcJobXml``: the ``<Task>`` XML."""
        ids = self._ids(job_id, task_id)
        body = await _get(self._requester, Operation.GET_TASK, ids, properties, xml=True)
        return body.decode("utf-8")

    def list(
        self,
        job_id: int,
        *,
        expand_parametric: bool = True,
        state: TaskState | str | Iterable[TaskState | str] | None = None,
        changed_since: datetime | None = None,
        properties: Sequence[str] | str | None = None,
        page_size: int | None = None,
        sort_by: str | None = None,
    ) -> AsyncPager[Task]:
        """Get Task List (§8.3) as a pager.

        Args:
            expand_parametric: list the subtasks of sweep tasks instead of their masters.
            state, changed_since: ``$filter`` on ``TaskState`` / ``ChangeTimeFrom``.
            properties: properties to return (default ``TaskId,Name,State,CommandLine,
                ExitCode,ParentJobId,JobTaskId,InstanceId``).
            page_size: ``RowsPerRead``; sort_by: ``SortTasksBy``.
        """
        query = properties_query(properties)
        query.append(("ExpandParametric", "True" if expand_parametric else "False"))
        return list_pager(
            self._requester,
            Operation.LIST_TASKS,
            path_params={"job_id": job_id},
            query=query,
            filt=filter_query("TaskState", TaskState, state, changed_since),
            sort=("SortTasksBy", sort_by),
            page_size=page_size,
            build=Task.from_properties,
        )

    async def set_properties(
        self,
        job_id: int,
        task_id: int,
        properties: Mapping[str, object] | None = None,
        **props: object,
    ) -> None:
        """Set Task Properties (§8.4)."""
        values = {**(properties or {}), **props}
        await _set(
            self._requester,
            Operation.SET_TASK_PROPERTIES,
            self._ids(job_id, task_id),
            values,
            "set task",
        )

    async def cancel(
        self, job_id: int, task_id: int, message: str = "", *, forced: bool = False
    ) -> None:
        """Cancel Task (§8.5): the task ends Failed with ``message`` as its ``ErrorMessage``."""
        await _cancel(
            self._requester, Operation.CANCEL_TASK, self._ids(job_id, task_id), message, forced
        )

    async def requeue(self, job_id: int, task_id: int) -> None:
        """Requeue Task (§8.6): a Failed, Canceled or Queued task runs again."""
        await _requeue(self._requester, Operation.REQUEUE_TASK, self._ids(job_id, task_id))

    async def get_custom_properties(
        self, job_id: int, task_id: int, names: Sequence[str] | None = None
    ) -> dict[str, str | None]:
        """Get Task Custom Properties (§8.7)."""
        return await self._get_pairs(Operation.GET_TASK_CUSTOM_PROPERTIES, job_id, task_id, names)

    async def set_custom_properties(
        self, job_id: int, task_id: int, values: Mapping[str, str | None]
    ) -> None:
        """Set Task Custom Properties (§8.7)."""
        await self._requester.call(
            Operation.SET_TASK_CUSTOM_PROPERTIES,
            path_params=self._ids(job_id, task_id),
            body=name_value_body(values),
            content_type=XML,
        )

    async def get_env(
        self, job_id: int, task_id: int, names: Sequence[str] | None = None
    ) -> dict[str, str]:
        """Get Task Environment Variables (§8.8). A name that is not set reads as ``""``."""
        pairs = await self._get_pairs(Operation.GET_TASK_ENV, job_id, task_id, names)
        return {k: v or "" for k, v in pairs.items()}

    async def set_env(self, job_id: int, task_id: int, values: Mapping[str, str | None]) -> None:
        """Set Task Environment Variables (§8.8). An empty (or ``None``) value removes one."""
        await self._requester.call(
            Operation.SET_TASK_ENV,
            path_params=self._ids(job_id, task_id),
            body=name_value_body(values),
            content_type=XML,
        )

    async def _get_pairs(
        self, operation: Operation, job_id: int, task_id: int, names: Sequence[str] | None
    ) -> dict[str, str | None]:
        query = [("Names", ",".join(names))] if names else []
        resp = await self._requester.call(
            operation,
            path_params=self._ids(job_id, task_id),
            query=query,
            accept="application/xml",
        )
        return dict(decode_property_array(resp.body))
