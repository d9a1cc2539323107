"""Rendering of scheduler records as property bags and job/task XML (spec §2.6, §7.3, §8.2).

Values are typed in the records and become text here, through the catalog codec: enum
names, ``True``/``False``, ``M/d/yyyy h:mm:ss tt`` dates, comma-separated lists, ``None`` →
``i:nil``. Property names are always the canonical spelling, in the order requested (or
catalog order when all are returned).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..protocol._catalog import (
    JOB_PROPERTIES,
    NODE_PROPERTIES,
    TASK_PROPERTIES,
    render_value,
)
from ..protocol._jobxml import JobXml, TaskXml, encode_job_xml, encode_task_xml
from ._sched_records import Job, Node, Task, Unit, job_value, node_value, task_value

if TYPE_CHECKING:
    from ._sched_engine import SchedulerEngine

__all__ = [
    "job_pairs",
    "job_xml",
    "node_pairs",
    "task_pairs",
    "task_xml",
]

Pairs = list[tuple[str, str | None]]


def job_pairs(state: SchedulerEngine, job: Job, names: Sequence[str]) -> Pairs:
    """``(name, text)`` for each of ``names`` (canonical, gettable job properties)."""
    allocated = state.allocated_nodes(job) if "AllocatedNodes" in names else []
    out: Pairs = []
    for name in names:
        spec = JOB_PROPERTIES.lookup(name)
        assert spec is not None, name
        out.append((spec.name, render_value(spec, job_value(job, spec.name, allocated))))
    return out


def task_pairs(job: Job, task: Task, unit: Unit, names: Sequence[str]) -> Pairs:
    """``(name, text)`` for each of ``names`` of a task or subtask (``unit``)."""
    out: Pairs = []
    for name in names:
        spec = TASK_PROPERTIES.lookup(name)
        assert spec is not None, name
        out.append((spec.name, render_value(spec, task_value(job, task, unit, spec.name))))
    return out


def node_pairs(node: Node, names: Sequence[str]) -> Pairs:
    """``(name, text)`` for each of ``names`` of a node."""
    out: Pairs = []
    for name in names:
        spec = NODE_PROPERTIES.lookup(name)
        assert spec is not None, name
        out.append((spec.name, render_value(spec, node_value(node, spec.name))))
    return out


def _present(pairs: Pairs) -> tuple[tuple[str, str], ...]:
    # XML attributes cannot be nil: an unset property is simply absent.
    return tuple((k, v) for k, v in pairs if v is not None)


def _task_model(job: Job, task: Task, unit: Unit, names: Sequence[str] | None) -> TaskXml:
    if names is not None:
        return TaskXml(attributes=_present(task_pairs(job, task, unit, names)))
    attrs: Pairs = [("Id", str(task.global_id))]
    attrs += task_pairs(job, task, unit, [n for n in TASK_PROPERTIES.gettable if n != "TaskId"])
    return TaskXml(
        attributes=_present(attrs),
        custom_properties=tuple(task.custom.values()),
        environment=tuple(task.env.values()),
    )


def task_xml(job: Job, task: Task, unit: Unit, names: Sequence[str] | None) -> bytes:
    """The ``<Task>`` document of Get Task / Get Subtask with ``Render=HpcJobXml``.

    With ``names`` only those attributes are rendered; without, all of them plus the task's
    custom properties and environment.
    """
    return encode_task_xml(_task_model(job, task, unit, names), children=names is None)


def job_xml(state: SchedulerEngine, job: Job, names: Sequence[str] | None) -> bytes:
    """The ``<Job>`` document of Get Job with ``Render=HpcJobXml`` (§7.3)."""
    if names is not None:
        return encode_job_xml(JobXml(_present(job_pairs(state, job, names))), children=False)
    doc = JobXml(
        attributes=_present(job_pairs(state, job, JOB_PROPERTIES.gettable)),
        tasks=tuple(_task_model(job, t, t, None) for t in job.tasks),
        custom_properties=tuple(job.custom.values()),
        environment=tuple(job.env.values()),
    )
    return encode_job_xml(doc)
